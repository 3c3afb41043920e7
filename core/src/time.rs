//! Timestamps: microseconds since the Unix epoch, UTC.
//!
//! Integers rather than text in the store: they sort, compare and hash the same
//! everywhere, and they are portable to any SQL backend.

use std::fmt;
use std::time::Duration;

/// Where the current time comes from. The domain never reads a clock: the
/// kernel holds one (the system clock, or a manual one in tests) and passes
/// the time it reads into every rule that depends on it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// This time plus a duration (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_micros().min(i64::MAX as u128) as i64))
    }

    /// Time elapsed from `earlier` to `self`, zero if negative.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// RFC 3339 with microseconds, e.g. `2026-11-21T10:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            None => format!("@{}us", self.0),
        }
    }

    /// Parses RFC 3339 (`2026-11-21T10:00:00Z`) or a relative age such as
    /// `30s`, `15m`, `2h`, `7d` meaning that long before `now`.
    pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(Timestamp(dt.timestamp_micros()));
        }
        let d = parse_duration(text)
            .map_err(|_| format!("invalid time `{text}`: expected RFC 3339 or an age like 30s, 15m, 2h, 7d"))?;
        Ok(Timestamp(now.0.saturating_sub(d.as_micros() as i64)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses a duration such as `500ms`, `30s`, `15m`, `2h`, `7d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration `{text}`: expected e.g. 30s, 15m, 2h, 7d"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(format!("invalid duration `{text}`: unknown unit `{unit}`")),
    };
    Ok(d)
}

/// A duration as [`parse_duration`] reads it back: the largest unit that
/// holds it exactly (`90s`, `15m`, `2h`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A short human age: `4s`, `12m`, `3h`, `2d`.
pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
