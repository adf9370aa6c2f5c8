//! What the simulated Tencent Cloud Monitor knows about each namespace: metric names, units,
//! supported periods and the statistic the cloud computes at each period ("统计规则"). Served by
//! DescribeBaseMetrics and used to validate GetMonitorData periods.
//!
//! The table holds every metric the Tencent mapping entries reference, as
//! `reference/metric-catalogue.md` describes them: load balancer and bandwidth package rates are
//! `[10s,sum] [60s,max] [300s,max]`, their ratios `max` (load balancer) or `expr` (package); COS
//! counts and traffic `[60s,max] [300s,sum]`, its 5xx rate `avg`, its storage levels `sum` at
//! 300/3600/86400; GWLB traffic is a volume summed per period. Where the vendor documents were
//! silent the simulator fills in what the mappings assume; real-account metadata may differ.

/// One metric as DescribeBaseMetrics describes it.
pub struct MetricMeta {
    /// Namespace, e.g. `QCE/LB_PUBLIC`.
    pub namespace: &'static str,
    /// Metric name, vendor spelling.
    pub metric: &'static str,
    /// Unit as the cloud writes it.
    pub unit: &'static str,
    /// (period, statistic computed at it), ascending.
    pub periods: &'static [(u64, &'static str)],
}

impl MetricMeta {
    /// Whether `period` is supported.
    pub fn supports(&self, period: u64) -> bool {
        self.periods.iter().any(|(p, _)| *p == period)
    }
}

const LB_RATE: &[(u64, &str)] = &[(10, "sum"), (60, "max"), (300, "max")];
const LB_60: &[(u64, &str)] = &[(60, "max"), (300, "max")];
const BWP_RATIO: &[(u64, &str)] = &[(60, "expr"), (300, "expr")];
const VOLUME: &[(u64, &str)] = &[(60, "sum"), (300, "sum")];
const COS_COUNT: &[(u64, &str)] = &[(60, "max"), (300, "sum")];
const COS_RATE: &[(u64, &str)] = &[(60, "avg"), (300, "avg")];
const COS_STORAGE: &[(u64, &str)] = &[(300, "sum"), (3600, "sum"), (86400, "sum")];

const fn m(
    namespace: &'static str,
    metric: &'static str,
    unit: &'static str,
    periods: &'static [(u64, &'static str)],
) -> MetricMeta {
    MetricMeta {
        namespace,
        metric,
        unit,
        periods,
    }
}

/// (metric, unit, periods) of a namespace-independent row.
type Row = (&'static str, &'static str, &'static [(u64, &'static str)]);

/// Load balancer metrics, the same in the public and the private namespace.
const LB: &[Row] = &[
    ("ClientConnum", "Count", LB_RATE),
    ("ClientInactiveConn", "Count", LB_RATE),
    ("ClientConcurConn", "Count", LB_RATE),
    ("ClientNewConn", "Count/s", LB_RATE),
    ("DropTotalConns", "Count", LB_60),
    ("ClientIntraffic", "Mbps", LB_RATE),
    ("ClientOuttraffic", "Mbps", LB_RATE),
    ("ClientInpkg", "Count/s", LB_RATE),
    ("ClientOutpkg", "Count/s", LB_RATE),
    ("InDropBits", "bps", LB_60),
    ("OutDropBits", "bps", LB_60),
    ("InDropPkts", "Count/s", LB_60),
    ("OutDropPkts", "Count/s", LB_60),
    ("IntrafficVipRatio", "%", LB_60),
    ("OuttrafficVipRatio", "%", LB_60),
    ("NewConnVipRatio", "%", LB_60),
    ("ConcurConnVipRatio", "%", LB_60),
];

/// Every metric outside the load balancer namespaces.
pub const OTHERS: &[MetricMeta] = &[
    m("QCE/GWLB", "InTraffic", "Bytes", VOLUME),
    m("QCE/GWLB", "OutTraffic", "Bytes", VOLUME),
    m("QCE/BWP", "InTraffic", "Mbps", LB_RATE),
    m("QCE/BWP", "OutTraffic", "Mbps", LB_RATE),
    m("QCE/BWP", "InPkg", "Count/s", LB_RATE),
    m("QCE/BWP", "OutPkg", "Count/s", LB_RATE),
    m("QCE/BWP", "IntrafficBwpRatio", "%", BWP_RATIO),
    m("QCE/BWP", "OuttrafficBwpRatio", "%", BWP_RATIO),
    m("QCE/COS", "StdStorage", "MB", COS_STORAGE),
    m("QCE/COS", "SiaStorage", "MB", COS_STORAGE),
    m("QCE/COS", "ItFreqStorage", "MB", COS_STORAGE),
    m("QCE/COS", "ArcStorage", "MB", COS_STORAGE),
    m("QCE/COS", "DeepArcStorage", "MB", COS_STORAGE),
    m("QCE/COS", "TotalRequests", "Count", COS_COUNT),
    m("QCE/COS", "GetRequests", "Count", COS_COUNT),
    m("QCE/COS", "PutRequests", "Count", COS_COUNT),
    m("QCE/COS", "2xxResponse", "Count", COS_COUNT),
    m("QCE/COS", "3xxResponse", "Count", COS_COUNT),
    m("QCE/COS", "4xxResponse", "Count", COS_COUNT),
    m("QCE/COS", "5xxResponse", "Count", COS_COUNT),
    m("QCE/COS", "5xxResponseRate", "%", COS_RATE),
    m("QCE/COS", "InternetTraffic", "Bytes", COS_COUNT),
    m("QCE/COS", "InternalTraffic", "Bytes", COS_COUNT),
    m("QCE/COS", "CdnOriginTraffic", "Bytes", COS_COUNT),
    m("QCE/COS", "InternetTrafficUp", "Bytes", COS_COUNT),
    m("QCE/COS", "InternalTrafficUp", "Bytes", COS_COUNT),
];

/// The load balancer namespaces.
pub const LB_NAMESPACES: [&str; 2] = ["QCE/LB_PUBLIC", "QCE/LB_PRIVATE"];

/// Every metric of a namespace.
pub fn namespace(ns: &str) -> Vec<MetricMeta> {
    if LB_NAMESPACES.contains(&ns) {
        let ns: &'static str = if ns == LB_NAMESPACES[0] {
            LB_NAMESPACES[0]
        } else {
            LB_NAMESPACES[1]
        };
        return LB
            .iter()
            .map(|(metric, unit, periods)| m(ns, metric, unit, periods))
            .collect();
    }
    OTHERS
        .iter()
        .filter(|x| x.namespace == ns)
        .map(|x| m(x.namespace, x.metric, x.unit, x.periods))
        .collect()
}

/// One metric.
pub fn find(ns: &str, metric: &str) -> Option<MetricMeta> {
    namespace(ns).into_iter().find(|x| x.metric == metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::mapping::MappingSet;

    #[test]
    fn every_tencent_mapping_metric_is_served_with_its_unit() {
        let set = MappingSet::embedded().unwrap();
        let mut checked = 0;
        for fam in &set.families {
            let Some(sources) = fam.sources.get(&Cloud::Tencent) else {
                continue;
            };
            let spec = &set.products[&(fam.product, Cloud::Tencent)];
            let mut namespaces = vec![spec.namespace.clone()];
            namespaces.extend(spec.variants.iter().map(|v| v.namespace.clone()));
            for ns in namespaces {
                for src in sources {
                    let meta = find(&ns, &src.metric)
                        .unwrap_or_else(|| panic!("{ns} {} not in the catalogue", src.metric));
                    if let Some(u) = &src.source_unit {
                        assert_eq!(meta.unit, u, "{ns} {}", src.metric);
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "{checked}");
    }
}
