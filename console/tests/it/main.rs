//! The HTTP API, the event stream and the console against a server on
//! 127.0.0.1:0 over a private store.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Fields that change from run to run.
macro_rules! stable {
    ($name:literal, $value:expr) => {
        insta::with_settings!({ sort_maps => true }, {
            insta::assert_json_snapshot!($name, $value, {
                ".**.created_at" => "[time]", ".**.updated_at" => "[time]", ".**.at" => "[time]",
                ".**.sent_at" => "[time]", ".**.read_at" => "[time]", ".**.image_digest" => "[digest]",
                ".**.hash" => "[hash]", ".**.prev_hash" => "[hash]", ".**.wall_time" => "[secs]",
                ".**.workspace" => "[dir]", ".**.latency_ms" => "[ms]", ".**.args_sha256" => "[sha]",
                ".**.expires_at" => "[time]"
            });
        })
    };
}

mod api;
mod auth;
mod browser;
mod events;
mod support;
mod views;

/// The suite runs on libos's harness: PostgreSQL trials are listed as
/// ignored (skipped) without `LIBOS_TEST_POSTGRES`.
fn main() {
    libos_kernel::testing::harness::main(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it"))
}
