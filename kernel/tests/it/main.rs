//! Kernel integration tests: transitions, leases, the store, the audit chain.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_chain;
mod caps;
mod group_commit;
mod inbox;
mod lost_connections;
mod old_stores;
mod sealer;
mod store_open;
mod support;
mod transitions;

/// The suite runs on libos's harness: PostgreSQL trials are listed as
/// ignored (skipped) without `LIBOS_TEST_POSTGRES`.
fn main() {
    libos_kernel::testing::harness::main(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it"))
}
