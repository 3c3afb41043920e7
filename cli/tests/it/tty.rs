//! Issue 17, defect 10: colour and width follow what the output is. On a
//! terminal (a pseudo-terminal here) tables colour their states and fit the
//! terminal's width; into files and pipes, and with `NO_COLOR`, nothing
//! carries an escape sequence, the scheduler's warnings included.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use pretty_assertions::assert_eq;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::support::{Env, s};

/// A pseudo-terminal `columns` wide: (the controller, the terminal's path).
fn pty(columns: u16) -> (OwnedFd, String) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap().into_string().unwrap();
    tcsetwinsize(&controller, Winsize { ws_row: 24, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 }).unwrap();
    (controller, name)
}

/// What `libos ARGS` writes to standard output and standard error when
/// both are a terminal `columns` wide (`\r\n` read back as `\n`).
fn on_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)], columns: u16) -> String {
    let (controller, name) = pty(columns);
    let terminal = || std::fs::OpenOptions::new().read(true).write(true).open(&name).unwrap();
    let mut cmd = env.std_cmd(args);
    cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE").env("TERM", "xterm");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(terminal()).stderr(terminal()).spawn().unwrap();
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(controller);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // The controller reads EIO once every holder of the terminal closed it.
        while let Ok(n @ 1..) = file.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    assert!(child.wait().unwrap().success(), "libos {args:?} failed on a terminal");
    drop(cmd);
    String::from_utf8(reader.join().unwrap()).unwrap().replace("\r\n", "\n")
}

/// Escape sequences made visible.
fn visible(text: &str) -> String {
    text.replace('\u{1b}', "<ESC>")
}

/// A store with one process of each colour, and a long goal.
fn processes() -> Env {
    let env = Env::new();
    env.ok(&["spawn", "assistant", "--goal", &"a goal long enough to be cut on any terminal ".repeat(3)]);
    env.ok(&["spawn", "assistant", "--goal", "paused"]);
    env.ok(&["pause", "2"]);
    env.ok(&["spawn", "assistant", "--goal", "killed"]);
    env.ok(&["kill", "3"]);
    env
}

fn age() -> Vec<(&'static str, &'static str)> {
    vec![(r"\b\d+s +", "[age] ")]
}

#[test]
fn tables_are_coloured_and_fitted_on_a_terminal_and_plain_elsewhere() {
    let env = processes();
    let shown = |vars: &[(&str, &str)], args: &[&str]| visible(&on_terminal(&env, args, vars, 80));
    insta::with_settings!({ filters => age() }, {
        insta::assert_snapshot!("ps_on_a_terminal", shown(&[], &["ps", "--all"]));
        insta::assert_snapshot!("ps_on_a_terminal_no_color", shown(&[("NO_COLOR", "1")], &["ps", "--all"]));
        insta::assert_snapshot!("ps_on_a_terminal_wide", shown(&[], &["ps", "--all", "--wide", "--color", "never"]));
        insta::assert_snapshot!("ps_piped", env.ok(&["ps", "--all"]));
        insta::assert_snapshot!("ps_piped_color_always", visible(&env.ok(&["ps", "--all", "--color", "always"])));
        insta::assert_snapshot!("caps_on_a_terminal", shown(&[], &["caps", "3"]));
    });
    // Every line of a fitted table fits the terminal (when its other columns do).
    let fitted = on_terminal(&env, &["ps", "--all"], &[("NO_COLOR", "1")], 75);
    assert!(fitted.lines().all(|l| l.chars().count() <= 75), "{fitted}");
    let audit = on_terminal(&env, &["audit"], &[("NO_COLOR", "1")], 90);
    assert!(audit.lines().all(|l| l.chars().count() <= 90), "{audit}");
    assert!(audit.contains("…"), "cut to fit:\n{audit}");
    let wide = on_terminal(&env, &["audit", "--wide"], &[("NO_COLOR", "1")], 90);
    assert!(!wide.contains("…"), "--wide cuts nothing:\n{wide}");
}

/// A profile whose endpoint refuses connections: every model call fails
/// and the scheduler warns.
const UNREACHABLE: &str = r#"
[models.default]
base_url = "http://127.0.0.1:9/v1"
model = "m"
max_retries = 0
timeout_s = 5
"#;

#[test]
fn scheduler_warnings_carry_colour_on_a_terminal_only() {
    let env = Env::new();
    env.write("libos.toml", UNREACHABLE);
    env.ok(&["spawn", "assistant", "--goal", "reach nobody"]);
    // Standard error into a pipe (a file in a shell's `2> log`).
    let out = env.cmd(&["run", "--until-idle"]).env_remove("NO_COLOR").output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("model call failed"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape sequences in a file: {}", visible(&stderr));

    let env = Env::new();
    env.write("libos.toml", UNREACHABLE);
    env.ok(&["spawn", "assistant", "--goal", "reach nobody"]);
    let shown = on_terminal(&env, &["run", "--until-idle"], &[], 100);
    assert!(shown.contains("\u{1b}[") && shown.contains("model call failed"), "{}", visible(&shown));

    let env = Env::new();
    env.write("libos.toml", UNREACHABLE);
    env.ok(&["spawn", "assistant", "--goal", "reach nobody"]);
    let shown = on_terminal(&env, &["run", "--until-idle"], &[("NO_COLOR", "1")], 100);
    assert!(shown.contains("model call failed") && !shown.contains('\u{1b}'), "{}", visible(&shown));
}

#[test]
fn audit_outcomes_are_coloured_on_a_terminal() {
    let env = Env::new();
    let script = env.write(
        "s.toml",
        "[[agent]]\nimage = \"assistant\"\n[[agent.step]]\ntool = \"read_file\"\nargs = { path = \"../outside\" }\n\
         [[agent.step]]\ntool = \"exit\"\nargs = { result = \"done\" }\n",
    );
    env.ok(&["spawn", "assistant", "--goal", "look outside"]);
    env.ok(&["run", "--until-idle", "--script", s(&script)]);
    let shown = visible(&on_terminal(&env, &["audit", "--outcome", "denied"], &[], 200));
    let row = shown.lines().nth(1).unwrap();
    assert!(row.contains("<ESC>[38;5;1m denied"), "{shown}");
    assert_eq!(env.ok(&["audit", "--outcome", "denied"]).contains('\u{1b}'), false);
}
