//! Names the commit the binary is built from, for `libos --version`.

include!("build/commit.rs");

fn main() {
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let (commit, watch) = commit_of(&dir);
    println!("cargo:rustc-env=LIBOS_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=LIBOS_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/commit.rs");
    for path in watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
