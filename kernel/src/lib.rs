//! The libos kernel: the process table, process states, the audit chain and
//! the store they live in.
//!
//! Everything that must survive a crash or be proven later goes through here,
//! as synchronous transactions behind a small typed API ([`Kernel`]). This
//! crate deliberately does not call models or run tools; its only network
//! I/O is to a PostgreSQL store, and it is the only crate with SQL.
//!
//! Modules, in reading order:
//! - [`ids`]: newtype identifiers (`Pid`, `AuditSeq`, ...).
//! - [`time`]: timestamps and durations.
//! - [`text`]: model text made safe to show on a terminal (control characters escaped).
//! - [`actor`]: who did something (`pid:N`, `human:NAME`, `kernel`).
//! - [`budget`]: budget vectors and carving children's out of parents'.
//! - [`caps`]: resources, rights, grants and the decision rule (pure).
//! - [`memory`]: the object store and process views.
//! - [`ipc`]: messages and requests to humans.
//! - [`state`]: process states and the one transition function.
//! - [`audit`]: audit records, their canonical form, the hash chain and its verifier.
//! - [`process`]: process information and spawn specs.
//! - [`quantum`]: leases and the records a quantum commits.
//! - [`syscall`]: kernel calls and what a call needs from the capability table.
//! - `store`: the store (SQLite or PostgreSQL) behind typed operations (private rows).
//! - [`kernel`](Kernel): the API, one transaction per operation.
//! - [`error`]: error types.

pub mod actor;
pub mod audit;
pub mod budget;
pub mod caps;
pub mod error;
pub mod ids;
pub mod ipc;
mod kernel;
pub mod memory;
pub mod process;
pub mod quantum;
pub mod state;
mod store;
pub mod syscall;
#[doc(hidden)]
pub mod testing;
pub mod text;
pub mod time;

pub use actor::Actor;
pub use audit::{AuditFilter, AuditKind, AuditRecord, ChainBreak, Outcome, VerifyReport};
pub use error::{KernelError, OpenError, StoreError};
pub use ids::{AuditSeq, Generation, GrantId, ImageDigest, ModelCallId, MsgId, ObjectId, Pid, RequestId, SchedulerId};
pub use kernel::Kernel;
pub use kernel::{Authorization, CommitReceipt, Decided, GrantStatus, MAX_GOAL_BYTES, Outlook, QuantumEnd, Verdict};
pub use process::{ProcessFilter, ProcessInfo, SpawnSpec, Usage};
pub use quantum::{
    Action, ApprovedCall, Binding, CallDetail, CompactTurn, EffectIntent, InboxSummary, Lease, ModelCallOutcome,
    ModelCallRecord, ModelCallRow, Next, ParkedCall, QuantumCommit, RecentHistory, TokenUsage, ToolCallRecord,
    ToolResultRecord, TranscriptEntry,
};
pub use state::{FailureKind, ProcState, WaitOn};
pub use store::{OpenMode, StoreLocation, schema_version};
pub use time::Timestamp;
