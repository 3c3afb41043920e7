//! Exit codes, decided in one place from the error that ended the command.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error |
//! | 2 | usage: unknown command or flag, bad value |
//! | 3 | not found: no such process, image, request, grant, record or MCP server |
//! | 4 | store: cannot open, locked, read-only, corrupt, newer schema |
//! | 5 | the audit chain failed verification |
//! | 6 | refused in the current state (killing an exited process, deciding a request twice) |

use libos_images::ImageError;
use libos_kernel::{KernelError, OpenError};

/// Success.
pub const OK: u8 = 0;
/// Generic failure.
pub const ERROR: u8 = 1;
/// Bad usage (clap also exits 2).
pub const USAGE: u8 = 2;
/// Something named does not exist.
pub const NOT_FOUND: u8 = 3;
/// The store could not be used.
pub const STORE: u8 = 4;
/// Audit verification failed.
pub const AUDIT_BROKEN: u8 = 5;
/// Refused in the current state.
pub const STATE: u8 = 6;

/// Raised by commands for usage problems clap cannot see (a malformed pid).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Raised by `audit verify` when the chain is broken (the message is already printed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuditBroken(pub String);

/// The exit code for an error.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<AuditBroken>().is_some() {
            return AUDIT_BROKEN;
        }
        if cause.downcast_ref::<OpenError>().is_some() {
            return STORE;
        }
        if let Some(libos_mcp::McpError::UnknownServer(_)) = cause.downcast_ref::<libos_mcp::McpError>() {
            return NOT_FOUND;
        }
        if let Some(e) = cause.downcast_ref::<ImageError>() {
            return match e {
                ImageError::NotFound { .. } => NOT_FOUND,
                _ => ERROR,
            };
        }
        if let Some(e) = cause.downcast_ref::<KernelError>() {
            return match e {
                KernelError::NoSuchProcess(_)
                | KernelError::NoSuchImage(_)
                | KernelError::NoSuchRequest(_)
                | KernelError::NoSuchGrant(_)
                | KernelError::NoSuchObject(_) => NOT_FOUND,
                KernelError::Store(_) => STORE,
                KernelError::Transition(_) | KernelError::Stale { .. } | KernelError::Refused(_) => STATE,
                KernelError::Invalid(_) | KernelError::BadToolName(_) => USAGE,
            };
        }
    }
    ERROR
}
