//! The HTTP API, the event stream and the console against a server on
//! 127.0.0.1:0 over a private store.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod auth;
mod browser;
mod events;
mod support;
