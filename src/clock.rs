//! The time source. Production reads the system clock; tests and the golden demo output pin it,
//! so that the simulator's values (a function of time) and signatures are reproducible.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in Unix seconds, either real or pinned.
#[derive(Clone, Copy, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A fixed instant (Unix seconds), for tests and reproducible output.
    Fixed(i64),
}

impl Clock {
    /// Current time in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            Clock::Fixed(s) => s * 1000,
        }
    }

    /// Current time in Unix seconds.
    pub fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}
