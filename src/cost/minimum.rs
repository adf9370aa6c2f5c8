//! The fewest monitor-API calls a warm scrape (discovery cached) can make for an estate, from the
//! clouds' documented per-call limits alone (`reference/cloud-apis.md` §E). It deliberately
//! shares nothing with the code that makes the calls: the benchmark and the call-count tests
//! divide what the simulator served by this number, so a batching rule that drifts from the
//! limits shows as a ratio above 1.00 instead of being agreed with.
//!
//! What may share a call:
//! - Aliyun `DescribeMetricLast`: one metric of one namespace, either every instance of the
//!   region without `Dimensions`, paged by `Length` ≤ 1440 rows, or ≤ 50 instances named in
//!   `Dimensions` (each of their rows counted against the page too).
//! - Tencent `GetMonitorData`: one metric of one namespace, ≤ 50 instances and ≤ 7200
//!   datapoints.
//! - AWS `GetMetricData`: ≤ 500 queries of any namespace sharing one period and window, and
//!   ≤ 100,800 datapoints a page.
//! - Huawei `batch-query-metric-data`: ≤ 500 metrics sharing one period, statistic and window,
//!   and ≤ 3000 datapoints.
//!
//! Calls never span accounts (credentials) or regions (endpoints), nor two jobs of one cloud
//! whose monitor API cannot mix namespaces.

use std::collections::BTreeMap;

use crate::cloud::Cloud;
use crate::mapping::{MappingSet, SourceSpec};
use crate::sim::estate::{Estate, SimResource};

/// Aliyun `DescribeMetricLast`: rows a page may hold (`Length`, maximum 1440).
pub const ALIYUN_ROWS_PER_PAGE: u64 = 1440;
/// Aliyun `DescribeMetricLast`: instances one call may name in `Dimensions`.
pub const ALIYUN_INSTANCES_PER_CALL: u64 = 50;
/// Tencent `GetMonitorData`: instances per call.
pub const TENCENT_INSTANCES_PER_CALL: u64 = 50;
/// Tencent `GetMonitorData`: datapoints per call.
pub const TENCENT_POINTS_PER_CALL: u64 = 7200;
/// AWS `GetMetricData`: queries per call.
pub const AWS_QUERIES_PER_CALL: u64 = 500;
/// AWS `GetMetricData`: datapoints per page.
pub const AWS_POINTS_PER_PAGE: u64 = 100_800;
/// Huawei `batch-query-metric-data`: metrics per call.
pub const HUAWEI_METRICS_PER_CALL: u64 = 500;
/// Huawei `batch-query-metric-data`: datapoints per call.
pub const HUAWEI_POINTS_PER_CALL: u64 = 3000;

/// The monitor API whose calls [`minimum_calls`] counts, as the simulator names it
/// (`<service>.<Action>`; the limiter and the cloud know it by the action alone).
pub fn monitor_api(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Aliyun => "cms.DescribeMetricLast",
        Cloud::Tencent => "monitor.GetMonitorData",
        Cloud::Aws => "monitoring.GetMetricData",
        Cloud::Huawei => "ces.BatchListMetricData",
    }
}

/// What one group of series asks of a cloud: the series that may share calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demand {
    /// The cloud.
    pub cloud: Cloud,
    /// The account.
    pub account: String,
    /// The region of the job.
    pub region: String,
    /// What may share a call inside the region: Aliyun and Tencent `namespace|metric`, AWS the
    /// period, Huawei `period|statistic`. Demands of the same key are added together.
    pub group: String,
    /// Instances asked for.
    pub instances: u64,
    /// Series of one instance: Aliyun the rows an instance has when every instance of the
    /// namespace is paged without `Dimensions`; AWS and Huawei the queries or metrics an
    /// instance needs in this group; Tencent 1.
    pub series_per_instance: u64,
    /// Aliyun only: the rows of one instance when it is named in `Dimensions` together with the
    /// mapping's dimension filter (at most `series_per_instance`).
    pub named_series_per_instance: u64,
    /// Datapoints one series has in the query window.
    pub points: u64,
}

/// A group's demands added up.
#[derive(Default)]
struct Totals {
    instances: u64,
    series: u64,
    named_series: u64,
    points: u64,
}

/// The minimum calls of a set of demands, per cloud.
pub fn minimum_calls(demands: &[Demand]) -> BTreeMap<Cloud, u64> {
    let mut groups: BTreeMap<(Cloud, &str, &str, &str), Totals> = BTreeMap::new();
    for d in demands {
        let key = (
            d.cloud,
            d.account.as_str(),
            d.region.as_str(),
            d.group.as_str(),
        );
        let g = groups.entry(key).or_default();
        g.instances += d.instances;
        g.series += d.instances * d.series_per_instance;
        g.named_series += d.instances * d.named_series_per_instance;
        g.points = g.points.max(d.points);
    }
    let mut out = BTreeMap::new();
    for ((cloud, ..), g) in groups {
        *out.entry(cloud).or_insert(0) += group_calls(cloud, &g);
    }
    out
}

/// The calls of one group.
fn group_calls(cloud: Cloud, g: &Totals) -> u64 {
    if g.instances == 0 || g.series == 0 {
        return 0;
    }
    let points = g.points.max(1);
    match cloud {
        Cloud::Aliyun => {
            let paged = g.series.div_ceil(ALIYUN_ROWS_PER_PAGE);
            let rows_per_instance = g.named_series.div_ceil(g.instances).max(1);
            let named = g.instances.div_ceil(ALIYUN_INSTANCES_PER_CALL)
                * (ALIYUN_INSTANCES_PER_CALL * rows_per_instance).div_ceil(ALIYUN_ROWS_PER_PAGE);
            paged.min(named).max(1)
        }
        Cloud::Tencent => {
            let per_call = TENCENT_INSTANCES_PER_CALL
                .min(TENCENT_POINTS_PER_CALL / points)
                .max(1);
            g.series.div_ceil(per_call)
        }
        Cloud::Aws => g
            .series
            .div_ceil(AWS_QUERIES_PER_CALL)
            .max((g.series * points).div_ceil(AWS_POINTS_PER_PAGE)),
        Cloud::Huawei => {
            let per_call = HUAWEI_METRICS_PER_CALL
                .min(HUAWEI_POINTS_PER_CALL / points)
                .max(1);
            g.series.div_ceil(per_call)
        }
    }
}

/// Datapoints a series has in a window of `period_s` reaching back over `ingestion_delay_s`
/// (the newest complete period, the delay, and a day more for daily points).
pub fn points_in_window(period_s: u64, ingestion_delay_s: u64) -> u64 {
    let period_s = period_s.max(1);
    1 + u64::from(period_s >= 86_400) + ingestion_delay_s.div_ceil(period_s)
}

/// The Aliyun rows one instance has for a source: every fan-out combination of the simulated
/// metric without `Dimensions`, and those matching the mapping's filter when named.
fn aliyun_rows(
    namespace: &str,
    source: &SourceSpec,
    filter: &BTreeMap<String, String>,
) -> (u64, u64) {
    let Some(meta) = crate::sim::aliyun::catalogue::find(namespace, &source.metric) else {
        // A metric the cloud does not know still costs its call, answered empty.
        return (1, 1);
    };
    let combos = crate::sim::aliyun::fan_out_combinations(meta);
    let named = combos
        .iter()
        .filter(|(_, pairs)| {
            filter
                .iter()
                .chain(source.query_dimensions.iter())
                .all(|(k, v)| {
                    pairs
                        .iter()
                        .all(|(pk, pv)| *pk != k.as_str() || *pv == v.as_str())
                })
        })
        .count();
    (combos.len().max(1) as u64, named.max(1) as u64)
}

/// The namespace a Tencent resource is monitored in: the first variant whose `when` matches
/// the attributes discovery gives it (`LoadBalancerType` for load balancers).
fn tencent_namespace(spec: &crate::mapping::ProductCloudSpec, r: &SimResource) -> String {
    let lb_type = if r.internal { "INTERNAL" } else { "OPEN" };
    spec.variants
        .iter()
        .find(|v| {
            v.when
                .iter()
                .all(|(k, want)| k == "LoadBalancerType" && want == lb_type)
        })
        .map_or_else(|| spec.namespace.clone(), |v| v.namespace.clone())
}

/// What a warm scrape of the whole `estate` asks of the clouds, with every account covering the
/// regions its resources are in and every product of its cloud (as `plan` and the simulator
/// config do), periods at `scrape_interval_s` unless a source pins its own.
pub fn estate_demands(
    estate: &Estate,
    mappings: &MappingSet,
    scrape_interval_s: u64,
    ingestion_delay_s: u64,
) -> Vec<Demand> {
    let mut out = Vec::new();
    for account in &estate.accounts {
        let cloud = account.cloud;
        for region in account.regions() {
            for product in cloud.products() {
                let resources = account.resources_in(*product, region);
                if resources.is_empty() {
                    continue;
                }
                let Some(spec) = mappings.products.get(&(*product, cloud)) else {
                    continue;
                };
                let sources: Vec<&SourceSpec> = mappings
                    .families_for(*product, cloud)
                    .into_iter()
                    .flat_map(|f| f.sources.get(&cloud).into_iter().flatten())
                    .map(|s| s.as_ref())
                    .collect();
                let demand =
                    |group: String, instances: usize, series: u64, named: u64, period: u64| {
                        Demand {
                            cloud,
                            account: account.account_id.clone(),
                            region: region.to_string(),
                            group,
                            instances: instances as u64,
                            series_per_instance: series,
                            named_series_per_instance: named,
                            points: points_in_window(period, ingestion_delay_s),
                        }
                    };
                let period_of = |s: &SourceSpec| s.period.unwrap_or(scrape_interval_s);
                match cloud {
                    Cloud::Aliyun => {
                        // One query per distinct metric.
                        let mut seen = std::collections::BTreeSet::new();
                        for s in &sources {
                            if !seen.insert((&s.metric, &s.query_dimensions)) {
                                continue;
                            }
                            let (all, named) =
                                aliyun_rows(&spec.namespace, s, &spec.dimension_filter);
                            out.push(demand(
                                format!("{}|{}|{:?}", spec.namespace, s.metric, s.query_dimensions),
                                resources.len(),
                                all,
                                named,
                                period_of(s),
                            ));
                        }
                    }
                    Cloud::Tencent => {
                        let mut by_namespace: BTreeMap<String, usize> = BTreeMap::new();
                        for r in &resources {
                            *by_namespace.entry(tencent_namespace(spec, r)).or_insert(0) += 1;
                        }
                        let mut seen = std::collections::BTreeSet::new();
                        for s in &sources {
                            if !seen.insert(&s.metric) {
                                continue;
                            }
                            for (ns, n) in &by_namespace {
                                out.push(demand(
                                    format!("{ns}|{}", s.metric),
                                    *n,
                                    1,
                                    1,
                                    period_of(s),
                                ));
                            }
                        }
                    }
                    Cloud::Aws | Cloud::Huawei => {
                        // Distinct queries per instance, by what may share a call.
                        let mut per_group: BTreeMap<String, std::collections::BTreeSet<String>> =
                            BTreeMap::new();
                        for s in &sources {
                            let group = match cloud {
                                Cloud::Aws => period_of(s).to_string(),
                                _ => format!("{}|{}", period_of(s), s.statistic),
                            };
                            per_group.entry(group).or_default().insert(format!(
                                "{}|{}|{:?}",
                                s.metric, s.statistic, s.query_dimensions
                            ));
                        }
                        for (group, queries) in per_group {
                            let period = group
                                .split('|')
                                .next()
                                .and_then(|p| p.parse().ok())
                                .unwrap_or(scrape_interval_s);
                            let n = queries.len() as u64;
                            out.push(demand(group, resources.len(), n, n, period));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minimum of demands of one cloud.
    fn calls(demands: &[Demand]) -> u64 {
        minimum_calls(demands).values().sum()
    }

    fn d(
        cloud: Cloud,
        group: &str,
        instances: u64,
        series: u64,
        named: u64,
        points: u64,
    ) -> Demand {
        Demand {
            cloud,
            account: "1".into(),
            region: "r".into(),
            group: group.into(),
            instances,
            series_per_instance: series,
            named_series_per_instance: named,
            points,
        }
    }

    #[test]
    fn each_cloud_packs_to_its_documented_limits() {
        // Aliyun: 1440 rows a page without Dimensions, or 50 named instances a call.
        assert_eq!(calls(&[d(Cloud::Aliyun, "m", 1440, 1, 1, 3)]), 1);
        assert_eq!(calls(&[d(Cloud::Aliyun, "m", 1441, 1, 1, 3)]), 2);
        // 30 instances of 2 rows each: 60 rows, one page either way.
        assert_eq!(calls(&[d(Cloud::Aliyun, "m", 30, 2, 1, 3)]), 1);
        // 750 instances of 2 rows: 1500 rows = 2 pages; named with the filter, 15 calls.
        assert_eq!(calls(&[d(Cloud::Aliyun, "m", 750, 2, 1, 3)]), 2);
        // Two metrics never share a call.
        assert_eq!(
            calls(&[
                d(Cloud::Aliyun, "a", 10, 1, 1, 3),
                d(Cloud::Aliyun, "b", 10, 1, 1, 3)
            ]),
            2
        );
        // Tencent: 50 instances, or fewer when 7200 datapoints bind.
        assert_eq!(calls(&[d(Cloud::Tencent, "m", 101, 1, 1, 3)]), 3);
        assert_eq!(calls(&[d(Cloud::Tencent, "m", 100, 1, 1, 1440)]), 20);
        // AWS: products of one region and period add up to 500 queries a call.
        assert_eq!(
            calls(&[
                d(Cloud::Aws, "60", 20, 16, 16, 3),
                d(Cloud::Aws, "60", 15, 13, 13, 3)
            ]),
            2
        );
        assert_eq!(
            calls(&[
                d(Cloud::Aws, "60", 20, 16, 16, 3),
                d(Cloud::Aws, "86400", 15, 6, 6, 3)
            ]),
            2
        );
        // ...and 100,800 datapoints a page: 500 queries of 1440 points need 8 pages.
        assert_eq!(calls(&[d(Cloud::Aws, "60", 500, 1, 1, 1440)]), 8);
        // Huawei: 500 metrics, or 3000 datapoints.
        assert_eq!(calls(&[d(Cloud::Huawei, "60|average", 27, 19, 19, 3)]), 2);
        assert_eq!(calls(&[d(Cloud::Huawei, "60|average", 10, 19, 19, 60)]), 4);
        // Accounts and regions never share a call; nothing asked costs nothing.
        let mut other = d(Cloud::Tencent, "m", 1, 1, 1, 3);
        other.region = "r2".into();
        assert_eq!(calls(&[d(Cloud::Tencent, "m", 1, 1, 1, 3), other]), 2);
        assert_eq!(calls(&[d(Cloud::Huawei, "x", 0, 19, 19, 3)]), 0);
    }

    #[test]
    fn points_cover_the_delay_and_a_day_more_for_daily_points() {
        assert_eq!(points_in_window(60, 120), 3);
        assert_eq!(points_in_window(300, 120), 2);
        assert_eq!(points_in_window(86_400, 120), 3);
    }
}
