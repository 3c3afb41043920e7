//! What standard output and standard error are: a terminal or not, and so
//! whether to colour them and how wide a table may be.
//!
//! Colour follows `--color` (`auto` by default): `auto` colours a stream
//! only when it is a terminal, never when `NO_COLOR` is set (to anything
//! but the empty string, <https://no-color.org>) or `TERM` is `dumb`, and
//! always when `CLICOLOR_FORCE` is set (to anything but `0`). Files and
//! pipes therefore never get escape sequences: not the tables, not the
//! scheduler's warnings.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal only, unless `NO_COLOR` says otherwise.
    #[default]
    Auto,
    /// Always, even into files and pipes.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Clone, Copy)]
struct Decided {
    stdout: bool,
    stderr: bool,
}

static DECIDED: OnceLock<Decided> = OnceLock::new();

/// Decides colour for both streams, once, from `choice` and the environment.
pub fn init(choice: ColorChoice) {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let auto = |is_terminal: bool| {
        if env("NO_COLOR").is_some() {
            return false;
        }
        if env("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
            return true;
        }
        is_terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
    };
    let decided = match choice {
        ColorChoice::Always => Decided { stdout: true, stderr: true },
        ColorChoice::Never => Decided { stdout: false, stderr: false },
        ColorChoice::Auto => {
            Decided { stdout: auto(std::io::stdout().is_terminal()), stderr: auto(std::io::stderr().is_terminal()) }
        }
    };
    let _ = DECIDED.set(decided);
}

fn decided() -> Decided {
    *DECIDED.get_or_init(|| Decided { stdout: false, stderr: false })
}

/// Whether standard output gets colour.
pub fn color_stdout() -> bool {
    decided().stdout
}

/// Whether standard error gets colour.
pub fn color_stderr() -> bool {
    decided().stderr
}

/// The terminal's width in columns when standard output is a terminal.
pub fn stdout_width() -> Option<usize> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&out).map(|(w, _)| usize::from(w.0)).filter(|w| *w > 0)
}
