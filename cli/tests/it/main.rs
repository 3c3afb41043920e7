//! CLI tests: the `libos` binary end to end.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod commands;
mod crash;
mod crash_matrix;
mod e2e;
mod errors;
mod http;
mod listing;
mod logs;
mod mcp;
mod mcp_approval;
mod mcp_run;
mod parking;
mod planted;
mod sandbox;
mod serve;
mod store_faults;
mod support;
mod terminal;
mod timers;
mod tty;
mod usage;
