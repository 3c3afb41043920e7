//! Issue 17's conventions for the command line itself: usage errors in
//! the one-line form with clap's suggestion, examples in every command's
//! help, shell completions, a manual page, and a version naming the commit.

use pretty_assertions::assert_eq;

use crate::support::Env;

#[path = "../../build/commit.rs"]
mod commit;

fn check(env: &Env, args: &[&str], message: &str) {
    let (code, stderr) = env.fails(args);
    assert_eq!((code, stderr.as_str()), (2, format!("libos: error: {message}\n").as_str()), "libos {args:?}");
}

#[test]
fn usage_errors_are_one_line_with_the_suggestion() {
    let env = Env::new();
    check(&env, &["pss"], "unrecognized subcommand 'pss' (did you mean 'ps'?); see 'libos --help'");
    // What was typed is quoted escaped, never stripped or sent to the terminal.
    check(&env, &["\u{1b}[2Jx"], "unrecognized subcommand '\\u{1b}[2Jx'; see 'libos --help'");
    check(&env, &["ps", "--al"], "unexpected argument '--al' found (did you mean '--all'?); see 'libos ps --help'");
    check(
        &env,
        &["ps", "--state", "wating"],
        "invalid value 'wating' for '--state <STATE>' [possible values: runnable, running, waiting, paused, \
         exited, failed, killed] (did you mean 'waiting'?)",
    );
    check(
        &env,
        &["spawn", "assistant"],
        "the following required arguments were not provided: --goal <GOAL>; see 'libos spawn --help'",
    );
    check(
        &env,
        &["audit", "verify", "--expect"],
        "unexpected argument '--expect' found (did you mean '--expect-head'?); see 'libos audit verify --help'",
    );
    check(&env, &["ps", "--bogus"], "unexpected argument '--bogus' found; see 'libos ps --help'");
    check(
        &env,
        &["kill", "-x"],
        "unexpected argument '-x' found (to pass '-x' as a value, use '-- -x'); see 'libos kill --help'",
    );
    check(
        &env,
        &["completions", "bsh"],
        "invalid value 'bsh' for '<SHELL>' [possible values: bash, elvish, fish, powershell, zsh] (did you mean \
         'bash'?)",
    );
    // Help is not an error, and goes to standard output.
    let out = env.cmd(&["ps", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("List processes"));
}

/// The subcommands `libos --help` lists.
fn commands(env: &Env) -> Vec<String> {
    let help = env.ok(&["--help"]);
    let list = help.split("Commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_has_examples_in_its_help() {
    let env = Env::new();
    let commands = commands(&env);
    assert_eq!(commands.len(), 27, "{commands:?}");
    for c in &commands {
        let help = env.ok(&[c, "--help"]);
        let examples = help.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("`libos {c} --help` has no examples"));
        assert!(
            examples.lines().any(|l| l.trim_start().starts_with(&format!("libos {c}"))),
            "`libos {c} --help` shows no `libos {c}` example:\n{examples}"
        );
    }
    insta::assert_snapshot!("ps_help", env.ok(&["ps", "--help"]));
    let top = env.ok(&["--help"]);
    assert!(top.contains("Exit codes: 0 success"), "{top}");
}

#[test]
fn completions_for_each_shell_and_the_manual_pages() {
    let env = Env::new();
    let shells = [
        ("bash", "complete -F _libos", "--state"),
        ("zsh", "#compdef libos", "--state"),
        ("fish", "complete -c libos", "-l state"),
    ];
    for (shell, marker, flag) in shells {
        let script = env.ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("spawn") && script.contains(flag), "{shell} completes commands and flags");
    }
    let page = env.ok(&["man"]);
    assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq") || page.contains(".TH libos 1"), "{page}");
    assert!(page.contains(".TH libos 1") && page.contains("spawn") && page.contains("Examples:"), "{page}");
    let dir = env.path("man1");
    let said = env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(said, format!("wrote the manual pages into {}\n", dir.display()));
    let mut pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    pages.sort();
    assert!(pages.contains(&"libos.1".to_string()) && pages.contains(&"libos-spawn.1".to_string()), "{pages:?}");
    assert!(pages.contains(&"libos-audit-verify.1".to_string()), "{pages:?}");
    let spawn = std::fs::read_to_string(dir.join("libos-spawn.1")).unwrap();
    assert!(spawn.contains("\\-\\-goal"), "{spawn}");
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let env = Env::new();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string());
    let commit = head.map_or_else(|| "unknown commit".to_string(), |h| format!("commit {h}"));
    assert_eq!(env.ok(&["--version"]), format!("libos {} ({commit})\n", env!("CARGO_PKG_VERSION")));
}

/// A tarball has no `.git`; unpacked inside some other repository, that
/// repository's commit is not its own.
#[test]
fn a_build_from_a_tarball_says_unknown_commit() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("libos").join("cli");
    std::fs::create_dir_all(&crate_dir).unwrap();
    assert_eq!(commit::commit_of(&crate_dir), ("unknown commit".to_string(), Vec::new()));
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "another project"]);
    assert_eq!(commit::commit_of(&crate_dir).0, "unknown commit");
    // The workspace's own checkout names its commit, and the files to watch.
    std::fs::create_dir_all(dir.path().join("cli")).unwrap();
    let (named, watch) = commit::commit_of(&dir.path().join("cli"));
    assert!(named.starts_with("commit ") && named.len() == "commit ".len() + 12, "{named}");
    assert!(watch.iter().any(|p| p.ends_with("HEAD")), "{watch:?}");
}
