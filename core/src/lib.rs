//! The libos core: the domain every other crate speaks, with no I/O.
//!
//! Identifiers, time, actors, budgets, capabilities and their decision rule,
//! memory views, messages and requests, process states and their one
//! transition function, syscalls, and audit records with their canonical
//! bytes and chain. Everything here is a pure function of its arguments:
//! no store, no network, no threads, and no clock — time is a parameter
//! (the kernel's [`Clock`] supplies it), so a timing rule is
//! tested by passing the time, not by sleeping.
//!
//! `libos-tools` and `libos-images` depend on this crate alone; the kernel
//! (`libos-kernel`) adds the store and its transactions on top and
//! re-exports every module here under the same name. A test in
//! `libos-tests` (`layers`) fails if the dependency direction is broken.
//!
//! Modules, in reading order:
//! - [`ids`]: newtype identifiers (`Pid`, `AuditSeq`, ...).
//! - [`time`]: timestamps, durations and the clock trait.
//! - [`text`]: model text made safe to show on a terminal (control characters escaped).
//! - [`actor`]: who did something (`pid:N`, `human:NAME`, `kernel`).
//! - [`budget`]: budget vectors and carving children's out of parents'.
//! - [`caps`]: resources, rights, grants and the decision rule.
//! - [`tool_name`]: a tool's name, checked once to be safe on the wire.
//! - [`memory`]: the object store and process views.
//! - [`ipc`]: messages and requests to humans.
//! - [`state`]: process states and the one transition function.
//! - [`audit`]: audit records, their canonical form, the hash chain and its verifier.
//! - [`process`]: process information and spawn specs.
//! - [`quantum`]: leases and the records a quantum commits.
//! - [`syscall`]: kernel calls and what a call needs from the capability table.

pub mod actor;
pub mod audit;
pub mod budget;
pub mod caps;
pub mod ids;
pub mod ipc;
pub mod memory;
pub mod process;
pub mod quantum;
pub mod state;
pub mod syscall;
pub mod text;
pub mod time;
pub mod tool_name;

pub use actor::Actor;
pub use audit::{
    AuditAction, AuditDecision, AuditFilter, AuditKind, AuditRecord, ChainBreak, KernelAction, Outcome, VerifyReport,
};
pub use ids::{AuditSeq, Generation, GrantId, ImageDigest, ModelCallId, MsgId, ObjectId, Pid, RequestId, SchedulerId};
pub use process::{ProcessFilter, ProcessInfo, SpawnSpec, Usage};
pub use quantum::{
    Action, ApprovedCall, Binding, CallDetail, CompactTurn, EffectIntent, InboxSummary, Lease, ModelCallOutcome,
    ModelCallRecord, ModelCallRow, Next, ParkedCall, QuantumCommit, RecentHistory, TokenUsage, ToolCallRecord,
    ToolResultRecord, TranscriptEntry,
};
pub use state::{FailureKind, ProcState, WaitOn};
pub use time::{Clock, Timestamp};
pub use tool_name::ToolName;
