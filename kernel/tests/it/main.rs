//! Kernel integration tests: transitions, leases, the store, the audit chain.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_chain;
mod caps;
mod lost_connections;
mod store_open;
mod support;
mod transitions;
