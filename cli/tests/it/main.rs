//! CLI tests: the `libos` binary end to end.

mod e2e;
mod errors;
mod support;
