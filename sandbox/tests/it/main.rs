//! The sandbox, tried from inside: programs that try to get out.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod escape;
mod network;
mod spawn;
