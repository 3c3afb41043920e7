//! Newtype identifiers. Nothing crosses a crate boundary as a bare integer or string.

use std::fmt;
use std::str::FromStr;

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw integer, for storage and display.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                s.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map($name)
                    .ok_or_else(|| format!("invalid {} `{}`: expected a positive integer", $what, s))
            }
        }
    };
}

int_id!(
    /// A process id: monotonic per store, never reused.
    Pid,
    "pid"
);
int_id!(
    /// The position of a record in the audit chain, starting at 1.
    AuditSeq,
    "audit sequence number"
);
int_id!(
    /// A capability grant.
    GrantId,
    "grant id"
);
int_id!(
    /// An approval request or a question to a human.
    RequestId,
    "request id"
);
int_id!(
    /// A message between processes (or from the operator).
    MsgId,
    "message id"
);
int_id!(
    /// A memory object.
    ObjectId,
    "object id"
);
int_id!(
    /// One recorded model call.
    ModelCallId,
    "model call id"
);

/// Fences stale writers: bumped on every state transition of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub i64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Content address of a registered image spec (sha256 of its text, hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageDigest(pub String);

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one scheduler (one `libos run`) holding leases.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchedulerId(pub String);

impl fmt::Display for SchedulerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
