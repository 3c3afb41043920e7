//! `libos serve`: the HTTP API, event stream and console on this store.

use std::time::Duration;

use anyhow::Context;
use libos_console::Access;
use libos_kernel::OpenMode;

use crate::args::ServeArgs;
use crate::ctx::{self, Ctx};
use crate::exit::UsageError;
use crate::render;

/// The token the operator gave (`--token-file`, else `LIBOS_TOKEN`; neither
/// is visible to other programs the way a command line is) and where it
/// came from, for errors.
fn token(args: &ServeArgs) -> anyhow::Result<Option<(String, String)>> {
    if args.token.is_some() {
        return Err(UsageError(
            "--token would put the console token on the command line, where every local program can read it \
             (/proc/PID/cmdline): set LIBOS_TOKEN or use --token-file FILE"
                .to_string(),
        )
        .into());
    }
    let given = match &args.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            let first = text.lines().next().unwrap_or("").trim().to_string();
            if first.is_empty() {
                return Err(UsageError(format!("the token file {} is empty", path.display())).into());
            }
            Some((first, format!("the token in {}", path.display())))
        }
        None => std::env::var("LIBOS_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| (t.trim().to_string(), "LIBOS_TOKEN".to_string())),
    };
    Ok(given)
}

/// The server's access: the given token if the console can carry it (and,
/// beyond loopback, it is long enough), else a generated one.
fn access(given: Option<&(String, String)>, addr: std::net::SocketAddr) -> anyhow::Result<Access> {
    let loopback = addr.ip().is_loopback();
    match given {
        None => Ok(Access::new(Access::generate_token(), loopback)?),
        Some((token, source)) => Access::new(token.clone(), loopback)
            .map_err(|e| UsageError(render::one_line(&format!("{source} {e}")).into_owned()).into()),
    }
}

/// Serves until Ctrl-C; with `--run`, runs the scheduler beside it.
pub async fn run(ctx: &Ctx, args: &ServeArgs) -> anyhow::Result<()> {
    let given = token(args)?;
    let access = access(given.as_ref(), args.addr)?;
    let kernel = ctx.open(OpenMode::Create)?;
    let loopback = access.loopback;
    let token = access.token.clone();
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let host = if loopback { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    // The token travels in the fragment: the browser never sends it to the
    // server, the console moves it to the tab's session storage.
    let url = format!("http://{host}/#token={token}");
    if args.json {
        let out = serde_json::json!({"url": url, "addr": addr.to_string(), "token": token});
        outln!("{}", render::json_line(&out)?);
    } else {
        outln!("libos console: {url}");
        if given.is_none() {
            outln!("token (for `Authorization: Bearer`): {token}");
        }
    }
    if !loopback {
        eprintln!("libos: listening on {addr}, beyond this machine: every request needs the token");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut wait = stopped.clone();
    let server = libos_console::serve(listener, kernel.clone(), access, async move {
        let _ = wait.wait_for(|s| *s).await;
    });
    let scheduler = async {
        if !args.run {
            return Ok(None);
        }
        // A scheduler that cannot start (or stops on an error) stops the server too.
        let stop_all = scopeguard(&stop);
        let config = ctx.config()?;
        let loaded = ctx::load_run(&config, ctx.images(&config)?, args.sched.script.as_deref())?;
        let mut wait = stopped.clone();
        let poll = Duration::from_millis(args.poll_ms);
        let summary = ctx::run_scheduler(&kernel, loaded, &args.sched, poll, None, async move {
            let _ = wait.wait_for(|s| *s).await;
        })
        .await?;
        drop(stop_all);
        anyhow::Ok(Some(summary))
    };
    let signal = async {
        ctx::interrupted().await;
        let _ = stop.send(true);
    };
    let (served, ran, ()) = tokio::join!(server, scheduler, signal);
    served.context("the server stopped")?;
    if let Some(summary) = ran? {
        ctx::report_summary(&summary, None);
    }
    Ok(())
}

/// Sends `true` on `stop` when dropped (on every way out of the scheduler).
fn scopeguard(stop: &tokio::sync::watch::Sender<bool>) -> impl Drop + '_ {
    struct Guard<'a>(&'a tokio::sync::watch::Sender<bool>);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let _ = self.0.send(true);
        }
    }
    Guard(stop)
}
