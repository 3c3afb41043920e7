//! A profile's capacity, shared by every process that uses it: optional
//! requests/min and tokens/min limits (token buckets), and a shared backoff:
//! when the provider answers 429, every call on the profile waits out the
//! same window instead of each hammering it on its own schedule.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Limits of one profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// (Estimated prompt) tokens per minute.
    pub tpm: Option<u32>,
}

#[derive(Debug)]
struct Bucket {
    per_minute: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Bucket {
        Bucket { per_minute: f64::from(per_minute.max(1)), level: f64::from(per_minute.max(1)), at: now }
    }

    fn refill(&mut self, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() * self.per_minute / 60.0;
        self.level = (self.level + gained).min(self.per_minute);
        self.at = now;
    }

    /// How long until `amount` is available (zero if it is now).
    fn wait_for(&self, amount: f64) -> Duration {
        let amount = amount.min(self.per_minute);
        if self.level >= amount {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((amount - self.level) * 60.0 / self.per_minute)
    }
}

#[derive(Debug)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    blocked_until: Option<Instant>,
}

/// One profile's shared capacity.
#[derive(Debug)]
pub struct Capacity {
    state: Mutex<State>,
}

impl Capacity {
    /// Capacity under `limits`.
    pub fn new(limits: Limits) -> Capacity {
        let now = Instant::now();
        Capacity {
            state: Mutex::new(State {
                requests: limits.rpm.map(|n| Bucket::new(n, now)),
                tokens: limits.tpm.map(|n| Bucket::new(n, now)),
                blocked_until: None,
            }),
        }
    }

    /// Waits until a request of about `tokens` prompt tokens may go out, and takes it.
    pub async fn acquire(&self, tokens: u64) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let mut wait = s.blocked_until.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
                if let Some(b) = s.requests.as_mut() {
                    b.refill(now);
                    wait = wait.max(b.wait_for(1.0));
                }
                if let Some(b) = s.tokens.as_mut() {
                    b.refill(now);
                    wait = wait.max(b.wait_for(tokens as f64));
                }
                if wait.is_zero() {
                    if let Some(b) = s.requests.as_mut() {
                        b.level -= 1.0;
                    }
                    if let Some(b) = s.tokens.as_mut() {
                        b.level -= (tokens as f64).min(b.per_minute);
                    }
                    return;
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The provider said to slow down: nobody on this profile calls for `delay`.
    pub fn back_off(&self, delay: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + delay;
        s.blocked_until = Some(s.blocked_until.map_or(until, |t| t.max(until)));
    }

    /// Whether the profile is backing off now.
    pub fn backing_off(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.blocked_until.is_some_and(|t| t > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn elapsed_while(f: impl std::future::Future<Output = ()>) -> Duration {
        let t = Instant::now();
        f.await;
        t.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_backoff_holds_every_caller_of_the_profile() {
        let c = Capacity::new(Limits::default());
        c.acquire(10).await;
        c.back_off(Duration::from_secs(2));
        // Another process's call, started after the 429, waits out the window too.
        let (a, b) = tokio::join!(elapsed_while(c.acquire(10)), elapsed_while(c.acquire(10)));
        assert_eq!((a, b), (Duration::from_secs(2), Duration::from_secs(2)));
        // A longer window wins over a shorter one.
        c.back_off(Duration::from_secs(5));
        c.back_off(Duration::from_secs(1));
        assert_eq!(elapsed_while(c.acquire(10)).await, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_and_tokens_per_minute_are_spread_out() {
        let c = Capacity::new(Limits { rpm: Some(2), tpm: None });
        assert_eq!(elapsed_while(c.acquire(1)).await, Duration::ZERO);
        assert_eq!(elapsed_while(c.acquire(1)).await, Duration::ZERO);
        // The bucket is empty: one request refills in 30 s.
        assert_eq!(elapsed_while(c.acquire(1)).await, Duration::from_secs(30));

        let c = Capacity::new(Limits { rpm: None, tpm: Some(600) });
        assert_eq!(elapsed_while(c.acquire(600)).await, Duration::ZERO);
        // 300 tokens at 10 a second.
        assert_eq!(elapsed_while(c.acquire(300)).await, Duration::from_secs(30));
    }
}
