//! The HTTP API, the event stream and the console against a server on
//! 127.0.0.1:0 over a private store.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod browser;
mod events;
mod support;

/// The suite runs on libos's harness: PostgreSQL trials are listed as
/// ignored (skipped) without `LIBOS_TEST_POSTGRES`.
fn main() {
    libos_kernel::testing::harness::main(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it"))
}
