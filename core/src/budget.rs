//! Budgets: a limit per dimension of what a process may consume.
//!
//! Dimensions: quanta, model calls, input and output tokens, cost (in
//! micro-USD, from per-profile prices), tool calls, children and wall time.
//! A dimension without a limit is unlimited. Running out of any ends the
//! process `failed` with `budget_exhausted`; what it did so far (files,
//! messages, objects, transcript) stays.
//!
//! A child's budget is carved out of its parent's: it is capped by what the
//! parent can spare ([`Budget::spare`]: what is left, less a reserve to
//! wait and exit; half of it when the spawn asked for no budget), and that
//! allotment is reserved from the parent while the child lives; when the child ends, the reservation is released and what
//! the child actually used is charged to the parent instead.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::Usage;
use crate::time::parse_duration;

/// One dimension of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Quanta started.
    Quanta,
    /// Model calls made.
    ModelCalls,
    /// Input tokens.
    TokensIn,
    /// Output tokens.
    TokensOut,
    /// Cost, micro-USD.
    Cost,
    /// Tool calls dispatched.
    ToolCalls,
    /// Children spawned.
    Children,
    /// Seconds since spawn.
    WallTime,
}

impl Dimension {
    /// Every dimension, in display order.
    pub const ALL: [Dimension; 8] = [
        Dimension::Quanta,
        Dimension::ModelCalls,
        Dimension::TokensIn,
        Dimension::TokensOut,
        Dimension::Cost,
        Dimension::ToolCalls,
        Dimension::Children,
        Dimension::WallTime,
    ];

    /// The name used in `--budget`, image specs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Quanta => "quanta",
            Dimension::ModelCalls => "model_calls",
            Dimension::TokensIn => "tokens_in",
            Dimension::TokensOut => "tokens_out",
            Dimension::Cost => "cost_usd",
            Dimension::ToolCalls => "tool_calls",
            Dimension::Children => "children",
            Dimension::WallTime => "wall_time",
        }
    }

    /// The dimension's place in a budget vector (`[u64; N]`).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Limits per dimension (`None`: unlimited). Amounts are in each
/// dimension's unit: counts, tokens, micro-USD, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    limits: [Option<u64>; 8],
}

/// Amounts per dimension (usage, reservations).
pub type Amounts = [u64; 8];

fn usd(micros: u64) -> String {
    format!("${:.4}", micros as f64 / 1e6)
}

/// An amount in its dimension's unit, for people.
pub fn show(d: Dimension, v: u64) -> String {
    match d {
        Dimension::Cost => usd(v),
        Dimension::WallTime => format!("{v}s"),
        _ => v.to_string(),
    }
}

impl Budget {
    /// No limits.
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    /// The limit of one dimension.
    pub fn get(&self, d: Dimension) -> Option<u64> {
        self.limits[d.index()]
    }

    /// Sets one dimension.
    pub fn set(&mut self, d: Dimension, limit: Option<u64>) {
        self.limits[d.index()] = limit;
    }

    /// True when nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.limits.iter().all(Option::is_none)
    }

    /// Parses `quanta=50`, `tokens_in=20000`, `cost_usd=0.25`, `wall_time=10m`.
    pub fn set_from(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("budget `{assignment}` is not DIMENSION=VALUE (e.g. quanta=50, cost_usd=0.5)"))?;
        let d = Dimension::ALL.into_iter().find(|d| d.as_str() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.as_str()).collect();
            format!("unknown budget dimension `{name}` (dimensions are {})", names.join(", "))
        })?;
        let value = value.trim();
        let amount = match d {
            Dimension::Cost => {
                let dollars: f64 =
                    value.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                        format!("budget `{assignment}`: cost_usd must be a non-negative number of dollars")
                    })?;
                (dollars * 1e6).round() as u64
            }
            Dimension::WallTime => parse_duration(value).map_err(|e| format!("budget `{assignment}`: {e}"))?.as_secs(),
            _ => value.parse().map_err(|_| format!("budget `{assignment}`: {name} must be a whole number"))?,
        };
        self.set(d, Some(amount));
        Ok(())
    }

    /// Parses a list of assignments.
    pub fn parse<'a>(assignments: impl IntoIterator<Item = &'a str>) -> Result<Budget, String> {
        let mut b = Budget::default();
        for a in assignments {
            for part in a.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                b.set_from(part)?;
            }
        }
        Ok(b)
    }

    /// For storage.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for d in Dimension::ALL {
            if let Some(v) = self.get(d) {
                map.insert(d.as_str().to_string(), json!(v));
            }
        }
        Value::Object(map)
    }

    /// From storage; unknown keys are ignored.
    pub fn from_json(v: &Value) -> Budget {
        let mut b = Budget::default();
        for d in Dimension::ALL {
            b.set(d, v.get(d.as_str()).and_then(Value::as_u64));
        }
        b
    }

    /// Per dimension, the smaller of the two limits.
    pub fn cap(&self, other: &Budget) -> Budget {
        let mut out = *self;
        for d in Dimension::ALL {
            out.set(
                d,
                match (self.get(d), other.get(d)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            );
        }
        out
    }

    /// What is left after `used` (and `reserved` for children) at `age`:
    /// a budget whose limits are the remainders.
    pub fn remaining(&self, used: &Amounts, reserved: &Amounts) -> Budget {
        let mut out = Budget::default();
        for d in Dimension::ALL {
            let i = d.index();
            out.set(d, self.get(d).map(|l| l.saturating_sub(used[i].saturating_add(reserved[i]))));
        }
        out
    }

    /// What a process may give a child now, keeping enough for itself to
    /// wait for it and exit: per limited dimension, what is left after
    /// `used` (which counts the spawn being made) and `reserved`, less a
    /// tenth of the limit, and less at least two quanta, model calls and
    /// tool calls. Wall time is shared, not given.
    pub fn spare(&self, used: &Amounts, reserved: &Amounts) -> Budget {
        let left = self.remaining(used, reserved);
        let mut out = Budget::default();
        for d in Dimension::ALL {
            let (Some(limit), Some(left)) = (self.get(d), left.get(d)) else { continue };
            let keep = match d {
                Dimension::Quanta | Dimension::ModelCalls | Dimension::ToolCalls => (limit / 10).max(2),
                Dimension::TokensIn | Dimension::TokensOut | Dimension::Cost => limit / 10,
                Dimension::Children | Dimension::WallTime => 0,
            };
            out.set(d, Some(left.saturating_sub(keep)));
        }
        out
    }

    /// Half of every limit, rounded up: a child's share when it asked for none.
    pub fn half(&self) -> Budget {
        let mut out = *self;
        for d in Dimension::ALL {
            out.set(d, self.get(d).map(|v| if d == Dimension::WallTime { v } else { v.div_ceil(2) }));
        }
        out
    }

    /// The first dimension run out, with a one-line reason: a process in
    /// this state cannot start another quantum. (`children` only limits
    /// spawning: see [`Budget::child_allowed`].)
    pub fn exhausted(&self, used: &Amounts, reserved: &Amounts) -> Option<(Dimension, String)> {
        Dimension::ALL.into_iter().filter(|d| *d != Dimension::Children).find_map(|d| {
            let limit = self.get(d)?;
            let i = d.index();
            let spent = used[i].saturating_add(reserved[i]);
            (spent >= limit).then(|| {
                let held = if reserved[i] > 0 {
                    format!(" ({} held for children)", show(d, reserved[i]))
                } else {
                    String::new()
                };
                (d, format!("{} budget exhausted: {} of {} used{held}", d.as_str(), show(d, spent), show(d, limit)))
            })
        })
    }
}

impl Budget {
    /// Whether one more child fits, or why not.
    pub fn child_allowed(&self, used: &Amounts) -> Result<(), String> {
        match self.get(Dimension::Children) {
            Some(limit) if used[Dimension::Children.index()] >= limit => {
                Err(format!("children budget exhausted: {} of {limit} spawned", used[Dimension::Children.index()]))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unlimited() {
            return f.write_str("unlimited");
        }
        let parts: Vec<String> = Dimension::ALL
            .into_iter()
            .filter_map(|d| {
                self.get(d).map(|v| match d {
                    Dimension::Cost => format!("{}={}", d.as_str(), v as f64 / 1e6),
                    _ => format!("{}={}", d.as_str(), show(d, v)),
                })
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// Usage as amounts, with the process's age for wall time.
pub fn amounts(u: &Usage, age: Duration) -> Amounts {
    [u.quanta, u.model_calls, u.tokens_in, u.tokens_out, u.cost_micros, u.tool_calls, u.children, age.as_secs()]
}

/// Amounts from storage.
pub fn amounts_from_json(v: &Value) -> Amounts {
    let mut out = [0; 8];
    for d in Dimension::ALL {
        out[d.index()] = v.get(d.as_str()).and_then(Value::as_u64).unwrap_or(0);
    }
    out
}

/// Amounts for storage (zeros omitted).
pub fn amounts_to_json(a: &Amounts) -> Value {
    let mut map = serde_json::Map::new();
    for d in Dimension::ALL {
        if a[d.index()] > 0 {
            map.insert(d.as_str().to_string(), json!(a[d.index()]));
        }
    }
    Value::Object(map)
}

/// The allotment a child reserves from its parent: its budget's limits in
/// every dimension the parent limits (wall time is shared, not reserved).
pub fn allotment(child: &Budget, parent: &Budget) -> Amounts {
    let mut out = [0; 8];
    for d in Dimension::ALL {
        if d != Dimension::WallTime && parent.get(d).is_some() {
            out[d.index()] = child.get(d).unwrap_or(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_show_and_run_out() {
        let b = Budget::parse(["quanta=3, cost_usd=0.5", "wall_time=10m"]).unwrap();
        assert_eq!(b.to_string(), "quanta=3 cost_usd=0.5 wall_time=600s");
        assert_eq!(Budget::from_json(&b.to_json()), b);
        let mut used = [0; 8];
        assert_eq!(b.exhausted(&used, &[0; 8]), None);
        used[Dimension::Quanta.index()] = 3;
        assert_eq!(
            b.exhausted(&used, &[0; 8]),
            Some((Dimension::Quanta, "quanta budget exhausted: 3 of 3 used".to_string()))
        );
        let errors: Vec<String> = ["quanta", "speed=3", "quanta=x", "cost_usd=-1", "wall_time=soon"]
            .iter()
            .map(|a| Budget::parse([*a]).unwrap_err())
            .collect();
        assert_eq!(
            errors,
            vec![
                "budget `quanta` is not DIMENSION=VALUE (e.g. quanta=50, cost_usd=0.5)",
                "unknown budget dimension `speed` (dimensions are quanta, model_calls, tokens_in, tokens_out, cost_usd, tool_calls, children, wall_time)",
                "budget `quanta=x`: quanta must be a whole number",
                "budget `cost_usd=-1`: cost_usd must be a non-negative number of dollars",
                "budget `wall_time=soon`: invalid duration `soon`: expected e.g. 30s, 15m, 2h, 7d",
            ]
        );
    }

    #[test]
    fn a_child_budget_is_capped_by_what_the_parent_has_left() {
        let parent = Budget::parse(["quanta=10,tokens_in=1000"]).unwrap();
        let mut used = [0; 8];
        used[Dimension::TokensIn.index()] = 400;
        let left = parent.remaining(&used, &[0; 8]);
        let child = Budget::parse(["tokens_in=5000,tool_calls=7"]).unwrap().cap(&left);
        assert_eq!(child.to_string(), "quanta=10 tokens_in=600 tool_calls=7");
        assert_eq!(allotment(&child, &parent)[Dimension::TokensIn.index()], 600);
        assert_eq!(allotment(&child, &parent)[Dimension::ToolCalls.index()], 0);
    }
}
