//! Retry policy: exponential backoff with jitter, honouring `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// How a client retries transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Longest delay between attempts, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 4, base: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): the server's
    /// `Retry-After` if it gave one, else `base * 2^retry` scaled by a random
    /// factor in [0.5, 1.0] so that many clients do not retry in step.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let exp = self.base.saturating_mul(1u32 << retry.min(16));
        let jitter = rand::rng().random_range(0.5..=1.0);
        exp.mul_f64(jitter).min(self.max_delay)
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::Utc::now();
    let d = when.with_timezone(&chrono::Utc) - now;
    Some(d.to_std().unwrap_or(Duration::ZERO))
}
