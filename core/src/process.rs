//! What the kernel knows about a process, and what it takes to create one.

use std::path::PathBuf;

use crate::actor::Actor;
use crate::budget::{Amounts, Budget};
use crate::ids::{Generation, ImageDigest, Pid};
use crate::state::ProcState;
use crate::time::Timestamp;

/// Resource use so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Quanta started.
    pub quanta: u64,
    /// Model calls made (including rejected outputs and repairs).
    pub model_calls: u64,
    /// Input tokens.
    pub tokens_in: u64,
    /// Output tokens.
    pub tokens_out: u64,
    /// True if any model call reported no usage and was counted by an estimate.
    pub tokens_estimated: bool,
    /// Tool calls dispatched.
    pub tool_calls: u64,
    /// Cost of its model calls, micro-USD (from per-profile prices; 0 without prices).
    pub cost_micros: u64,
    /// Children spawned.
    pub children: u64,
}

/// A process as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its id.
    pub pid: Pid,
    /// Its parent, if it has one (root processes have none).
    pub ppid: Option<Pid>,
    /// Image name.
    pub image: String,
    /// The exact image it was spawned from.
    pub image_digest: ImageDigest,
    /// What it was asked to do.
    pub goal: String,
    /// The directory its file tools are confined to.
    pub workspace: PathBuf,
    /// Current state.
    pub state: ProcState,
    /// Scheduling priority (higher runs first).
    pub priority: i32,
    /// Bumped on every transition.
    pub generation: Generation,
    /// Its own resource use.
    pub usage: Usage,
    /// Its limits.
    pub budget: Budget,
    /// What live children hold of its budget.
    pub reserved: Amounts,
    /// What ended children spent of it.
    pub children_spent: Amounts,
    /// Spawn time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Everything needed to create a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// A registered image.
    pub image: ImageDigest,
    /// The goal, shown to the model.
    pub goal: String,
    /// The workspace directory (absolute, existing).
    pub workspace: PathBuf,
    /// Parent process, if any.
    pub parent: Option<Pid>,
    /// Scheduling priority.
    pub priority: i32,
    /// Who spawns it (audited).
    pub actor: Actor,
    /// Its limits (a child's are capped by what its parent has left).
    pub budget: Budget,
}

impl ProcessInfo {
    /// What counts against its budget besides its own use: what live
    /// children hold plus what ended children spent.
    pub fn held_for_children(&self) -> Amounts {
        let mut out = self.reserved;
        for (o, s) in out.iter_mut().zip(self.children_spent) {
            *o = o.saturating_add(s);
        }
        out
    }
}

/// Which processes a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessFilter {
    /// Non-terminal processes only.
    #[default]
    Live,
    /// Every process.
    All,
}
