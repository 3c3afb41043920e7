//! The crates' layering, checked on the resolved dependency graph: the core
//! is pure (no store, async runtime or network crate anywhere below it), the
//! tools, images and MCP crates sit on the core and not on the kernel, and
//! nothing below the runtime reaches up into it.

use std::collections::BTreeSet;
use std::process::Command;

use pretty_assertions::assert_eq;

/// Crates that do I/O (a database, an async runtime, a network client or
/// server): none may be a dependency of `libos-core`, however indirect.
const IO_CRATES: [&str; 10] =
    ["rusqlite", "libsqlite3-sys", "tokio", "tokio-postgres", "postgres", "reqwest", "hyper", "mio", "socket2", "axum"];

/// Every crate `package` depends on (normal dependencies, transitively),
/// from `cargo tree` over the committed lock file.
fn dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", package, "-e", "normal", "--prefix", "none", "-f", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

fn check_layers() {
    let core = dependencies("libos-core");
    let io: Vec<&str> = IO_CRATES.iter().copied().filter(|c| core.contains(*c)).collect();
    assert_eq!(io, Vec::<&str>::new(), "libos-core must not depend on I/O crates");
    let libos: Vec<&String> = core.iter().filter(|c| c.starts_with("libos-")).collect();
    assert_eq!(libos, Vec::<&String>::new(), "libos-core depends on no other libos crate");

    // Who may depend on whom, lowest layer first.
    let above_core = ["libos-kernel", "libos-runtime", "libos-console", "libos-cli"];
    for package in ["libos-sandbox", "libos-tools", "libos-images", "libos-mcp"] {
        let deps = dependencies(package);
        let up: Vec<&str> = above_core.iter().copied().filter(|c| deps.contains(*c)).collect();
        assert_eq!(up, Vec::<&str>::new(), "{package} must not depend on the kernel or anything above it");
    }
    let kernel = dependencies("libos-kernel");
    let up: Vec<&String> = kernel.iter().filter(|c| c.starts_with("libos-") && c.as_str() != "libos-core").collect();
    assert_eq!(up, Vec::<&String>::new(), "libos-kernel sits on libos-core alone");
    let runtime = dependencies("libos-runtime");
    let up: Vec<&str> = ["libos-console", "libos-cli"].iter().copied().filter(|c| runtime.contains(*c)).collect();
    assert_eq!(up, Vec::<&str>::new(), "libos-runtime must not depend on a front end");
}

libos_kernel::tests!(sync: check_layers);
