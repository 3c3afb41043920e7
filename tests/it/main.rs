//! Cross-crate scenario tests.
