//! Retries inside the deadline: throttling, 5xx and timeouts back off exponentially with jitter;
//! auth errors and bad responses are final. A retry that could only start after the deadline is
//! not made; the last error is returned instead. Throttling is retried for as long as the
//! deadline allows, not a fixed number of times: an account's quota is shared by every client
//! of the account (the replicas of a fleet among them), so a busy second is no reason to lose a
//! job, while 5xx and timeouts stop after [`MAX_ATTEMPTS`].

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{CloudError, ErrorClass};

/// Attempts at most after 5xx and timeouts, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// First backoff.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// The backoff before attempt `attempt + 1` (attempt counts from 0): full exponential value
/// capped, then jittered into its upper half.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(MAX_BACKOFF);
    let half = capped / 2;
    half + Duration::from_micros(fastrand::u64(0..=half.as_micros() as u64))
}

/// Run `call` until it succeeds, fails finally, or no time is left. `on_retry` sees every error
/// that is retried (for the throttling self-metric).
pub async fn with_retry<T, F, Fut>(
    deadline: Instant,
    mut call: F,
    mut on_retry: impl FnMut(&CloudError),
) -> Result<T, CloudError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut attempt = 0;
    // Attempts that failed other than by throttling; only these count towards MAX_ATTEMPTS.
    let mut failures = 0;
    loop {
        match call(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                attempt += 1;
                if e.class != ErrorClass::LimitError {
                    failures += 1;
                }
                if !e.class.is_retryable() || failures >= MAX_ATTEMPTS {
                    return Err(e);
                }
                let pause = backoff(attempt - 1);
                if Instant::now() + pause >= deadline {
                    return Err(e);
                }
                on_retry(&e);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;

    fn err(class: ErrorClass) -> CloudError {
        CloudError {
            class,
            cloud: Cloud::Aliyun,
            api: "DescribeMetricLast".into(),
            region: String::new(),
            http_status: None,
            code: None,
            message: String::new(),
            request_id: None,
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..10 {
            let b = backoff(attempt);
            let full = BASE_BACKOFF.saturating_mul(1 << attempt).min(MAX_BACKOFF);
            assert!(b >= full / 2 && b <= full, "{attempt}: {b:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_and_auth_is_not() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut calls = 0;
        let r: Result<u32, _> = with_retry(
            deadline,
            |n| {
                calls += 1;
                async move {
                    if n < 2 {
                        Err(err(ErrorClass::LimitError))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| {},
        )
        .await;
        assert_eq!(r, Ok(2));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<u32, _> = with_retry(
            deadline,
            |_| {
                calls += 1;
                async { Err(err(ErrorClass::AuthError)) }
            },
            |_| {},
        )
        .await;
        assert_eq!(r.map_err(|e| e.class), Err(ErrorClass::AuthError));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_until_the_deadline_and_5xx_four_times() {
        let mut calls = 0;
        let r = with_retry(
            Instant::now() + Duration::from_secs(30),
            |_| {
                calls += 1;
                let n = calls;
                async move {
                    if n <= 7 {
                        Err(err(ErrorClass::LimitError))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| {},
        )
        .await;
        assert_eq!(r, Ok(8));
        let mut calls = 0;
        let r: Result<(), _> = with_retry(
            Instant::now() + Duration::from_secs(30),
            |_| {
                calls += 1;
                async { Err(err(ErrorClass::ServerError)) }
            },
            |_| {},
        )
        .await;
        assert_eq!(r.map_err(|e| e.class), Err(ErrorClass::ServerError));
        assert_eq!(calls, MAX_ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_past_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(10);
        let mut calls = 0;
        let r: Result<(), _> = with_retry(
            deadline,
            |_| {
                calls += 1;
                async { Err(err(ErrorClass::ServerError)) }
            },
            |_| {},
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
