//! Kernel calls: tools whose whole effect is a change of kernel state, so
//! they commit atomically with their audit record inside the quantum's
//! commit (spawn, wait, messages, timers, questions), and what a call needs
//! from the capability table.

use std::fmt;
use std::time::Duration;

use crate::budget::Budget;
use crate::caps::{Basis, Decision, GrantSpec, Resource, Right, Rights};
use crate::ids::{ImageDigest, ObjectId, Pid};
use crate::ipc::{MessageFilter, NewMessage};

/// What `signal` does to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Stop it where it is.
    Pause,
    /// Return it to the state it was paused in.
    Resume,
    /// End it.
    Kill,
}

impl SignalAction {
    /// `pause`, `resume` or `kill`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalAction::Pause => "pause",
            SignalAction::Resume => "resume",
            SignalAction::Kill => "kill",
        }
    }
}

/// An image a process asks to spawn, resolved by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnImage {
    /// The registered image.
    pub digest: ImageDigest,
    /// Its name.
    pub name: String,
    /// The grants its spec lists (attenuated like the requested ones).
    pub grants: Vec<GrantSpec>,
    /// The budget its spec gives (capped by what the parent has left).
    pub budget: Budget,
}

/// A kernel call, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syscall {
    /// Create a child process.
    Spawn {
        /// The image (boxed: it is by far the largest call).
        image: Box<SpawnImage>,
        /// The child's goal.
        goal: String,
        /// Grants asked for the child.
        grants: Vec<GrantSpec>,
        /// A budget asked for the child (within its image's).
        budget: Option<Box<Budget>>,
    },
    /// Wait for one own child, or any (`None`), to end.
    Wait {
        /// Which child.
        target: Option<Pid>,
    },
    /// List own children.
    Children,
    /// Pause, resume or kill a process.
    Signal {
        /// The target.
        pid: Pid,
        /// What to do.
        action: SignalAction,
    },
    /// Send a message.
    Send(NewMessage),
    /// Take matching unread messages without waiting.
    Read {
        /// Which.
        filter: MessageFilter,
    },
    /// Take the first matching unread message, parking until one comes.
    Receive {
        /// Which.
        filter: MessageFilter,
    },
    /// Park for a while.
    Sleep {
        /// How long.
        duration: Duration,
    },
    /// Park on a question to the operator.
    AskHuman {
        /// The question.
        question: String,
    },
    /// Create or update an object in the caller's namespace.
    MemoryWrite {
        /// Its name.
        name: String,
        /// Its content.
        content: String,
        /// Its kind.
        kind: String,
    },
    /// Read an object: by name in the caller's namespace, or by oid from its view.
    MemoryRead {
        /// Which.
        target: ObjectRef,
    },
    /// List the caller's view (optionally one namespace of it).
    MemoryList {
        /// Only this namespace.
        namespace: Option<String>,
    },
    /// Ranked full-text search over the objects the caller may read.
    MemorySearch {
        /// What to look for.
        query: crate::memory::SearchQuery,
        /// Only this namespace of the view.
        namespace: Option<String>,
        /// At most this many hits (1 to [`crate::memory::MAX_SEARCH_HITS`]).
        limit: usize,
    },
    /// Give one of the caller's own children a handle on an object.
    MemoryShare {
        /// The object.
        oid: ObjectId,
        /// The child.
        pid: Pid,
        /// At most the caller's rights on it.
        rights: Rights,
    },
    /// Pin (or unpin) an object of the caller's view into its prompt.
    MemoryPin {
        /// The object.
        oid: ObjectId,
        /// Pin or unpin.
        pinned: bool,
    },
}

/// An object named by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef {
    /// A name in the caller's own namespace.
    Name(String),
    /// An oid in its view.
    Oid(ObjectId),
}

/// Which relatives a call may touch without a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinship {
    /// None: a grant decides.
    None,
    /// The process's parent or one of its own children.
    ParentOrChild(Pid),
    /// One of its own children.
    Child(Pid),
}

/// One (resource, right) a call touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The resource.
    pub resource: Resource,
    /// The right.
    pub right: Right,
    /// Relatives that need no grant.
    pub kinship: Kinship,
}

impl Need {
    /// A need decided by grants only.
    pub fn grant(resource: Resource, right: Right) -> Need {
        Need { resource, right, kinship: Kinship::None }
    }
}

/// A need and how it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The need.
    pub need: Need,
    /// The decision.
    pub decision: Decision,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.need.right, self.need.resource, self.decision.effect)?;
        match (self.decision.basis, self.decision.grant) {
            (Basis::Confined, _) => f.write_str(" (confined)"),
            (Basis::Kinship, _) => f.write_str(" (kinship)"),
            (Basis::View, _) => f.write_str(" (memory view)"),
            (Basis::Binding, _) => f.write_str(" (not what the audit log recorded)"),
            (Basis::Grants, Some(g)) => write!(f, " (grant {g})"),
            (Basis::Grants, None) => f.write_str(" (no grant matches)"),
        }
    }
}
