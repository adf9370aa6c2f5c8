//! The simulator's metric values: a documented, deterministic function of (resource, metric,
//! extra dimensions, timestamp, period), so a test can compute the exact number the exporter must
//! print.
//!
//! ```text
//! h      = FNV-1a 32 of "<resource_id>|<metric>|<extra>"   (extra: fan-out values joined by "|", "" if none)
//! base   = (h mod 10000) / 10                              (0.0 ..= 999.9, one decimal)
//! v      = base + ((timestamp_s / period_s) mod 60)        (changes every period)
//! v      = v mod 100            when the metric's unit is "%"
//! Average = v, Value = v, Minimum = v / 2, Maximum = v * 1.5, Sum = v * period_s
//! ```

use crate::util::fnv1a32;

/// The raw value `v` of a series at a point.
pub fn raw_value(
    resource_id: &str,
    metric: &str,
    extra: &str,
    timestamp_s: i64,
    period_s: u64,
    percent: bool,
) -> f64 {
    let h = fnv1a32(format!("{resource_id}|{metric}|{extra}").as_bytes());
    let base = f64::from(h % 10_000) / 10.0;
    let step = timestamp_s
        .div_euclid(period_s.max(1) as i64)
        .rem_euclid(60) as f64;
    let v = base + step;
    if percent {
        v % 100.0
    } else {
        v
    }
}

/// A statistic derived from the raw value.
pub fn statistic(v: f64, statistic: &str, period_s: u64) -> Option<f64> {
    match statistic {
        "Average" | "Value" => Some(v),
        "Minimum" => Some(v / 2.0),
        "Maximum" => Some(v * 1.5),
        "Sum" => Some(v * period_s as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_documented_function() {
        // h = fnv1a32("lb-1|InstanceActiveConnection|")
        let h = fnv1a32(b"lb-1|InstanceActiveConnection|");
        let base = f64::from(h % 10_000) / 10.0;
        assert_eq!(
            raw_value("lb-1", "InstanceActiveConnection", "", 0, 60, false),
            base
        );
        assert_eq!(
            raw_value("lb-1", "InstanceActiveConnection", "", 120, 60, false),
            base + 2.0
        );
        assert_eq!(
            raw_value("lb-1", "InstanceActiveConnection", "", 3600, 60, false),
            base
        );
        assert!(raw_value("x", "y", "", 0, 60, true) < 100.0);
        assert_eq!(statistic(10.0, "Maximum", 60), Some(15.0));
        assert_eq!(statistic(10.0, "Sum", 60), Some(600.0));
        assert_eq!(statistic(10.0, "Nope", 60), None);
    }
}
