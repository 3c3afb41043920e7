//! Interactive programs: talked to through their pipes, with no time
//! limit, and gone with everything they started when their handle is.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use libos_sandbox::{End, Interactive, Launcher, Policy, Sandbox};
use pretty_assertions::assert_eq;

fn check(sandbox: &Sandbox) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let path = std::env::var("PATH").unwrap();
    let policy = Policy::for_workspace(&ws, Vec::new(), Some(path.as_ref()));
    let env = vec![("PATH".to_string(), path)];
    // A line in, the line out; a background sleeper that must not outlive the handle.
    let script = "sleep 1000 & echo $! > sleeper.pid; echo started >&2; while read l; do echo \"got $l\"; done";
    let argv: Vec<String> = ["sh", "-c", script].iter().map(|s| s.to_string()).collect();
    let mut child = sandbox
        .spawn(&Interactive { argv: &argv, cwd: &ws, env: &env, policy: &policy, deadline: None, net: None })
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "one").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!((line.as_str(), child.ended()), ("got one\n", None));
    let pid: i32 = std::fs::read_to_string(ws.join("sleeper.pid")).unwrap().trim().parse().unwrap();
    drop(stdin);
    drop(stdout);
    // With stdin closed the loop ends and the program exits; its stderr was kept.
    assert_eq!(child.wait_timeout(Duration::from_secs(30)), Some(End::Exited(0)));
    assert_eq!(child.last_stderr_line().as_deref(), Some("started"));
    drop(child);
    // Confined, the sleeper's pid is the sandbox's own; unconfined it is the host's and must be gone.
    if !sandbox.is_confined() {
        // SIGKILL is delivered asynchronously: wait (bounded) for it to land.
        let gone = (0..500).any(|_| {
            let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid);
            if !gone {
                std::thread::sleep(Duration::from_millis(10));
            }
            gone
        });
        assert!(gone, "sleeper {pid} survived: {:?}", std::fs::read_to_string(format!("/proc/{pid}/stat")));
    }
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn an_interactive_program_is_spoken_to_through_its_pipes_in_the_sandbox() {
    check(&Sandbox::confined(Launcher::new(env!("CARGO_BIN_EXE_libos-sandbox"))).unwrap());
}

#[test]
fn an_interactive_program_is_spoken_to_through_its_pipes_unconfined() {
    check(&Sandbox::unconfined());
}

#[test]
fn killing_an_interactive_program_ends_it_and_everything_it_started() {
    let sandbox = Sandbox::confined(Launcher::new(env!("CARGO_BIN_EXE_libos-sandbox"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let path = std::env::var("PATH").unwrap();
    let policy = Policy::for_workspace(&ws, Vec::new(), Some(path.as_ref()));
    let env = vec![("PATH".to_string(), path)];
    let argv: Vec<String> = ["sh", "-c", "sleep 1000 & echo up; wait"].iter().map(|s| s.to_string()).collect();
    let mut child = sandbox
        .spawn(&Interactive { argv: &argv, cwd: &ws, env: &env, policy: &policy, deadline: None, net: None })
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    child.kill();
    assert_eq!(child.ended(), Some(End::Signalled(9)));
}
