//! Bad input gets a one-line error and a documented exit code.

use pretty_assertions::assert_eq;

use crate::support::{Env, s};

fn check(env: &Env, args: &[&str], code: i32, message: &str) {
    let (got_code, stderr) = env.fails(args);
    assert_eq!((got_code, stderr.trim_end()), (code, message), "libos {args:?}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn wrong_pids_images_and_flags_have_clear_errors_and_exit_codes() {
    let env = Env::new();
    let db = env.db();
    check(
        &env,
        &["ps"],
        4,
        &format!("libos: error: no libos store at {} (run `libos init`, or pass --db)", db.display()),
    );
    env.ok(&["init"]);
    check(&env, &["kill", "42"], 3, "libos: error: no process with pid 42");
    check(&env, &["kill", "abc"], 2, "libos: error: invalid pid `abc`: expected a positive integer");
    check(&env, &["logs", "0"], 2, "libos: error: invalid pid `0`: expected a positive integer");
    check(
        &env,
        &["spawn", "nope", "--goal", "x"],
        3,
        "libos: error: no image named `nope` (available: assistant, coder, orchestrator, reviewer, worker)",
    );
    check(&env, &["spawn", "assistant", "--goal", "  "], 2, "libos: error: goal is empty");
    check(
        &env,
        &["audit", "--outcome", "meh"],
        2,
        "libos: error: invalid outcome `meh` (expected one of ok, error, denied, rejected, parked, unknown, pending)",
    );
    check(
        &env,
        &["audit", "--since", "yesterday"],
        2,
        "libos: error: invalid time `yesterday`: expected RFC 3339 or an age like 30s, 15m, 2h, 7d",
    );
    let (code, _) = env.fails(&["ps", "--bogus"]);
    assert_eq!(code, 2);

    env.ok(&["spawn", "assistant", "--goal", "x"]);
    env.ok(&["kill", "1"]);
    check(&env, &["kill", "1"], 6, "libos: error: process 1 is killed: cannot kill");
}

#[test]
fn a_broken_store_path_is_refused_without_damage() {
    let env = Env::new();
    let text = env.write("notes.txt", "not a database at all, just some words that are long enough.");
    let (code, err) = env.fails(&["--db", s(&text), "ps"]);
    assert_eq!(
        (code, err.trim_end()),
        (4, format!("libos: error: {} is not a libos store (not an SQLite database)", text.display()).as_str())
    );
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "not a database at all, just some words that are long enough.");
    let (code, err) = env.fails(&["--db", s(env.dir.path()), "init"]);
    assert_eq!(
        (code, err.trim_end()),
        (
            4,
            format!("libos: error: store path {} is a directory, not a database file", env.dir.path().display())
                .as_str()
        )
    );
}

#[test]
fn a_tampered_audit_log_fails_verification_with_exit_code_5() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "one"]);
    env.ok(&["spawn", "assistant", "--goal", "two"]);
    // An attacker with access to the file edits a record directly.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute("UPDATE audit SET detail = 'spawned nothing' WHERE seq = 2", []).unwrap();
    drop(conn);
    check(
        &env,
        &["audit", "verify"],
        5,
        "libos: error: audit chain broken at audit record 2: hash does not match the record's contents (the record was altered)",
    );
}

#[test]
fn a_truncated_audit_log_is_caught_by_the_head_the_operator_kept() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "one"]);
    env.ok(&["spawn", "assistant", "--goal", "two"]);
    let head = env.ok(&["audit", "head"]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    drop(conn);
    // The rest of the chain is intact: only the kept head shows the loss.
    env.ok(&["audit", "verify"]);
    let first = rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row("SELECT hash FROM audit WHERE seq = 1", [], |r| r.get::<_, String>(0))
        .unwrap();
    check(
        &env,
        &["audit", "verify", "--expect-head", head.trim()],
        5,
        &format!(
            "libos: error: audit chain broken at audit record 2: the chain ends at head {first} but {} was expected \
             (records were removed from the end, or the head is from another store)",
            head.trim()
        ),
    );
}

/// Issue 16: with no model configured, `run --until-idle` failed the
/// process and exited 0. Now `spawn --run` and `run` refuse with one line
/// naming what to set; a plain `spawn` says so and leaves the process for
/// a `run` that brings a model (or `--script`).
#[test]
fn no_model_configured_is_refused_at_spawn_and_run_with_what_to_set() {
    let env = Env::new();
    let why = "no model configured for image `assistant`: define [models.default] in libos.toml, set \
               OPENAI_BASE_URL (a local server) or LIBOS_MODEL, or pass --script FILE";
    check(&env, &["spawn", "assistant", "--goal", "x", "--run"], 2, &format!("libos: error: {why}"));
    let out = env.cmd(&["spawn", "assistant", "--goal", "x"]).output().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string()
        ),
        (Some(0), "1\n".to_string(), format!("libos: warning: {why}; `libos run` refuses to start until then\n"))
    );
    check(&env, &["run", "--until-idle"], 2, &format!("libos: error: {why} (pid 1 needs it)"));
    let ps: serde_json::Value = serde_json::from_str(&env.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps[0]["state"], "runnable");
}

#[test]
fn a_store_url_is_never_taken_for_a_file_path() {
    let env = Env::new();
    let before: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    for args in [&["--db", "mysql://root@127.0.0.1/test", "init"][..], &["--db", "sqlite://x.db", "ps"]] {
        let (code, err) = env.fails(args);
        let url = args[1];
        assert_eq!(
            (code, err.trim_end()),
            (
                4,
                format!(
                    "libos: error: cannot open store {url}: not a kind of store libos knows (a file path, `:memory:` or postgres://...)"
                )
                .as_str()
            )
        );
    }
    assert_eq!(std::fs::read_dir(env.dir.path()).unwrap().count(), before.len(), "nothing was created");
}

/// Issue 17, defect 4: `libos audit --json | head -1` and `> /dev/full`
/// panicked (exit 101). A reader that goes away ends the command quietly
/// with the status of a program killed by SIGPIPE; any other write error
/// is one line.
#[test]
fn a_closed_or_full_standard_output_ends_the_command_without_a_panic() {
    use std::io::Read;
    let env = Env::new();
    // Output past a pipe's buffer (64 KiB): long goals, shown in full.
    let goal = "word ".repeat(12_000);
    for _ in 0..3 {
        env.ok(&["spawn", "assistant", "--goal", &goal]);
    }
    let args = ["ps", "--all", "--json"];
    let mut child =
        env.std_cmd(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone now.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(141), "libos {args:?}: {stderr}");
    assert_eq!(stderr, "", "libos {args:?}");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = env.std_cmd(&["logs", "1"]).stdout(full).output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()),
        (Some(1), "libos: error: cannot write to standard output: no space left on device\n".to_string())
    );
}

/// Issue 17, defect 6: a malformed `--expect-head` reported the chain
/// broken (exit 5); it is a usage error.
#[test]
fn a_malformed_expected_head_is_a_usage_error_not_a_broken_chain() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "one"]);
    check(
        &env,
        &["audit", "verify", "--expect-head", "deadbeef"],
        2,
        "libos: error: --expect-head `deadbeef` is not an audit head: give the 64 hexadecimal digits `libos audit head` printed",
    );
    let head = env.ok(&["audit", "head"]).trim().to_uppercase();
    env.ok(&["audit", "verify", "--expect-head", &head]);
}

/// Issue 17, defect 8: `libos grant 4 "read fs:api/**"` failed; the one
/// grant string works here as it does in images and `spawn --grant`.
#[test]
fn grant_takes_the_one_grant_string_or_rights_and_resource() {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", "one"]);
    assert_eq!(env.ok(&["grant", "1", "read fs:api/** ask uses=2"]), "grant 4: read fs:api/** ask uses=2 to pid 1\n");
    assert_eq!(
        env.ok(&["grant", "1", "read", "fs:docs/**", "--effect", "deny"]),
        "grant 5: read fs:docs/** deny to pid 1\n"
    );
    check(
        &env,
        &["grant", "1", "read fs:api/**", "--delegable"],
        2,
        "libos: error: give the grant as one string (\"read fs:src/** ask uses=3\") or as RIGHTS RESOURCE with \
         --effect/--delegable/--uses/--expires, not both",
    );
    check(
        &env,
        &["grant", "1", "read"],
        2,
        "libos: error: grant `read` is incomplete: expected `RIGHTS RESOURCE [EFFECT] [delegable] [uses=N] [expires=DURATION]`",
    );
}
