//! What quanta share and need not rebuild: parsed images by digest, tool
//! tables, canonical workspace roots.

use std::sync::Arc;

use dashmap::DashMap;
use libos_images::Image;
use libos_kernel::{ImageDigest, Kernel, KernelError};
use libos_tools::{ToolName, Workspace};

use crate::model::ToolTable;

/// Why a process's image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    /// The store did not give it (no such image, or the store failed).
    #[error(transparent)]
    Store(#[from] KernelError),
    /// The stored text no longer parses (this build reads images differently).
    #[error("{0}")]
    Invalid(String),
}

/// Caches images parsed from the store, keyed by digest (content address, so
/// never stale), and the tool schemas of each tool table (built once, not
/// per quantum).
#[derive(Debug, Default)]
pub struct ImageCache {
    images: DashMap<ImageDigest, Arc<Image>>,
    tools: DashMap<Vec<ToolName>, Arc<ToolTable>>,
    /// Canonical workspace roots: resolving one costs syscalls every quantum.
    roots: DashMap<std::path::PathBuf, std::path::PathBuf>,
}

impl ImageCache {
    /// The image a process was spawned from.
    pub fn get(&self, kernel: &Kernel, digest: &ImageDigest) -> Result<Arc<Image>, ImageLoadError> {
        if let Some(image) = self.images.get(digest) {
            return Ok(image.clone());
        }
        let (name, _, text) = kernel.image_spec(digest)?;
        let short = digest.0.get(..12).unwrap_or(&digest.0);
        let image = Arc::new(
            Image::parse(&format!("{name}@{short}"), &text).map_err(|e| ImageLoadError::Invalid(e.to_string()))?,
        );
        self.images.insert(digest.clone(), image.clone());
        Ok(image)
    }

    /// The workspace at `dir`, its root canonicalised once per directory.
    pub fn workspace(&self, dir: &std::path::Path, protected: Vec<std::path::PathBuf>) -> Result<Workspace, String> {
        if let Some(root) = self.roots.get(dir) {
            return Ok(Workspace::with_canonical_root(root.clone(), protected));
        }
        let ws = Workspace::new(dir, protected)?;
        self.roots.insert(dir.to_path_buf(), ws.root().to_path_buf());
        Ok(ws)
    }

    /// The schemas of `image`'s tools, in its order.
    pub fn tools(&self, image: &Image) -> Arc<ToolTable> {
        if let Some(t) = self.tools.get(&image.tools) {
            return t.clone();
        }
        let table = Arc::new(ToolTable::new(image.tools.iter().copied().map(ToolName::spec).collect()));
        self.tools.insert(image.tools.clone(), table.clone());
        table
    }
}
