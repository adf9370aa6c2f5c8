//! What the simulated CloudMonitor (CMS) knows about each namespace: metric names, units,
//! supported periods and the statistics each datapoint carries. Served by
//! DescribeMetricMetaList and used to shape DescribeMetricLast datapoints.
//!
//! The table holds every metric the Aliyun mapping files (`mappings/*.toml`) reference, as
//! `reference/metric-catalogue.md` describes it: `acs_slb_dashboard`, `acs_nlb` and `acs_gwlb`
//! carry `Average,Minimum,Maximum`; `acs_alb`, `acs_bandwidth_package` and `acs_oss_dashboard`
//! carry `Value` only. Rows the catalogue marks third-party only (Ver. T) are included so the
//! simulator serves what the mappings ask for; real-account metadata may differ.

/// One metric as CMS's DescribeMetricMetaList describes it.
pub struct MetricMeta {
    /// CMS namespace, e.g. `acs_slb_dashboard`.
    pub namespace: &'static str,
    /// Exact CMS metric name (vendor spelling kept).
    pub metric: &'static str,
    /// Unit as CMS writes it ("bit/s", "Count", "%", "ms", "Byte", "Count/s").
    pub unit: &'static str,
    /// Supported periods in seconds, ascending.
    pub periods: &'static [u64],
    /// Statistics carried by each datapoint ("Average,Minimum,Maximum" or "Value").
    pub statistics: &'static [&'static str],
    /// Dimension keys, as the "Dimensions" field lists them (e.g. &["userId", "instanceId"]).
    pub dimensions: &'static [&'static str],
    /// Extra dimension fan-out: each (key, values) multiplies the series of a resource,
    /// e.g. ("storageType", &["Standard", "IA"]) or ("availableZone", &["all", "cn-hangzhou-a"]).
    pub fan_out: &'static [(&'static str, &'static [&'static str])],
}

const NS_SLB: &str = "acs_slb_dashboard";
const NS_ALB: &str = "acs_alb";
const NS_NLB: &str = "acs_nlb";
const NS_GWLB: &str = "acs_gwlb";
const NS_BWP: &str = "acs_bandwidth_package";
const NS_OSS: &str = "acs_oss_dashboard";

const AVG_MIN_MAX: &[&str] = &["Average", "Minimum", "Maximum"];
const VALUE: &[&str] = &["Value"];

const P_60_300: &[u64] = &[60, 300];
const P_60_300_600: &[u64] = &[60, 300, 600];
const P_60: &[u64] = &[60];
const P_3600: &[u64] = &[3600];

const DIMS_INSTANCE: &[&str] = &["userId", "instanceId"];
const DIMS_ALB: &[&str] = &["userId", "loadBalancerId"];
const DIMS_GWLB: &[&str] = &["userId", "instanceId", "availableZone"];
const DIMS_OSS: &[&str] = &["userId", "BucketName"];
const DIMS_OSS_STORAGE: &[&str] = &["userId", "BucketName", "region", "storageType"];

const NO_FAN_OUT: &[(&str, &[&str])] = &[];
const FAN_GWLB_ZONE: &[(&str, &[&str])] = &[("availableZone", &["all", "zone-a"])];
const FAN_OSS_STORAGE: &[(&str, &[&str])] = &[("storageType", &["Standard", "IA"])];

/// `acs_slb_dashboard` instance-level metric.
const fn slb(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_SLB,
        metric,
        unit,
        periods: P_60_300,
        statistics: AVG_MIN_MAX,
        dimensions: DIMS_INSTANCE,
        fan_out: NO_FAN_OUT,
    }
}

/// `acs_alb` load-balancer-level metric.
const fn alb(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_ALB,
        metric,
        unit,
        periods: P_60_300,
        statistics: VALUE,
        dimensions: DIMS_ALB,
        fan_out: NO_FAN_OUT,
    }
}

/// `acs_nlb` instance-level metric.
const fn nlb(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_NLB,
        metric,
        unit,
        periods: P_60_300,
        statistics: AVG_MIN_MAX,
        dimensions: DIMS_INSTANCE,
        fan_out: NO_FAN_OUT,
    }
}

/// `acs_gwlb` metric, one series per zone plus the `availableZone="all"` total.
const fn gwlb(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_GWLB,
        metric,
        unit,
        periods: P_60_300,
        statistics: AVG_MIN_MAX,
        dimensions: DIMS_GWLB,
        fan_out: FAN_GWLB_ZONE,
    }
}

/// `acs_bandwidth_package` metric.
const fn bwp(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_BWP,
        metric,
        unit,
        periods: P_60_300_600,
        statistics: VALUE,
        dimensions: DIMS_INSTANCE,
        fan_out: NO_FAN_OUT,
    }
}

/// `acs_oss_dashboard` bucket-level (non-metering) metric, Period 60.
const fn oss(metric: &'static str, unit: &'static str) -> MetricMeta {
    MetricMeta {
        namespace: NS_OSS,
        metric,
        unit,
        periods: P_60,
        statistics: VALUE,
        dimensions: DIMS_OSS,
        fan_out: NO_FAN_OUT,
    }
}

/// Every metric the simulated CMS serves.
pub static CATALOGUE: &[MetricMeta] = &[
    // acs_slb_dashboard (CLB), instance level.
    slb("InstanceActiveConnection", "Count"),
    slb("InstanceInactiveConnection", "Count"),
    slb("InstanceMaxConnection", "Count"),
    slb("InstanceNewConnection", "Count/s"),
    slb("InstanceDropConnection", "Count/s"),
    slb("InstanceTrafficRX", "bit/s"),
    slb("InstanceTrafficTX", "bit/s"),
    slb("InstancePacketRX", "Count/s"),
    slb("InstancePacketTX", "Count/s"),
    slb("InstanceDropTrafficRX", "bit/s"),
    slb("InstanceDropTrafficTX", "bit/s"),
    slb("InstanceDropPacketRX", "Count/s"),
    slb("InstanceDropPacketTX", "Count/s"),
    slb("InstanceQps", "Count/s"),
    slb("InstanceRt", "ms"),
    slb("InstanceUpstreamRt", "ms"),
    slb("InstanceStatusCode2xx", "Count/s"),
    slb("InstanceStatusCode3xx", "Count/s"),
    slb("InstanceStatusCode4xx", "Count/s"),
    slb("InstanceStatusCode5xx", "Count/s"),
    slb("InstanceUpstreamCode4xx", "Count/s"),
    slb("InstanceUpstreamCode5xx", "Count/s"),
    slb("InstanceTrafficRXUtilization", "%"),
    slb("InstanceTrafficTXUtilization", "%"),
    slb("InstanceQpsUtilization", "%"),
    slb("InstanceNewConnectionUtilization", "%"),
    slb("InstanceMaxConnectionUtilization", "%"),
    // acs_alb (ALB), load balancer level; names without the DualStack_ prefix.
    alb("LoadBalancerActiveConnection", "Count"),
    alb("LoadBalancerInactiveConnection", "Count"),
    alb("LoadBalancerMaxConnection", "Count"),
    alb("LoadBalancerNewConnection", "Count/s"),
    alb("LoadBalancerRejectedConnection", "Count/s"),
    alb("LoadBalancerInBits", "bit/s"),
    alb("LoadBalancerOutBits", "bit/s"),
    alb("LoadBalancerQPS", "Count/s"),
    alb("LoadBalancerRequestTime", "ms"),
    alb("LoadBalancerUpstreamResponseTime", "ms"),
    alb("LoadBalancerHTTPCode2XX", "Count/s"),
    alb("LoadBalancerHTTPCode3XX", "Count/s"),
    alb("LoadBalancerHTTPCode4XX", "Count/s"),
    alb("LoadBalancerHTTPCode5XX", "Count/s"),
    alb("LoadBalancerHTTPCodeUpstream2XX", "Count/s"),
    alb("LoadBalancerHTTPCodeUpstream3XX", "Count/s"),
    alb("LoadBalancerHTTPCodeUpstream4XX", "Count/s"),
    alb("LoadBalancerHTTPCodeUpstream5XX", "Count/s"),
    alb("LoadBalancerUpstreamConnectionError", "Count/s"),
    alb("LoadBalancerClientTLSNegotiationError", "Count/s"),
    alb("LoadBalancerHealthyHostCount", "Count"),
    alb("LoadBalancerUnHealthyHostCount", "Count"),
    alb("ConsumedLCUs", "Count"),
    // acs_nlb (NLB), instance level.
    nlb("InstanceActiveConnection", "Count"),
    nlb("InstanceInactiveConnection", "Count"),
    nlb("InstanceMaxConnection", "Count"),
    nlb("InstanceNewConnection", "Count/s"),
    nlb("InstanceDropConnection", "Count/s"),
    nlb("InstanceTrafficRX", "bit/s"),
    nlb("InstanceTrafficTX", "bit/s"),
    nlb("InstancePacketRX", "Count/s"),
    nlb("InstancePacketTX", "Count/s"),
    nlb("InstanceDropPacketRX", "Count/s"),
    nlb("InstanceDropPacketTX", "Count/s"),
    // acs_gwlb (GWLB), per zone and availableZone="all".
    gwlb("ActiveConnection", "Count"),
    gwlb("NewConnection", "Count/s"),
    gwlb("PacketRX", "Count/s"),
    gwlb("PacketTX", "Count/s"),
    gwlb("TrafficRX", "bit/s"),
    gwlb("TrafficTX", "bit/s"),
    // acs_bandwidth_package (CBWP).
    bwp("net_rx.rate", "bits/s"),
    bwp("net_tx.rate", "bits/s"),
    bwp("net_rx.Pkgs", "Count/s"),
    bwp("net_tx.Pkgs", "Count/s"),
    bwp("in_bandwidth_utilization", "%"),
    bwp("out_bandwidth_utilization", "%"),
    bwp("in_ratelimit_drop_pps", "Count/s"),
    bwp("out_ratelimit_drop_pps", "Count/s"),
    // acs_oss_dashboard (OSS), bucket level; counts and bytes are totals per 60 s period.
    oss("TotalRequestCount", "Count"),
    oss("GetObjectCount", "Count"),
    oss("PutObjectCount", "Count"),
    oss("HeadObjectCount", "Count"),
    oss("ServerErrorCount", "Count"),
    oss("ServerErrorRate", "%"),
    oss("Availability", "%"),
    oss("InternetSend", "Byte"),
    oss("IntranetSend", "Byte"),
    oss("CdnSend", "Byte"),
    oss("InternetRecv", "Byte"),
    oss("IntranetRecv", "Byte"),
    oss("CdnRecv", "Byte"),
    oss("GetObjectE2eLatency", "ms"),
    // OSS metering: hourly, one series per storage class.
    MetricMeta {
        namespace: NS_OSS,
        metric: "MeteringStorageUtilization",
        unit: "Byte",
        periods: P_3600,
        statistics: VALUE,
        dimensions: DIMS_OSS_STORAGE,
        fan_out: FAN_OSS_STORAGE,
    },
];

/// The entry for `metric` in `namespace`, if the simulated CMS knows it.
pub fn find(namespace: &str, metric: &str) -> Option<&'static MetricMeta> {
    CATALOGUE
        .iter()
        .find(|m| m.namespace == namespace && m.metric == metric)
}

/// Every entry of namespace `ns`, in table order.
pub fn namespace(ns: &str) -> impl Iterator<Item = &'static MetricMeta> + '_ {
    CATALOGUE.iter().filter(move |m| m.namespace == ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_well_formed() {
        for m in CATALOGUE {
            let id = format!("{}/{}", m.namespace, m.metric);
            assert!(!m.periods.is_empty(), "{id}: no periods");
            assert!(
                m.periods.windows(2).all(|w| w[0] < w[1]),
                "{id}: periods not strictly ascending"
            );
            assert!(!m.statistics.is_empty(), "{id}: no statistics");
            assert!(!m.unit.is_empty(), "{id}: no unit");
            assert_eq!(
                m.dimensions.first(),
                Some(&"userId"),
                "{id}: userId not first"
            );
            for (key, values) in m.fan_out {
                assert!(
                    m.dimensions.contains(key),
                    "{id}: fan-out key {key} not a dimension"
                );
                assert!(!values.is_empty(), "{id}: fan-out key {key} has no values");
            }
        }
    }

    #[test]
    fn entries_are_unique() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert!(
                    !(a.namespace == b.namespace && a.metric == b.metric),
                    "duplicate {}/{}",
                    a.namespace,
                    a.metric
                );
            }
        }
    }

    #[test]
    fn find_and_namespace() {
        let m = find("acs_bandwidth_package", "net_rx.rate").map(|m| m.periods);
        assert_eq!(m, Some(&[60u64, 300, 600][..]));
        assert!(find("acs_slb_dashboard", "NoSuchMetric").is_none());
        // Same metric name in two namespaces stays apart.
        let slb = find("acs_slb_dashboard", "InstanceActiveConnection").map(|m| m.namespace);
        assert_eq!(slb, Some("acs_slb_dashboard"));
        assert!(namespace("acs_gwlb").all(|m| m.namespace == "acs_gwlb"));
        assert_eq!(namespace("acs_gwlb").count(), 6);
        assert_eq!(namespace("no_such_namespace").count(), 0);
    }
}
