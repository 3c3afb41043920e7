//! The libos kernel: the process table, process states, the audit chain and
//! the store they live in.
//!
//! Everything that must survive a crash or be proven later goes through here,
//! as synchronous transactions behind a small typed API ([`Kernel`]). This
//! crate deliberately does not call models or run tools; its only network
//! I/O is to a PostgreSQL store, and it is the only crate with SQL.
//!
//! The domain (ids, time, capabilities, budgets, states, syscalls, audit
//! records) is the I/O-free crate `libos-core`; its modules are re-exported
//! here under the same names, so `libos_kernel::caps` is `libos_core::caps`.
//!
//! Modules of this crate, in reading order:
//! - [`clock`]: the system clock and a manual one (time is a parameter of the core).
//! - `store`: the store (SQLite or PostgreSQL) behind typed operations (private rows).
//! - [`kernel`](Kernel): the API, one transaction per operation.
//! - [`AsyncKernel`]: the same API for async code, every store call run on
//!   tokio's blocking pool and awaited, so no async worker waits on the store.
//! - [`error`]: error types.

pub use libos_core::{
    actor, audit, budget, caps, ids, ipc, memory, process, quantum, state, syscall, text, time, tool_name,
};

pub mod clock;
pub mod error;
mod kernel;
mod store;
#[doc(hidden)]
pub mod testing;

pub use actor::Actor;
pub use audit::{AuditFilter, AuditKind, AuditRecord, ChainBreak, Outcome, VerifyReport};
pub use clock::{ManualClock, SystemClock};
pub use error::{KernelError, OpenError, StoreError};
pub use ids::{AuditSeq, Generation, GrantId, ImageDigest, ModelCallId, MsgId, ObjectId, Pid, RequestId, SchedulerId};
pub use kernel::{AsyncKernel, Kernel, OpenOptions};
pub use kernel::{Authorization, CommitReceipt, Decided, GrantStatus, MAX_GOAL_BYTES, Outlook, QuantumEnd, Verdict};
pub use process::{ProcessFilter, ProcessInfo, SpawnSpec, Usage};
pub use quantum::{
    Action, ApprovedCall, Binding, CallDetail, CompactTurn, EffectIntent, InboxSummary, Lease, ModelCallOutcome,
    ModelCallRecord, ModelCallRow, Next, ParkedCall, QuantumCommit, RecentHistory, TokenUsage, ToolCallRecord,
    ToolResultRecord, TranscriptEntry,
};
pub use state::{FailureKind, ProcState, WaitOn};
pub use store::{Durability, GroupStats, OpenMode, StoreLocation, schema_version};
pub use time::{Clock, Timestamp};
