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
mod memory;
mod parking;
mod real_model;
mod schedulers;
mod security;
mod timers;
mod world;
