//! Images: what a process is spawned from.
//!
//! An image is a TOML spec (name, version, system prompt, tool table, model
//! profile, context limits) validated into an [`Image`]. Errors name the file
//! and the field. The kernel stores an image's text content-addressed, so a
//! process always runs on exactly the image it was spawned with.
//!
//! Modules, in reading order:
//! - [`spec`]: the TOML form and validation.
//! - [`set`]: shipped images (in `images/shipped/`) and user directories.
//! - [`file`](mod@file): reading a file libos loads at start (only a regular file, without blocking).
//! - [`error`]: what goes wrong, naming the file and field.

pub mod error;
pub mod file;
pub mod set;
pub mod spec;

pub use error::ImageError;
pub use file::{FileError, read_text};
pub use set::{ImageSet, SHIPPED};
pub use spec::{ContextSpec, Image, McpUse};
