//! Runtime integration tests: the HTTP model client against a mock server,
//! and quanta run by the scheduler with scripted and mock models.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod calls;
mod config;
mod dynamic;
mod http;
mod mcp;
mod off_workers;
mod openai;
mod prompt;
mod protocols;
mod recall;
mod robustness;
mod scheduler;
