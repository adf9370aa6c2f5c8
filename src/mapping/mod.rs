//! Mapping files: which cloud metric feeds which canonical Prometheus family, with the
//! statistic to read, the unit transform and the labels. One TOML file per product family
//! (`mappings/clb.toml` …), embedded in the binary as defaults and overridable with
//! `--mappings DIR`. Adding a product to a cloud is a change here, not in code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::cloud::{Cloud, Product};

/// Labels every cloud family carries, in this order.
pub const COMMON_LABELS: [&str; 6] = [
    "cloud_provider",
    "account_id",
    "region",
    "resource_type",
    "resource_id",
    "code_name",
];

/// The default mapping files, compiled in.
pub const EMBEDDED: [(&str, &str); 6] = [
    ("clb.toml", include_str!("../../mappings/clb.toml")),
    ("alb.toml", include_str!("../../mappings/alb.toml")),
    ("nlb.toml", include_str!("../../mappings/nlb.toml")),
    ("gwlb.toml", include_str!("../../mappings/gwlb.toml")),
    ("bwp.toml", include_str!("../../mappings/bwp.toml")),
    ("s3.toml", include_str!("../../mappings/s3.toml")),
];

/// Unit of a family; decides the name suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A number of things (no suffix).
    Count,
    /// Events per second (`_per_second`).
    PerSecond,
    /// Bytes (`_bytes`).
    Bytes,
    /// Bytes per second (`_bytes_per_second`).
    BytesPerSecond,
    /// Seconds (`_seconds`).
    Seconds,
    /// A ratio 0–1 (`_ratio`).
    Ratio,
}

impl Unit {
    fn suffix_ok(self, name: &str) -> bool {
        let per_s = name.ends_with("_per_second");
        let bps = name.ends_with("_bytes_per_second");
        match self {
            Unit::Count => {
                !name.ends_with("_bytes")
                    && !name.ends_with("_seconds")
                    && !name.ends_with("_ratio")
                    && !per_s
            }
            Unit::PerSecond => per_s && !bps,
            Unit::Bytes => name.ends_with("_bytes"),
            Unit::BytesPerSecond => bps,
            Unit::Seconds => name.ends_with("_seconds") && !per_s,
            Unit::Ratio => name.ends_with("_ratio"),
        }
    }
}

/// One file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    product: String,
    #[serde(default)]
    cloud: BTreeMap<String, ProductCloudSpec>,
    #[serde(default)]
    metric: Vec<FamilyFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    name: String,
    help: String,
    unit: Unit,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    aliyun: Vec<SourceSpec>,
    #[serde(default)]
    tencent: Vec<SourceSpec>,
    #[serde(default)]
    aws: Vec<SourceSpec>,
    #[serde(default)]
    huawei: Vec<SourceSpec>,
}

/// Where a product's data lives on one cloud, and how a discovered resource is named in it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProductCloudSpec {
    /// Monitoring namespace (`acs_slb_dashboard`, `QCE/LB_PUBLIC`).
    pub namespace: String,
    /// The dimension whose value is the resource's ID (`instanceId`); empty when the resource
    /// is named only by attributes (Tencent load balancers are named by their VIP).
    #[serde(default)]
    pub resource_dimension: String,
    /// More dimensions naming a resource, valued from the attributes discovery found (`vip`,
    /// `vpcId`, `appid`).
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// Only datapoints whose dimensions have these values count (`availableZone = "all"`).
    #[serde(default)]
    pub dimension_filter: BTreeMap<String, String>,
    /// The region monitor calls go to when it is not the resource's own (Tencent COS metrics
    /// are served from `ap-guangzhou` only).
    #[serde(default)]
    pub monitor_region: Option<String>,
    /// Resources whose attributes match a variant's `when` live in its namespace instead
    /// (Tencent private load balancers: `QCE/LB_PRIVATE`, named by `vip` and `vpcId`).
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
}

/// Another namespace for some of a product's resources.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Attribute values a resource must have (all of them).
    pub when: BTreeMap<String, String>,
    /// Namespace of the matching resources.
    pub namespace: String,
    /// Dimensions naming a matching resource (replacing the product's `dimensions`).
    #[serde(default)]
    pub dimensions: Option<Vec<String>>,
}

/// Where one resource's series are asked for: the namespace and the dimensions naming it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorTarget {
    /// Namespace.
    pub namespace: String,
    /// Dimension name and value pairs, in the mapping's order.
    pub dimensions: Vec<(String, String)>,
}

impl ProductCloudSpec {
    /// The namespace and dimensions of a resource; `None` when discovery did not find an
    /// attribute the dimensions need (a load balancer without a VIP yet).
    pub fn target(&self, resource: &crate::cloud::Resource) -> Option<MonitorTarget> {
        let variant = self.variants.iter().find(|v| {
            v.when
                .iter()
                .all(|(k, want)| resource.attributes.get(k) == Some(want))
        });
        let namespace = variant.map_or(&self.namespace, |v| &v.namespace);
        let names = variant
            .and_then(|v| v.dimensions.as_ref())
            .unwrap_or(&self.dimensions);
        let mut dimensions = Vec::with_capacity(names.len() + 1);
        if !self.resource_dimension.is_empty() {
            dimensions.push((self.resource_dimension.clone(), resource.id.clone()));
        }
        for name in names {
            let value = resource.attributes.get(name).filter(|v| !v.is_empty())?;
            dimensions.push((name.clone(), value.clone()));
        }
        Some(MonitorTarget {
            namespace: namespace.clone(),
            dimensions,
        })
    }
}

/// One cloud metric feeding a family.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The cloud's metric name.
    pub metric: String,
    /// The statistic to read (`Average`, `Value`, `Maximum`, …).
    pub statistic: String,
    /// Factor to the base unit (0.125 bits→bytes, 0.001 ms→s, 0.01 %→ratio).
    #[serde(default = "one")]
    pub scale: f64,
    /// Divide by the point's period: the value is a count per period.
    #[serde(default)]
    pub per_period: bool,
    /// What the statistic means, for the HELP text ("peak of the six 10-second values").
    #[serde(default)]
    pub help_note: Option<String>,
    /// The unit the cloud's metadata gives for the metric, which `scale` converts from
    /// (`Mbps`, `MB`); checked against the metadata where the cloud reports units.
    #[serde(default)]
    pub source_unit: Option<String>,
    /// A fixed period in seconds (daily/hourly metrics); else chosen from the metadata.
    #[serde(default)]
    pub period: Option<u64>,
    /// Static label values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Fixed dimension values added to this metric's query (AWS S3 `StorageType`, `FilterId`).
    #[serde(default)]
    pub query_dimensions: BTreeMap<String, String>,
    /// Labels whose value is a datapoint dimension: label → dimension key.
    #[serde(default)]
    pub dimension_labels: BTreeMap<String, String>,
    /// Per dimension label, renames of the cloud's values; others pass through lower-cased.
    #[serde(default)]
    pub value_map: BTreeMap<String, BTreeMap<String, String>>,
}

fn one() -> f64 {
    1.0
}

impl SourceSpec {
    /// The label value for a dimension label, mapped per `value_map`.
    pub fn dimension_label_value(&self, label: &str, raw: &str) -> String {
        self.value_map
            .get(label)
            .and_then(|m| m.get(raw))
            .cloned()
            .unwrap_or_else(|| raw.to_ascii_lowercase())
    }

    /// Apply the transform: scale, then division by the period.
    pub fn transform(&self, value: f64, period_s: u64) -> f64 {
        // Dividing by an integral inverse (8, 100, 1000) keeps decimal inputs exact in the
        // output (40.3 / 100 = 0.403, where 40.3 * 0.01 = 0.40300000000000014).
        let inverse = 1.0 / self.scale;
        let v = if self.scale < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
            value / inverse.round()
        } else {
            value * self.scale
        };
        if self.per_period && period_s > 0 {
            v / period_s as f64
        } else {
            v
        }
    }
}

/// One exported family.
#[derive(Clone, Debug)]
pub struct FamilySpec {
    /// Full name, `<product>_<name>`.
    pub name: String,
    /// Product the family belongs to.
    pub product: Product,
    /// HELP text including the sources per cloud.
    pub help: String,
    /// Unit.
    pub unit: Unit,
    /// Extra label names (after the common ones), sorted.
    pub labels: Vec<String>,
    /// Sources per cloud.
    pub sources: BTreeMap<Cloud, Vec<Arc<SourceSpec>>>,
}

/// All mappings, validated.
#[derive(Clone, Debug, Default)]
pub struct MappingSet {
    /// Families in name order.
    pub families: Vec<FamilySpec>,
    /// Per (product, cloud): where its data lives.
    pub products: BTreeMap<(Product, Cloud), ProductCloudSpec>,
}

/// Problems found in mapping files, all at once.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingError(pub Vec<String>);

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} mapping error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingError {}

impl MappingSet {
    /// The compiled-in mappings.
    pub fn embedded() -> Result<MappingSet, MappingError> {
        let files: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        MappingSet::from_files(&files)
    }

    /// Every `*.toml` of a directory.
    pub fn from_dir(dir: &Path) -> Result<MappingSet, MappingError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            MappingError(vec![format!(
                "{}: cannot read the mappings directory: {e}",
                dir.display()
            )])
        })?;
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(t) => files.push((path.display().to_string(), t)),
                Err(e) => errors.push(format!("{}: cannot read: {e}", path.display())),
            }
        }
        if !errors.is_empty() {
            return Err(MappingError(errors));
        }
        if files.is_empty() {
            return Err(MappingError(vec![format!(
                "{}: no *.toml mapping files",
                dir.display()
            )]));
        }
        files.sort();
        MappingSet::from_files(&files)
    }

    /// Parse and validate (file name, text) pairs.
    pub fn from_files(files: &[(String, String)]) -> Result<MappingSet, MappingError> {
        let mut errors = Vec::new();
        let mut set = MappingSet::default();
        let mut seen_products = BTreeSet::new();
        for (file, text) in files {
            let spec: FileSpec = match toml::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(format!("{file}: {}", e.to_string().trim_end()));
                    continue;
                }
            };
            check_file(file, spec, &mut set, &mut seen_products, &mut errors);
        }
        set.families.sort_by(|a, b| a.name.cmp(&b.name));
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(MappingError(errors))
        }
    }

    /// Families of a product that have sources on a cloud.
    pub fn families_for(&self, product: Product, cloud: Cloud) -> Vec<&FamilySpec> {
        self.families
            .iter()
            .filter(|f| f.product == product && f.sources.contains_key(&cloud))
            .collect()
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

fn check_file(
    file: &str,
    spec: FileSpec,
    set: &mut MappingSet,
    seen_products: &mut BTreeSet<Product>,
    errors: &mut Vec<String>,
) {
    let Some(product) = Product::parse(&spec.product) else {
        errors.push(format!(
            "{file}: product {:?} is not one of clb, alb, nlb, gwlb, bwp, s3",
            spec.product
        ));
        return;
    };
    if !seen_products.insert(product) {
        errors.push(format!(
            "{file}: product {product} is defined by another file too"
        ));
    }
    for (cloud_name, pc) in &spec.cloud {
        let Some(cloud) = Cloud::parse(cloud_name) else {
            errors.push(format!(
                "{file}: [cloud.{cloud_name}] is not a cloud (aliyun, tencent, aws, huawei)"
            ));
            continue;
        };
        if pc.namespace.is_empty() {
            errors.push(format!(
                "{file}: [cloud.{cloud_name}] needs a non-empty namespace"
            ));
        }
        if pc.resource_dimension.is_empty() && pc.dimensions.is_empty() {
            errors.push(format!(
                "{file}: [cloud.{cloud_name}] needs resource_dimension or dimensions to name a resource"
            ));
        }
        for (i, v) in pc.variants.iter().enumerate() {
            if v.namespace.is_empty() || v.when.is_empty() {
                errors.push(format!(
                    "{file}: [cloud.{cloud_name}].variants[{i}] needs a non-empty namespace and when"
                ));
            }
        }
        set.products.insert((product, cloud), pc.clone());
    }
    let mut names = BTreeSet::new();
    for fam in spec.metric {
        let full = format!("{product}_{}", fam.name);
        let at = format!("{file}: metric {full}");
        if !valid_name(&fam.name) {
            errors.push(format!(
                "{at}: name must be snake_case ASCII ([a-z][a-z0-9_]*)"
            ));
        }
        if !names.insert(full.clone()) {
            errors.push(format!("{at}: defined twice"));
        }
        if !fam.unit.suffix_ok(&full) {
            errors.push(format!(
                "{at}: name does not end as unit {:?} requires",
                fam.unit
            ));
        }
        for bad in ["_total", "_count", "_sum", "_bucket"] {
            if full.ends_with(bad) {
                errors.push(format!("{at}: gauges must not end in {bad}"));
            }
        }
        if fam.help.trim().is_empty() {
            errors.push(format!("{at}: help must not be empty"));
        }
        let mut labels = fam.labels.clone();
        labels.sort();
        labels.dedup();
        if labels.len() != fam.labels.len() {
            errors.push(format!("{at}: labels listed twice"));
        }
        for l in &labels {
            if !valid_name(l) || COMMON_LABELS.contains(&l.as_str()) || l.starts_with("__") {
                errors.push(format!(
                    "{at}: label {l:?} must be snake_case and not one of the common labels"
                ));
            }
        }
        let mut sources = BTreeMap::new();
        let mut help_sources = Vec::new();
        for (cloud, list) in [
            (Cloud::Aliyun, fam.aliyun),
            (Cloud::Tencent, fam.tencent),
            (Cloud::Aws, fam.aws),
            (Cloud::Huawei, fam.huawei),
        ] {
            if list.is_empty() {
                continue;
            }
            let Some(pc) = spec.cloud.get(cloud.as_str()) else {
                errors.push(format!(
                    "{at}: has {cloud} sources but the file has no [cloud.{cloud}] section"
                ));
                continue;
            };
            let mut label_sets = BTreeSet::new();
            let mut metrics = Vec::new();
            for (i, src) in list.iter().enumerate() {
                let sat = format!("{at}: {cloud}[{i}]");
                if src.metric.is_empty() {
                    errors.push(format!("{sat}: metric must not be empty"));
                }
                if !statistic_ok(cloud, &src.statistic) {
                    errors.push(format!(
                        "{sat}: statistic {:?} is not one the cloud returns",
                        src.statistic
                    ));
                }
                if !src.scale.is_finite() || src.scale == 0.0 {
                    errors.push(format!("{sat}: scale must be a non-zero number"));
                }
                if src.period == Some(0) {
                    errors.push(format!("{sat}: period must be above zero"));
                }
                if !src.query_dimensions.is_empty() && cloud != Cloud::Aws {
                    errors.push(format!(
                        "{sat}: query_dimensions is read for aws sources only: remove it"
                    ));
                }
                let mut keys: Vec<String> = src
                    .labels
                    .keys()
                    .chain(src.dimension_labels.keys())
                    .cloned()
                    .collect();
                keys.sort();
                if keys != labels {
                    errors.push(format!(
                        "{sat}: label keys {keys:?} differ from the family's labels {labels:?}"
                    ));
                }
                for k in src.value_map.keys() {
                    if !src.dimension_labels.contains_key(k) {
                        errors.push(format!("{sat}: value_map.{k} names no dimension label"));
                    }
                }
                if !label_sets.insert((src.labels.clone(), src.dimension_labels.clone())) {
                    errors.push(format!(
                        "{sat}: another {cloud} source of this family has the same labels (duplicate series)"
                    ));
                }
                let mut m = src.metric.clone();
                if !src.labels.is_empty() {
                    let l: Vec<String> =
                        src.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    m.push_str(&format!("{{{}}}", l.join(",")));
                }
                match &src.help_note {
                    Some(note) => metrics.push(format!("{m} ({}: {note})", src.statistic)),
                    None => metrics.push(format!("{m} ({})", src.statistic)),
                }
            }
            let mut namespaces = vec![pc.namespace.as_str()];
            namespaces.extend(pc.variants.iter().map(|v| v.namespace.as_str()));
            help_sources.push(format!(
                "{cloud} {}: {}",
                namespaces.join(" or "),
                metrics.join(", ")
            ));
            sources.insert(cloud, list.into_iter().map(Arc::new).collect());
        }
        let help = format!(
            "{} Source: {}.",
            fam.help.trim().trim_end_matches('.').to_string() + ".",
            help_sources.join("; ")
        );
        set.families.push(FamilySpec {
            name: full,
            product,
            help,
            unit: fam.unit,
            labels,
            sources,
        });
    }
}

fn statistic_ok(cloud: Cloud, s: &str) -> bool {
    match cloud {
        Cloud::Aliyun => matches!(s, "Average" | "Maximum" | "Minimum" | "Value" | "Sum"),
        Cloud::Tencent => matches!(s, "avg" | "max" | "min" | "sum" | "default"),
        Cloud::Aws => matches!(
            s,
            "Average" | "Sum" | "Maximum" | "Minimum" | "SampleCount" | "p99" | "p95" | "p50"
        ),
        Cloud::Huawei => matches!(s, "average" | "max" | "min" | "sum" | "variance"),
    }
}

#[cfg(test)]
mod tests;
