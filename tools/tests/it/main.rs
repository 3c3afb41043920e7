//! Tools integration tests: parsing model calls, confinement, running tools.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod confinement;
mod parse;
mod races;
mod registry;
