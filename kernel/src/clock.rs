//! The kernel's clocks: the system's, and a manual one for tests of timing
//! rules (lease expiry, timers, backoff) that must not sleep.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::{Clock, Timestamp};

/// The wall clock (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        system_now()
    }
}

/// The wall clock's time, for code with no kernel at hand (a terminal
/// rendering ages, a command parsing `--since 5m`).
pub fn system_now() -> Timestamp {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    Timestamp(micros)
}

/// A clock that moves only when told to. Shared by cloning an `Arc` of it.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { micros: AtomicI64::new(start.micros()) }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let step = d.as_micros().min(i64::MAX as u128) as i64;
        self.micros.fetch_add(step, Ordering::SeqCst);
    }

    /// Sets the clock to `t` (backwards too: a clock stepped back by NTP).
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}
