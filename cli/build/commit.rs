// The commit `libos --version` names, shared by build.rs and its test.

/// The commit of the checkout `crate_dir` is in, as git's short hash
/// (`LIBOS_BUILD_COMMIT` wins when set, for builds from a tarball that know
/// theirs), or `unknown commit` when there is no such checkout: a tarball,
/// or a directory inside some other repository. The files git reads to
/// answer are returned too, so that a new commit rebuilds.
pub fn commit_of(crate_dir: &std::path::Path) -> (String, Vec<std::path::PathBuf>) {
    if let Some(given) = std::env::var("LIBOS_BUILD_COMMIT").ok().filter(|c| !c.trim().is_empty()) {
        return (format!("commit {}", given.trim()), Vec::new());
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let unknown = || ("unknown commit".to_string(), Vec::new());
    // The checkout must be this workspace's own, not one it was unpacked into.
    let (Some(top), Some(workspace)) = (git(&["rev-parse", "--show-toplevel"]), crate_dir.parent()) else {
        return unknown();
    };
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok().is_some_and(|b| a == b))
    };
    if !same(std::path::Path::new(&top), workspace) {
        return unknown();
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else { return unknown() };
    let mut watch = Vec::new();
    let mut path_of = |name: &str| {
        if let Some(p) = git(&["rev-parse", "--git-path", name]).map(|p| crate_dir.join(p)) {
            // A missing file would rerun the build script every time.
            if p.exists() {
                watch.push(p);
            }
        }
    };
    path_of("HEAD");
    path_of("packed-refs");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        path_of(&branch);
    }
    (format!("commit {commit}"), watch)
}
