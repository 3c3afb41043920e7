//! CLI tests that need PostgreSQL (`LIBOS_TEST_POSTGRES`): scheduler
//! nodes sharing one store, and opening stores there. They run on libos's
//! harness, which lists them as ignored (skipped) without the database;
//! the rest of the CLI's tests are in `tests/it`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nodes;
mod stores;
// The binary's helpers, shared with `tests/it`; not every one is used here.
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

fn main() {
    libos_kernel::testing::harness::main(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/postgres"))
}
