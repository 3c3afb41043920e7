//! The MCP client's integration tests: configuration, and real servers
//! nobody on this project wrote, run in the sandbox.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod servers;
mod support;
