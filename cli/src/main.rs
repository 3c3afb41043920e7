//! The `libos` command: operators' interface to a libos store.
//!
//! Every command opens the store, does one thing (most are one transaction),
//! prints a table for people or JSON for scripts, and exits with a documented
//! code (see [`exit`]). Errors are one line on stderr: `libos: error: ...`.

#[macro_use]
mod out;
mod args;
mod cmd;
mod ctx;
mod exit;
mod help;
mod mcp_run;
mod render;
mod term;
mod usage;

use std::process::ExitCode;

use crate::args::{Cli, Command};
use crate::ctx::Ctx;

fn main() -> ExitCode {
    // This binary is also the sandbox's launcher; it must take over before
    // anything else runs (no threads may exist when it makes namespaces).
    if libos_sandbox::launch::invoked() {
        libos_sandbox::launch::main();
    }
    let cli = match usage::parse() {
        Ok(cli) => cli,
        Err(e) => return usage::report(&e),
    };
    term::init(cli.color);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LIBOS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(term::color_stderr())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("libos: error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(dispatch(&cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = exit::code_for(&e);
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("libos: error: {}", dedup_chain(&chain));
            ExitCode::from(code)
        }
    }
}

/// Joins an error chain on one line, skipping causes already quoted by their
/// parent; errors may quote model text, so control characters are escaped.
fn dedup_chain(chain: &[String]) -> String {
    let mut out = String::new();
    for c in chain {
        if out.contains(c.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c.replace('\n', " "));
    }
    render::one_line(&out).into_owned()
}

async fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    let ctx = Ctx { db: cli.db.clone(), config: cli.config.clone(), sync: cli.sync };
    match &cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Spawn(a) => cmd::spawn::run(&ctx, a).await,
        Command::Run(a) => cmd::run::run(&ctx, a).await,
        Command::Ps(a) => cmd::ps::run(&ctx, a),
        Command::Kill(a) => cmd::kill::run(&ctx, a),
        Command::Renice(a) => cmd::kill::renice(&ctx, a),
        Command::Pause(a) => cmd::kill::pause(&ctx, a),
        Command::Resume(a) => cmd::kill::resume(&ctx, a),
        Command::Pending(a) => cmd::approvals::pending(&ctx, a),
        Command::Approve(a) => cmd::approvals::approve(&ctx, a),
        Command::Deny(a) => cmd::approvals::deny(&ctx, a),
        Command::Answer(a) => cmd::approvals::answer(&ctx, a),
        Command::Send(a) => cmd::msg::send(&ctx, a),
        Command::Inbox(a) => cmd::msg::inbox(&ctx, a),
        Command::Caps(a) => cmd::caps::caps(&ctx, a),
        Command::Grant(a) => cmd::caps::grant(&ctx, a),
        Command::Revoke(a) => cmd::caps::revoke(&ctx, a),
        Command::Memory(a) => cmd::memory::run(&ctx, a),
        Command::Replay(a) => cmd::replay::run(&ctx, a).await,
        Command::Logs(a) => cmd::logs::run(&ctx, a).await,
        Command::Images(a) => cmd::images::run(&ctx, a).await,
        Command::Audit(a) => cmd::audit::run(&ctx, a).await,
        Command::Demo(a) => match &a.which {
            Some(args::DemoKind::Mcp(m)) => cmd::demo_mcp::run(m).await,
            None => cmd::demo::run(a).await,
        },
        Command::Serve(a) => cmd::serve::run(&ctx, a).await,
        Command::Mcp(a) => cmd::mcp::run(&ctx, a).await,
        Command::Completions(a) => cmd::docs::completions(a),
        Command::Man(a) => cmd::docs::man(a),
    }
}
