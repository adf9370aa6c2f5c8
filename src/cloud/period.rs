//! Which period to ask a cloud for and which window to query, the same rule on every cloud
//! (DESIGN "Period"): the supported period closest to the scrape interval, and a window aligned to
//! it that ends at the newest complete period and reaches back over the ingestion delay.

/// Choose the period: the supported one closest to the scrape interval, never below the smallest
/// supported, the longer on a tie (a period shorter than the interval would skip points);
/// a pinned period (daily storage) wins when supported, else the supported one closest to it;
/// the fallback when nothing is known.
pub fn choose_period(
    supported: &[u64],
    interval_s: u64,
    pinned: Option<u64>,
    fallback_s: u64,
) -> u64 {
    if let Some(p) = pinned {
        if supported.is_empty() || supported.contains(&p) {
            return p;
        }
    }
    let target = pinned.unwrap_or(interval_s);
    let interval_s = target;
    let mut best: Option<u64> = None;
    for &p in supported {
        if p == 0 {
            continue;
        }
        best = Some(match best {
            None => p,
            Some(b) => {
                let (db, dp) = (b.abs_diff(interval_s), p.abs_diff(interval_s));
                if dp < db || (dp == db && p > b) {
                    p
                } else {
                    b
                }
            }
        });
    }
    best.or(pinned).unwrap_or(fallback_s)
}

/// The query window `(start, end]` in Unix ms for the newest complete point: `end` is the start
/// of the newest period that has ended, `start` reaches one period plus the ingestion delay
/// further back. Daily points may be stamped at a local midnight rather than UTC's (Tencent
/// days are likely +08:00), so daily windows reach back one more day: a complete point is always
/// inside.
pub fn window(now_ms: i64, period_s: u64, ingestion_delay_s: u64) -> (i64, i64) {
    // Periods come from metadata or config; a day is 86 400 s, so this cannot overflow.
    let p = (period_s.clamp(1, 366 * 86_400) * 1000) as i64;
    let aligned = now_ms.div_euclid(p) * p;
    let end = aligned - p;
    let daily = i64::from(period_s >= 86_400);
    let back = 1 + daily + ingestion_delay_s.div_ceil(period_s.max(1)) as i64;
    (end - back * p, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_the_supported_one_closest_to_the_interval() {
        assert_eq!(choose_period(&[60, 300], 60, None, 60), 60);
        assert_eq!(choose_period(&[60, 300], 120, None, 60), 60);
        assert_eq!(choose_period(&[60, 300], 240, None, 60), 300);
        assert_eq!(choose_period(&[60, 300, 900], 30, None, 60), 60);
        assert_eq!(choose_period(&[60, 180], 120, None, 60), 180);
        assert_eq!(choose_period(&[15, 60], 15, None, 60), 15);
        assert_eq!(choose_period(&[], 60, None, 90), 90);
        assert_eq!(choose_period(&[60, 3600], 60, Some(3600), 60), 3600);
        // A pinned period the metadata lacks: the supported one closest to it.
        assert_eq!(choose_period(&[60, 300], 60, Some(3600), 60), 300);
        assert_eq!(choose_period(&[300, 3600], 60, Some(86400), 60), 3600);
        assert_eq!(choose_period(&[], 60, Some(3600), 60), 3600);
    }

    #[test]
    fn window_ends_at_the_newest_complete_period_and_reaches_back_for_delay() {
        // now = 2025-01-01T00:10:30Z
        let now = 1_735_690_230_000;
        let (start, end) = window(now, 60, 120);
        assert_eq!(end, 1_735_690_140_000); // 00:09:00, the point covering 00:09–00:10
        assert_eq!(start, end - 3 * 60_000);
        let (start, end) = window(now, 3600, 120);
        assert_eq!(end, 1_735_689_600_000 - 3_600_000);
        assert_eq!(start, end - 2 * 3_600_000);
        // Daily: yesterday is the newest complete day; three days are asked for.
        let (start, end) = window(now, 86_400, 120);
        assert_eq!(end, 1_735_603_200_000);
        assert_eq!(start, end - 3 * 86_400_000);
        // Exactly on a boundary, the period that just ended is complete.
        let (_, end) = window(1_735_690_200_000, 60, 0);
        assert_eq!(end, 1_735_690_140_000);
    }
}
