//! Image errors: each names the file and, where it can, the field.

/// An image spec could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not valid TOML, or a field of the wrong type, or an unknown field.
    #[error("image {origin}: {message}")]
    Syntax {
        /// File or built-in name.
        origin: String,
        /// Where and what.
        message: String,
    },
    /// Well-formed but not a valid image.
    #[error("image {origin}: field `{field}`: {message}")]
    Invalid {
        /// File or built-in name.
        origin: String,
        /// The field at fault (`tools[2]`, `context.token_budget`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A directory of images could not be read.
    #[error("image directory {dir}: {message}")]
    Dir {
        /// The directory.
        dir: String,
        /// Why.
        message: String,
    },
    /// No image with that name.
    #[error("no image named `{name}` (available: {available})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Names that exist.
        available: String,
    },
}
