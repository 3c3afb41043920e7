//! The MCP part of a run's registry: which servers the run's images name,
//! listing them at start, and the catalog reloaded with their tools.
//!
//! Loading is two passes. The first (what every command does, [`offline`])
//! declares the configured servers without listing any, so an image naming
//! a server the configuration lacks is an error naming both, and every
//! image says which servers it names. A command that runs processes (or
//! shows an image's tools) then lists exactly the servers named
//! ([`list`]), and the catalog is loaded again against the registry that
//! holds their tools.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use libos_images::{Image, ImageSet};
use libos_kernel::Kernel;
use libos_mcp::{Hub, ServerConfig, ServerName};
use libos_sandbox::Sandbox;
use libos_tools::Registry;

/// What a command that starts no server knows of the configured ones.
const UNLISTED: &str = "this command does not start mcp servers (a run lists them at its start)";

/// The configuration's tools (built-ins and `[tools.NAME]`), with its MCP
/// servers declared but not listed.
pub fn offline(config: &libos_runtime::Config) -> anyhow::Result<Registry> {
    let mut registry = config.registry().map_err(anyhow::Error::msg)?;
    libos_runtime::mcp::declare_unlisted(&mut registry, config.mcp.keys().cloned(), UNLISTED);
    Ok(registry)
}

/// A run's tools: the registry, the catalog loaded against it, and the
/// hub its MCP tools call through (stopped with [`RunTools::stop`]).
pub struct RunTools {
    /// Built-ins and the listed servers' tools.
    pub registry: Registry,
    /// The images, with their MCP tools resolved.
    pub catalog: ImageSet,
    /// The servers' connections.
    pub hub: Hub,
}

impl RunTools {
    /// Stops every server the run started.
    pub async fn stop(&self) {
        self.hub.stop_all().await;
    }
}

/// The servers `images` name.
pub fn named<'a>(images: impl IntoIterator<Item = &'a Image>) -> BTreeSet<String> {
    images.into_iter().flat_map(|i| i.mcp.iter().map(|u| u.server.clone())).collect()
}

/// A hub for `servers`, running stdio servers in `sandbox`, kept from
/// everything `kernel` protects (and the sandbox's launcher).
pub fn hub(kernel: &Kernel, servers: &BTreeMap<ServerName, ServerConfig>, sandbox: &Sandbox) -> Hub {
    let mut protected = kernel.protected_paths();
    if let Some(launcher) = sandbox.launcher() {
        protected.push(launcher.to_path_buf());
    }
    protected.sort();
    protected.dedup();
    Hub::new(servers.clone(), sandbox.clone(), protected)
}

/// Lists the servers in `names` (those the run's images name: [`named`]),
/// registers their tools beside `base`'s (the configuration's), and reloads the catalog (the shipped images and
/// `image_dirs`) against that registry. A server that cannot be listed is
/// said once, on stderr and in the log; the run goes on without it.
pub async fn list(
    hub: Hub,
    names: &BTreeSet<String>,
    image_dirs: &[PathBuf],
    base: Registry,
) -> anyhow::Result<RunTools> {
    let mut registry = base;
    let notices = libos_runtime::mcp::register_servers(&mut registry, &hub, names).await;
    for notice in &notices {
        tracing::warn!("{}", libos_kernel::text::escape_line(notice));
        eprintln!("libos: warning: {}", libos_kernel::text::escape_line(notice));
    }
    let catalog = images_with(image_dirs, &registry)?;
    Ok(RunTools { registry, catalog, hub })
}

/// The shipped images plus `dirs`, naming the tools `registry` knows.
pub fn images_with(dirs: &[PathBuf], registry: &Registry) -> anyhow::Result<ImageSet> {
    let mut set = ImageSet::default();
    for (file, text) in libos_images::SHIPPED {
        set.insert(Image::parse_with(&format!("builtin:{file}"), text, registry)?);
    }
    for dir in dirs {
        set.add_dir_with(dir, registry)?;
    }
    Ok(set)
}

/// The servers named by the stored images of `pid` and its descendants
/// (what a replay of it parses), read leniently: an image that does not
/// parse names nothing here and fails the replay with its own error.
pub fn named_by_tree(kernel: &Kernel, pid: libos_kernel::Pid, offline: &Registry) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in libos_runtime::replay::tree(kernel, pid).unwrap_or_default() {
        let Ok(info) = kernel.process(p) else { continue };
        let Ok((name, _, text)) = kernel.image_spec(&info.image_digest) else { continue };
        if let Ok(image) = Image::parse_with(&name, &text, offline) {
            out.extend(image.mcp.into_iter().map(|u| u.server));
        }
    }
    out
}
