//! Parsed images by digest, shared by all quanta.

use std::sync::Arc;

use dashmap::DashMap;
use libos_images::Image;
use libos_kernel::{ImageDigest, Kernel};

/// Caches images parsed from the store, keyed by digest (content address, so never stale).
#[derive(Debug, Default)]
pub struct ImageCache {
    images: DashMap<ImageDigest, Arc<Image>>,
}

impl ImageCache {
    /// The image a process was spawned from.
    pub fn get(&self, kernel: &Kernel, digest: &ImageDigest) -> Result<Arc<Image>, String> {
        if let Some(image) = self.images.get(digest) {
            return Ok(image.clone());
        }
        let (name, _, text) = kernel.image_spec(digest).map_err(|e| e.to_string())?;
        let short = digest.0.get(..12).unwrap_or(&digest.0);
        let image = Arc::new(Image::parse(&format!("{name}@{short}"), &text).map_err(|e| e.to_string())?);
        self.images.insert(digest.clone(), image.clone());
        Ok(image)
    }
}
