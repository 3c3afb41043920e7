//! `shell N`: `shell ["true"]` as the shell tool runs it, unconfined, in
//! the sandbox, and in the sandbox behind the network proxy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{machine, percentile};

/// `shell ["true"]` as the shell tool runs it: unconfined, and in the
/// sandbox through the launcher the `libos` CLI would choose.
pub(crate) fn sandbox_cost(runs: usize) -> anyhow::Result<()> {
    use libos_sandbox::{Cancel, Cmd, End, Launcher, Policy, Sandbox};
    let dir = tempfile::tempdir()?;
    let ws = dir.path().canonicalize()?;
    std::fs::create_dir_all(ws.join(".libos"))?;
    let path = std::env::var("PATH").unwrap_or_default();
    let env = vec![("PATH".to_string(), path.clone()), ("HOME".to_string(), ws.display().to_string())];
    let policy = Policy::for_workspace(&ws, vec![ws.join(".libos"), ws.join("libos.toml")], Some(path.as_ref()));
    let argv = vec!["true".to_string()];
    let cmd = Cmd { argv: &argv, cwd: &ws, env: &env, policy: &policy, timeout: Duration::from_secs(10), net: None };
    // As the CLI chooses: `libos-sandbox` beside this binary, else this binary.
    let launcher = Launcher::find().or_else(|_| std::env::current_exe().map(Launcher::new))?;
    let confined = Sandbox::confined(launcher.clone())?;
    // With `net:` grants: the same, behind the proxy (which nothing asks).
    let gate: Arc<dyn libos_sandbox::NetGate> = Arc::new(RefuseAll);
    let proxied_policy = Policy { network: libos_sandbox::Network::Proxy, ..policy.clone() };
    let proxied = Cmd { policy: &proxied_policy, net: Some(&gate), ..cmd };
    let measure_cmd = |sandbox: &Sandbox, cmd: &Cmd<'_>| -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let out = sandbox.run(cmd, &Cancel::new())?;
            times.push(started.elapsed());
            anyhow::ensure!(out.end == End::Exited(0), "`true` ended {:?}", out.end);
        }
        times.sort();
        Ok(times)
    };
    let measure = |sandbox: &Sandbox| measure_cmd(sandbox, &cmd);
    // Warm up both paths once, then alternate nothing: each set in a row.
    measure(&Sandbox::unconfined())?;
    let plain = measure(&Sandbox::unconfined())?;
    let boxed = measure(&confined)?;
    let with_proxy = measure_cmd(&confined, &proxied)?;
    println!("scenario: shell [\"true\"], unconfined and in the sandbox");
    println!("machine: {}", machine());
    println!("params: {runs} runs each; launcher {}; sandbox: {}", launcher.program().display(), confined.describe());
    for (name, t) in [("unconfined", &plain), ("sandboxed", &boxed), ("sandboxed with the net proxy", &with_proxy)] {
        println!(
            "result: {name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            percentile(t, 0.5).as_secs_f64() * 1e3,
            percentile(t, 0.9).as_secs_f64() * 1e3,
            percentile(t, 0.99).as_secs_f64() * 1e3
        );
    }
    let over = percentile(&boxed, 0.5).saturating_sub(percentile(&plain, 0.5));
    println!("result: the sandbox adds {:.2} ms at p50", over.as_secs_f64() * 1e3);
    let over = percentile(&with_proxy, 0.5).saturating_sub(percentile(&boxed, 0.5));
    println!("result: the net proxy adds {:.2} ms more at p50", over.as_secs_f64() * 1e3);
    Ok(())
}

/// A gate for the benchmark: nothing is asked of it, and it allows nothing.
#[derive(Debug)]
struct RefuseAll;

impl libos_sandbox::NetGate for RefuseAll {
    fn decide(&self, _: &str, _: u16, _: libos_sandbox::Use) -> Result<libos_sandbox::Reach, String> {
        Err("nothing is granted".to_string())
    }
}
