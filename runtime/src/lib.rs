//! The libos runtime: the scheduler, the quantum, prompts and chat models.
//!
//! This is the only crate that speaks HTTP to models. It reads and changes
//! process state only through the kernel's API and runs tools only through
//! `libos-tools`. It does not know about the CLI or terminals.
//!
//! Modules, in reading order:
//! - [`model`]: the `ChatModel` trait; OpenAI-compatible, scripted and replay models.
//! - [`config`]: `libos.toml` profiles, the environment, the model router.
//! - [`prompt`]: building a quantum's request.
//! - [`extract`]: finding exactly one tool call in an answer.
//! - [`quantum`]: one quantum, from lease to commit.
//! - [`scheduler`]: the loop that leases and runs quanta.
//! - [`images`]: what quanta share: parsed images, tool tables, workspace roots.
//! - [`mcp`]: MCP servers' tools as registry entries, listed at a run's start.
//! - [`replay`]: re-executing a finished process on its recorded answers.

pub mod config;
pub mod extract;
pub mod images;
pub mod mcp;
pub mod model;
pub mod netgate;
pub mod prompt;
pub mod quantum;
pub mod replay;
pub mod scheduler;

pub use config::{Config, ModelRouter, Profile};
pub use model::http::{HttpConfig, HttpModel};
pub use model::retry::RetryPolicy;
pub use model::scripted::{Script, ScriptedModel};
pub use model::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError, RawToolCall, RequestMeta, ToolTable};
pub use quantum::{QuantumEnv, QuantumOutcome, QuantumPolicy};
pub use scheduler::{DEFAULT_IDLE_WAIT, RunSummary, Scheduler, SchedulerConfig};
