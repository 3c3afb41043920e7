//! What quanta share and need not rebuild: parsed images by digest, tool
//! tables (each image's tools resolved in the run's registry), canonical
//! workspace roots.

use std::sync::Arc;

use dashmap::DashMap;
use libos_images::Image;
use libos_kernel::{ImageDigest, Kernel, KernelError};
use libos_tools::{Registry, ToolName, ToolSet, Workspace};

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

/// A process's tools: what its calls parse against and what its prompt offers.
#[derive(Debug)]
pub struct Tools {
    /// The entries, for [`libos_tools::ToolCall::parse`].
    pub set: ToolSet,
    /// Their schemas, serialised once, for the request.
    pub table: Arc<ToolTable>,
}

/// Caches images parsed from the store, keyed by digest (content address, so
/// never stale), and the tools of each tool table (resolved in the
/// registry and serialised once, not per quantum).
#[derive(Debug, Default, Clone)]
pub struct ImageCache {
    registry: Registry,
    images: DashMap<ImageDigest, Arc<Image>>,
    tools: DashMap<Vec<ToolName>, Arc<Tools>>,
    /// Canonical workspace roots: resolving one costs syscalls every quantum.
    roots: DashMap<std::path::PathBuf, std::path::PathBuf>,
}

impl ImageCache {
    /// A cache whose images may name the tools `registry` knows.
    pub fn new(registry: Registry) -> ImageCache {
        ImageCache { registry, ..ImageCache::default() }
    }

    /// The registry images are resolved in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The image a process was spawned from, if it was read before (no
    /// store access).
    pub fn cached(&self, digest: &ImageDigest) -> Option<Arc<Image>> {
        self.images.get(digest).map(|image| image.clone())
    }

    /// The image a process was spawned from.
    pub fn get(&self, kernel: &Kernel, digest: &ImageDigest) -> Result<Arc<Image>, ImageLoadError> {
        if let Some(image) = self.images.get(digest) {
            return Ok(image.clone());
        }
        let (name, _, text) = kernel.image_spec(digest)?;
        let short = digest.0.get(..12).unwrap_or(&digest.0);
        let image = Arc::new(
            Image::parse_with(&format!("{name}@{short}"), &text, &self.registry)
                .map_err(|e| ImageLoadError::Invalid(e.to_string()))?,
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

    /// `image`'s tools, in its order. An image whose tools the registry
    /// no longer has all of (a dynamic tool not registered this run, an MCP
    /// server that could not be listed) is an error naming the tool or server.
    pub fn tools(&self, image: &Image) -> Result<Arc<Tools>, ImageLoadError> {
        // An image naming an MCP server that has no tools this run would
        // run with fewer tools than it names: it fails, saying which.
        if !image.unavailable.is_empty() {
            return Err(ImageLoadError::Invalid(format!(
                "image `{}` cannot run: {}",
                image.name,
                image.unavailable.join("; ")
            )));
        }
        if let Some(t) = self.tools.get(&image.tools) {
            return Ok(t.clone());
        }
        let set = self.registry.table(&image.tools).map_err(|e| ImageLoadError::Invalid(e.to_string()))?;
        let tools = Arc::new(Tools { table: Arc::new(ToolTable::new(set.specs())), set });
        self.tools.insert(image.tools.clone(), tools.clone());
        Ok(tools)
    }
}
