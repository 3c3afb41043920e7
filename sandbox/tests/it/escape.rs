//! Each test is a program trying to reach something its policy does not
//! give it; the host's kernel must stop it. The launcher is the crate's
//! own `libos-sandbox` binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libos_sandbox::{Cancel, Cmd, End, Launcher, Output, Policy, Sandbox};
use pretty_assertions::assert_eq;

pub(crate) fn sandbox() -> Sandbox {
    Sandbox::confined(Launcher::new(env!("CARGO_BIN_EXE_libos-sandbox"))).unwrap()
}

/// A workspace `ws/` beside an `outside/` holding a secret; `.libos/` in the
/// workspace holds a store, and `libos.toml` (absent) is protected too.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) ws: PathBuf,
    outside: PathBuf,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let ws = root.join("ws");
    let outside = root.join("outside");
    std::fs::create_dir_all(ws.join(".libos")).unwrap();
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "the launch codes").unwrap();
    std::fs::write(ws.join(".libos/libos.db"), "the store").unwrap();
    std::fs::write(ws.join("src/main.txt"), "hello").unwrap();
    Fixture { _dir: dir, ws, outside }
}

pub(crate) fn policy(f: &Fixture) -> Policy {
    Policy::for_workspace(
        &f.ws,
        vec![f.ws.join(".libos"), f.ws.join("libos.toml")],
        std::env::var_os("PATH").as_deref(),
    )
}

fn run_in(sandbox: &Sandbox, ws: &Path, policy: &Policy, argv: &[&str], timeout: Duration) -> Output {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_string(), ws.display().to_string()),
    ];
    let cmd = Cmd { argv: &argv, cwd: ws, env: &env, policy, timeout, net: None };
    sandbox.run(&cmd, &Cancel::new()).unwrap()
}

fn run(f: &Fixture, argv: &[&str]) -> Output {
    run_in(&sandbox(), &f.ws, &policy(f), argv, Duration::from_secs(20))
}

pub(crate) fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout.kept).into_owned(), String::from_utf8_lossy(&o.stderr.kept).into_owned())
}

#[test]
fn the_probe_reports_what_the_kernel_enforces() {
    let s = sandbox();
    assert!(s.is_confined());
    let d = s.describe();
    assert!(
        d.contains("fully enforced; processes limited by a pids cgroup")
            || d.contains("fully enforced; processes limited by RLIMIT_NPROC"),
        "{d}"
    );
}

#[test]
fn a_program_works_in_its_workspace_and_sees_only_its_own_environment() {
    let f = fixture();
    let o =
        run(&f, &["sh", "-c", "cat src/main.txt; echo new > src/new.txt; env | sort; cat /proc/sys/kernel/hostname"]);
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(
        text(&o),
        (
            format!(
                "helloHOME={}\nPATH={path}\nPWD={}\nTMPDIR=/var/tmp\nlibos-sandbox\n",
                f.ws.display(),
                f.ws.display()
            ),
            String::new()
        )
    );
    assert_eq!(o.end, End::Exited(0));
    assert_eq!(std::fs::read_to_string(f.ws.join("src/new.txt")).unwrap(), "new\n");
}

#[test]
fn files_outside_the_workspace_and_libos_files_inside_it_are_out_of_reach() {
    let f = fixture();
    for target in [
        "/etc/shadow".to_string(),
        "/etc/hostname".to_string(),
        f.outside.join("secret.txt").display().to_string(),
        "../outside/secret.txt".to_string(),
        ".libos/libos.db".to_string(),
        "/root/.bashrc".to_string(),
    ] {
        let o = run(&f, &["cat", &target]);
        let (out, err) = text(&o);
        assert_eq!((out.as_str(), o.end.clone()), ("", End::Exited(1)), "cat {target}: {err}");
        assert!(err.contains("Permission denied") || err.contains("No such file"), "cat {target}: {err}");
    }
    // Writing: the store, a planted configuration, a file outside.
    let o = run(
        &f,
        &["sh", "-c", "echo x > .libos/libos.db; echo x > libos.toml; echo x > ../outside/planted; mkdir .libos/imgs"],
    );
    assert_eq!(o.end, End::Exited(1), "{:?}", text(&o));
    assert_eq!(std::fs::read_to_string(f.ws.join(".libos/libos.db")).unwrap(), "the store");
    assert!(!f.ws.join("libos.toml").exists());
    assert!(!f.outside.join("planted").exists());
    assert!(!f.ws.join(".libos/imgs").exists());
}

#[test]
fn other_processes_and_their_secrets_are_invisible() {
    let f = fixture();
    let me = std::process::id();
    let o = run(&f, &["sh", "-c", &format!("cat /proc/{me}/environ /proc/{me}/cmdline; ls /proc | grep -c '^[0-9]'")]);
    let (out, err) = text(&o);
    // PID 1 (the sandbox's init), sh, and ls/grep: nothing of the host's.
    let visible: u32 = out.trim().parse().unwrap();
    assert!(visible <= 5, "{out}");
    assert!(err.contains("No such file"), "{err}");
    let o = run(&f, &["kill", "-0", &me.to_string()]);
    assert_ne!(o.end, End::Exited(0), "{:?}", text(&o));
}

#[test]
fn there_is_no_network_without_a_grant() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = run(&f, &["bash", "-c", &format!("echo hello > /dev/tcp/127.0.0.1/{port}")]);
    let (_, err) = text(&o);
    assert_eq!(o.end, End::Exited(1), "{err}");
    assert!(err.contains("Network is unreachable"), "{err}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing connected");
}

#[test]
fn a_program_leaves_nothing_running_behind_it() {
    let f = fixture();
    // A background job and a daemon in a session of its own, both meant to
    // write a marker two seconds later.
    let o = run(
        &f,
        &["sh", "-c", "(sleep 2; echo late > src/bg) & setsid sh -c 'sleep 2; echo late > src/daemon' & echo started"],
    );
    assert_eq!(text(&o).0, "started\n");
    assert_eq!(o.end, End::Exited(0));
    assert!(o.elapsed < Duration::from_secs(2), "the call waited for its background jobs: {:?}", o.elapsed);
    // Past the moment they would have written: nothing did.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!f.ws.join("src/bg").exists());
    assert!(!f.ws.join("src/daemon").exists());
}

#[test]
fn a_time_limit_kills_everything_the_program_started() {
    let f = fixture();
    let o = run_in(&sandbox(), &f.ws, &policy(&f), &["sh", "-c", "sleep 30 & sleep 30"], Duration::from_secs(1));
    assert_eq!(o.end, End::TimedOut);
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);
}

#[test]
fn a_fork_bomb_meets_the_process_limit() {
    let f = fixture();
    let mut p = policy(&f);
    p.limits.processes = 16;
    let script = "i=0; while [ $i -lt 64 ]; do sleep 5 & i=$((i+1)); done; echo started $i";
    let o = run_in(&sandbox(), &f.ws, &p, &["sh", "-c", script], Duration::from_secs(20));
    let (_, err) = text(&o);
    assert!(err.contains("Cannot fork"), "{:?} {err}", o.end);
    // A real bomb: it ends at its time limit, and the host still runs programs.
    let o = run_in(&sandbox(), &f.ws, &p, &["sh", "-c", "b() { b | b & }; b; wait"], Duration::from_secs(2));
    assert!(matches!(o.end, End::TimedOut | End::Exited(_)), "{:?}", o.end);
    assert_eq!(run(&f, &["true"]).end, End::Exited(0));
}

#[test]
fn a_cancelled_run_is_killed_at_once() {
    let f = fixture();
    let s = sandbox();
    let p = policy(&f);
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c2.cancel();
    });
    let argv = vec!["sleep".to_string(), "30".to_string()];
    let cmd = Cmd { argv: &argv, cwd: &f.ws, env: &[], policy: &p, timeout: Duration::from_secs(60), net: None };
    let o = s.run(&cmd, &cancel).unwrap();
    assert_eq!(o.end, End::Cancelled);
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let f = fixture();
    let o = run(&f, &["no-such-program-here"]);
    assert_eq!(o.end, End::NotRun("cannot run `no-such-program-here`: no such file or directory".to_string()));
}

/// Attack report, finding 1: Landlock does not govern `connect` to a path
/// socket, and PostgreSQL's socket gave a program a superuser session. The
/// sandbox's file system now holds only its roots: no host socket exists.
#[test]
fn host_unix_sockets_do_not_exist_inside() {
    let f = fixture();
    let sock = f.outside.join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let script = format!("import socket; socket.socket(socket.AF_UNIX).connect('{}')", sock.display());
    let o = run(&f, &["/usr/bin/python3", "-c", &script]);
    let (_, err) = text(&o);
    assert!(err.contains("FileNotFoundError"), "{err}");
    let o = run(&f, &["sh", "-c", "ls /run /var/run /var/lib /sys /home 2>&1 | grep -c 'No such file'"]);
    assert_eq!(text(&o).0, "5\n");
}

/// Attack report, finding 2: as uid 0 the program could chmod, chown, touch
/// and set file capabilities on any root-owned host file, and make set-uid
/// files. System files are now on read-only mounts, and set-uid bits and
/// extended attributes are refused everywhere.
#[test]
fn host_files_cannot_be_changed_and_no_set_uid_file_can_be_made() {
    let f = fixture();
    let o = run(&f, &["sh", "-c", "chmod 644 /etc/passwd; touch /usr/bin/env; chown 0:0 /etc/group"]);
    let (_, err) = text(&o);
    assert_eq!(err.matches("Read-only file system").count(), 3, "{err}");
    let o = run(&f, &["sh", "-c", "chmod +x src/main.txt && chmod u+s src/main.txt; chmod g+s src"]);
    let (_, err) = text(&o);
    assert_eq!(err.matches("Operation not permitted").count(), 2, "{err}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(f.ws.join("src/main.txt")).unwrap().permissions());
    assert_eq!(mode & 0o7111, 0o111, "executable, not set-uid: {mode:o}");
    let o = run(&f, &["/usr/bin/python3", "-c", "import os; os.setxattr('src/main.txt', 'user.x', b'1')"]);
    assert!(text(&o).1.contains("PermissionError"), "{:?}", text(&o));
}

/// Attack report, finding 3: the program could ptrace the sandbox's PID 1,
/// stop it from ending the namespace, and outlive its call; it could read
/// the job from PID 1's environment too.
#[test]
fn the_sandboxs_first_process_is_out_of_its_programs_reach() {
    let f = fixture();
    let o = run(&f, &["sh", "-c", "cat /proc/1/environ; ls /proc/1/root/"]);
    let (out, err) = text(&o);
    assert_eq!(out, "");
    assert_eq!(err.matches("Permission denied").count(), 2, "{err}");
}

/// Attack report, finding 4: a `PATH` directory inside the workspace was a
/// read rule that followed symlinks, so `ln -s / .venv/bin` gave the next
/// call all of `/`.
#[test]
fn a_path_directory_inside_the_workspace_is_only_the_workspace() {
    let f = fixture();
    std::fs::create_dir_all(f.ws.join(".venv")).unwrap();
    std::os::unix::fs::symlink("/", f.ws.join(".venv/bin")).unwrap();
    let path = format!("{}:/usr/bin:/bin", f.ws.join(".venv/bin").display());
    let p = Policy::for_workspace(&f.ws, Vec::new(), Some(path.as_ref()));
    let o = run_in(&sandbox(), &f.ws, &p, &["cat", "/etc/shadow", "/root/.bashrc"], Duration::from_secs(20));
    let (out, err) = text(&o);
    assert_eq!(out, "");
    assert_eq!(err.matches("No such file or directory").count(), 2, "{err}");
}

/// Attack report, finding 5b: the directory holding a covered file could be
/// renamed aside and a planted one put in its place.
#[test]
fn a_covered_file_cannot_be_moved_aside_with_its_directory() {
    let f = fixture();
    std::fs::create_dir_all(f.ws.join("conf")).unwrap();
    std::fs::write(f.ws.join("conf/libos.toml"), "# the operator's").unwrap();
    let p = Policy::for_workspace(&f.ws, vec![f.ws.join("conf/libos.toml")], std::env::var_os("PATH").as_deref());
    let script = "mv conf conf.old; rm -rf conf; mkdir -p conf2 && echo planted > conf2/libos.toml && mv conf2/libos.toml conf/libos.toml";
    let o = run_in(&sandbox(), &f.ws, &p, &["sh", "-c", script], Duration::from_secs(20));
    assert_ne!(o.end, End::Exited(0), "{:?}", text(&o));
    assert_eq!(std::fs::read_to_string(f.ws.join("conf/libos.toml")).unwrap(), "# the operator's");
    assert!(!f.ws.join("conf.old").exists());
}

/// Attack report, second round: io_uring's operations went around the
/// seccomp filter (a file capability on a workspace file gave any host user
/// root), the scheduler's session keyring was shared, set-uid files could
/// be created by `mknod` or `open(O_CREAT)`, devices' modes and times (the
/// host's) could be changed, and a world-writable workspace would let any
/// local user plant libos's files.
#[test]
fn kernel_interfaces_around_the_rules_are_closed() {
    let f = fixture();
    let probe = r#"
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = libc.syscall(*args)
    print(name, "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()])
params = ctypes.create_string_buffer(120)
call("io_uring_setup", 425, 4, params)
call("add_key", 248, b"user", b"k", b"v", 1, -3)
call("keyctl", 250, 0, -3, 0)
call("mknod_setuid", 133, b"src/s", 0o106755, 0)
call("open_setuid", 257, -100, b"src/t", os.O_CREAT | os.O_WRONLY, 0o6755)
call("chmod_world_writable", 90, b"src", 0o777)
call("touch_device", 235, b"/dev/full", None)
"#;
    let o = run(&f, &["/usr/bin/python3", "-c", probe]);
    assert_eq!(
        text(&o),
        (
            "io_uring_setup ENOSYS\nadd_key EPERM\nkeyctl EPERM\nmknod_setuid EPERM\nopen_setuid EPERM\n\
             chmod_world_writable EPERM\ntouch_device EROFS\n"
                .to_string(),
            String::new()
        )
    );
    assert!(!f.ws.join("src/s").exists() && !f.ws.join("src/t").exists());
}
