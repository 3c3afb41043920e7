//! The images a command can spawn: the shipped ones plus user directories.

use std::collections::BTreeMap;
use std::path::Path;

use libos_tools::Registry;

use crate::error::ImageError;
use crate::file::read_text;
use crate::spec::Image;

/// The images shipped in the binary, as (file name, TOML text).
pub const SHIPPED: &[(&str, &str)] = &[
    ("assistant.toml", include_str!("../shipped/assistant.toml")),
    ("coder.toml", include_str!("../shipped/coder.toml")),
    ("orchestrator.toml", include_str!("../shipped/orchestrator.toml")),
    ("reviewer.toml", include_str!("../shipped/reviewer.toml")),
    ("worker.toml", include_str!("../shipped/worker.toml")),
];

/// A set of images by name. Later additions replace earlier ones of the same
/// name, so a user directory can override a shipped image.
#[derive(Debug, Clone, Default)]
pub struct ImageSet {
    images: BTreeMap<String, Image>,
}

impl ImageSet {
    /// The shipped images.
    pub fn shipped() -> Result<ImageSet, ImageError> {
        let mut set = ImageSet::default();
        for (file, text) in SHIPPED {
            set.insert(Image::parse(&format!("builtin:{file}"), text)?);
        }
        Ok(set)
    }

    /// Adds (or replaces) one image.
    pub fn insert(&mut self, image: Image) {
        self.images.insert(image.name.clone(), image);
    }

    /// Adds every `*.toml` in `dir`; any bad file is an error naming it,
    /// and so is one that is not a regular file (a FIFO, a device): see
    /// [`crate::file`].
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), ImageError> {
        self.add_dir_with(dir, Registry::builtin())
    }

    /// Like [`ImageSet::add_dir`], for images that may name the tools `registry` knows.
    pub fn add_dir_with(&mut self, dir: &Path, registry: &Registry) -> Result<(), ImageError> {
        let err = |message: String| ImageError::Dir { dir: dir.display().to_string(), message };
        let entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string().to_lowercase()))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let origin = path.display().to_string();
            let text =
                read_text(&path).map_err(|e| ImageError::Syntax { origin: origin.clone(), message: e.to_string() })?;
            self.insert(Image::parse_with(&origin, &text, registry)?);
        }
        Ok(())
    }

    /// Looks an image up by name.
    pub fn get(&self, name: &str) -> Result<&Image, ImageError> {
        self.images.get(name).ok_or_else(|| ImageError::NotFound {
            name: name.to_string(),
            available: self.images.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// All images, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Image> {
        self.images.values()
    }
}
