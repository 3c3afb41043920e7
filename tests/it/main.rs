//! Cross-crate scenario tests: the kernel, images, tools and runtime together,
//! as a researcher embedding libos would use them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod approvals;
mod budgets;
mod denials;
mod embedded;
mod example;
mod fairness;
mod faults;
mod layers;
mod memory;
mod parking;
mod real_model;
mod schedulers;
mod security;
mod timers;
mod world;

/// The suite runs on libos's harness: PostgreSQL trials are listed as
/// ignored (skipped) without `LIBOS_TEST_POSTGRES`.
fn main() {
    libos_kernel::testing::harness::main(concat!(env!("CARGO_MANIFEST_DIR"), "/it"))
}
