//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The version `--version` prints: the crate's, and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LIBOS_COMMIT"), ")");

/// libos: an operating system for LLM agents.
#[derive(Debug, Parser)]
#[command(name = "libos", version = VERSION, about, long_about = None, max_term_width = 100)]
#[command(after_help = crate::help::LIBOS)]
pub struct Cli {
    /// The store: an SQLite file, `:memory:`, or a PostgreSQL URL
    /// (`postgres://user@host/db`, shared by scheduler nodes; the schema is the
    /// search_path's, e.g. `?options=-csearch_path%3Dteam`).
    // The value is never shown in help: a URL may hold a password.
    #[arg(long, global = true, env = "LIBOS_DB", default_value = ".libos/libos.db", hide_env_values = true)]
    #[arg(display_order = 900)]
    pub db: String,
    /// How much an SQLite store's commit survives before it is answered:
    /// `normal` (a process crash; the last commits may be lost on power
    /// loss) or `full` (a power loss too: every commit syncs the disk).
    #[arg(long, global = true, env = "LIBOS_SYNC", value_name = "LEVEL", default_value = "normal")]
    #[arg(value_parser = libos_kernel::Durability::parse, display_order = 900)]
    pub sync: libos_kernel::Durability,
    /// Configuration file (model profiles, image directories); default ./libos.toml if present.
    #[arg(long, global = true, env = "LIBOS_CONFIG", hide_env_values = true, display_order = 900)]
    pub config: Option<PathBuf>,
    /// When to colour tables and messages: on a terminal unless NO_COLOR is set (auto), always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", display_order = 900)]
    pub color: crate::term::ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store (idempotent).
    #[command(after_help = crate::help::INIT)]
    Init(JsonArg),
    /// Spawn a root process from an image; prints its pid.
    #[command(after_help = crate::help::SPAWN)]
    Spawn(SpawnArgs),
    /// Run the scheduler.
    #[command(after_help = crate::help::RUN)]
    Run(RunArgs),
    /// List processes.
    #[command(after_help = crate::help::PS)]
    Ps(PsArgs),
    /// Kill a process, cancelling its in-flight quantum.
    #[command(after_help = crate::help::KILL)]
    Kill(KillArgs),
    /// Change a process's scheduling priority (higher runs first).
    #[command(after_help = crate::help::RENICE)]
    Renice(ReniceArgs),
    /// Pause a process where it is (a waiting process stays parked on what it waits for).
    #[command(after_help = crate::help::PAUSE)]
    Pause(PidArg),
    /// Return a paused process to exactly the state it was paused in.
    #[command(after_help = crate::help::RESUME)]
    Resume(PidArg),
    /// List open approval requests and questions.
    #[command(after_help = crate::help::PENDING)]
    Pending(JsonArg),
    /// Approve a parked call: it runs exactly as parked, once.
    #[command(after_help = crate::help::APPROVE)]
    Approve(ApproveArgs),
    /// Deny a parked call (or refuse a question); the reason goes to the model.
    #[command(after_help = crate::help::DENY)]
    Deny(DenyArgs),
    /// Answer a question asked with `ask_human`.
    #[command(after_help = crate::help::ANSWER)]
    Answer(AnswerArgs),
    /// Send a message to a process as the operator.
    #[command(after_help = crate::help::SEND)]
    Send(SendArgs),
    /// Show a process's messages.
    #[command(after_help = crate::help::INBOX)]
    Inbox(InboxArgs),
    /// Show a process's capability grants.
    #[command(after_help = crate::help::CAPS)]
    Caps(CapsArgs),
    /// Grant a process a capability.
    #[command(after_help = crate::help::GRANT)]
    Grant(GrantArgs),
    /// Revoke a grant and everything derived from it.
    #[command(after_help = crate::help::REVOKE)]
    Revoke(RevokeArgs),
    /// A process's memory view (`memory PID`), or one object (`memory show OID`).
    #[command(after_help = crate::help::MEMORY)]
    Memory(MemoryArgs),
    /// Re-execute a finished process (and its children) on its recorded
    /// model answers in a scratch store, and compare its calls.
    #[command(after_help = crate::help::REPLAY)]
    Replay(ReplayArgs),
    /// Show a process's transcript: model calls, tool calls, results.
    #[command(after_help = crate::help::LOGS)]
    Logs(LogsArgs),
    /// List the images that can be spawned.
    #[command(after_help = crate::help::IMAGES)]
    Images(ImagesArgs),
    /// Read, follow and verify the audit log.
    #[command(after_help = crate::help::AUDIT)]
    Audit(AuditArgs),
    /// Run a scripted multi-agent demo in a fresh store (no network);
    /// `demo mcp` shows an agent using a real MCP server instead (npm, once).
    #[command(after_help = crate::help::DEMO)]
    Demo(DemoArgs),
    /// Serve the JSON API, the live event stream and the browser console.
    #[command(after_help = crate::help::SERVE)]
    Serve(ServeArgs),
    /// Check the MCP servers of libos.toml by hand: list them, their tools, call one.
    #[command(after_help = crate::help::MCP)]
    Mcp(McpArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = crate::help::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print the manual page, or write one per command into a directory.
    #[command(after_help = crate::help::MAN)]
    Man(ManArgs),
}

/// `libos completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// `libos man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `libos.1` and a `libos-COMMAND.1` per command here instead of printing `libos.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Scheduler options shared by `run`, `spawn --run` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct SchedArgs {
    /// Most model calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Play this script file instead of calling model endpoints (every profile).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// How long a lease lasts unless renewed (renewed every third of it):
    /// after a crash, another scheduler takes the processes over this long
    /// after the last renewal.
    #[arg(long, default_value = "60s", value_parser = parse_ttl)]
    pub lease_ttl: std::time::Duration,
    /// Run `shell` programs without the sandbox, with the scheduler's own
    /// authority (audited). Only for hosts that cannot confine programs.
    #[arg(long)]
    pub unconfined_shell: bool,
}

/// A `--idle-wait`: at most a week, the longest a `sleep` lasts.
fn parse_idle_wait(text: &str) -> Result<std::time::Duration, String> {
    let d = libos_kernel::time::parse_duration(text)?;
    if d > std::time::Duration::from_secs(7 * 86_400) {
        return Err(format!("idle wait `{text}` is longer than a sleep can last (at most 7d)"));
    }
    Ok(d)
}

fn parse_ttl(text: &str) -> Result<std::time::Duration, String> {
    let d = libos_kernel::time::parse_duration(text)?;
    if d < std::time::Duration::from_millis(300) {
        return Err(format!("lease ttl `{text}` is too short (at least 300ms)"));
    }
    Ok(d)
}

/// `libos spawn`.
#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// Image name (see `libos images`).
    pub image: String,
    /// What the process should do.
    #[arg(long)]
    pub goal: String,
    /// Workspace directory its file tools are confined to (default: the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// A grant for the process, in addition to its image's: `RIGHTS RESOURCE
    /// [EFFECT] [delegable] [uses=N] [expires=DURATION]` (repeatable).
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Budget limits replacing the image's, e.g. `quanta=50,cost_usd=0.5`
    /// (dimensions: quanta, model_calls, tokens_in, tokens_out, cost_usd,
    /// tool_calls, children, wall_time) (repeatable).
    #[arg(long = "budget", value_name = "DIM=VALUE")]
    pub budget: Vec<String>,
    /// Scheduling priority; higher runs first.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub priority: i32,
    /// Run the scheduler until idle after spawning, then print the result.
    #[arg(long)]
    pub run: bool,
    /// Scheduler options (with --run).
    #[command(flatten)]
    pub sched: SchedArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos run`.
/// One pid.
#[derive(Debug, Args)]
pub struct PidArg {
    /// The process.
    pub pid: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Just `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `libos approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request id (see `libos pending`).
    pub id: String,
    /// Also allow exactly this resource and right from now on (an exact grant).
    #[arg(long)]
    pub always: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos deny`.
#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request id.
    pub id: String,
    /// Also deny exactly this resource and right from now on (an exact grant).
    #[arg(long)]
    pub always: bool,
    /// Why, shown to the model.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos answer`.
#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The question's request id.
    pub id: String,
    /// The answer.
    pub text: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient.
    pub pid: String,
    /// The message.
    pub text: String,
    /// Send as an interrupt: shown first, wakes a receiving or sleeping process.
    #[arg(long)]
    pub interrupt: bool,
    /// A channel name.
    #[arg(long)]
    pub channel: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The process.
    pub pid: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `libos caps`.
#[derive(Debug, Args)]
pub struct CapsArgs {
    /// The process.
    pub pid: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `libos grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The process.
    pub pid: String,
    /// The whole grant as everywhere else (`"read,write fs:src/** ask
    /// delegable uses=3 expires=1h"`), or only its rights, comma-separated
    /// (read, write, exec, delete, spawn, signal, send), with RESOURCE next.
    pub rights: String,
    /// The resource pattern, e.g. `fs:src/**`, `image:worker`, `message:7`
    /// (when the first argument is only the rights).
    pub resource: Option<String>,
    /// allow, ask or deny [default: allow].
    #[arg(long)]
    pub effect: Option<String>,
    /// The holder may delegate it to children.
    #[arg(long)]
    pub delegable: bool,
    /// How many uses (shared with grants derived from it).
    #[arg(long)]
    pub uses: Option<u32>,
    /// How long it lasts, e.g. `30m`.
    #[arg(long)]
    pub expires: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos memory`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MemoryArgs {
    /// `show OID` or `search PID WORDS...`.
    #[command(subcommand)]
    pub action: Option<MemoryAction>,
    /// The process whose view to list.
    pub pid: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `libos memory` subcommands.
#[derive(Debug, Subcommand)]
pub enum MemoryAction {
    /// What `memory_search` would find for a process: the objects it may
    /// read that match the words, best first.
    Search {
        /// The process whose view to search.
        pid: String,
        /// Words to look for (any of them; more of them, or the whole
        /// phrase, rank first).
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
        /// Only this namespace of the view.
        #[arg(long)]
        namespace: Option<String>,
        /// At most this many hits (1 to 50).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=50))]
        limit: u16,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One object, content included.
    Show {
        /// The object id.
        oid: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `libos images`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImagesArgs {
    /// `show NAME`.
    #[command(subcommand)]
    pub action: Option<ImagesAction>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos images` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// One image whole: tools, grants, budget, context and its spec.
    Show {
        /// The image's name.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `libos renice`.
#[derive(Debug, Args)]
pub struct ReniceArgs {
    /// The process.
    pub pid: String,
    /// The new priority (higher runs first; may be negative).
    #[arg(allow_hyphen_values = true)]
    pub priority: i32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The finished process.
    pub pid: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The grant id (see `libos caps`).
    pub grant: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Return once no process is runnable or running and no sleeper is due
    /// within `--idle-wait` (timers that ran out are woken first).
    #[arg(long)]
    pub until_idle: bool,
    /// With `--until-idle`: how far ahead a sleeper's timer may be due and
    /// still be waited for (e.g. 0s, 90s, 5m); a later one stays parked.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_idle_wait)]
    pub idle_wait: std::time::Duration,
    /// How often to look for changes made by other processes, in milliseconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub poll_ms: u64,
    /// When it stops, print what it did as JSON on stdout (quanta, finished,
    /// woken and left-parked processes with the HTTP API's process fields).
    #[arg(long)]
    pub json: bool,
    /// Scheduler options.
    #[command(flatten)]
    pub sched: SchedArgs,
}

/// `libos serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen. Any non-loopback address needs the token for reads
    /// as well as actions.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: std::net::SocketAddr,
    /// A file holding the bearer token for actions (its first line). Without
    /// it, `LIBOS_TOKEN` is used, else one is generated and printed. Never
    /// on the command line, where every local program can read it.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a token on the command line is readable by every program on
    /// this machine (`/proc/PID/cmdline`).
    #[arg(long, hide = true)]
    pub token: Option<String>,
    /// Also run the scheduler in this process.
    #[arg(long)]
    pub run: bool,
    /// Print where it listens as one JSON line (`url`, `addr`, `token`).
    #[arg(long)]
    pub json: bool,
    /// How often the scheduler looks for changes by other processes, in milliseconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub poll_ms: u64,
    /// Scheduler options (with `--run`).
    #[command(flatten)]
    pub sched: SchedArgs,
}

/// `libos ps`.
#[derive(Debug, Default, Args)]
pub struct PsArgs {
    /// Include exited, failed and killed processes.
    #[arg(long, short)]
    pub all: bool,
    /// Show processes as a tree under their parents.
    #[arg(long)]
    pub tree: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Only processes in these states (comma-separated, or repeated); an
    /// ended state (exited, failed, killed) needs no `--all`.
    #[arg(long, value_delimiter = ',', value_parser = crate::cmd::ps::STATES)]
    pub state: Vec<String>,
    /// Only processes of this image.
    #[arg(long)]
    pub image: Option<String>,
    /// Only the children of this process.
    #[arg(long, value_name = "PID")]
    pub parent: Option<String>,
    /// Print only the pids, one a line.
    #[arg(long, short, conflicts_with_all = ["json", "tree", "wide"])]
    pub quiet: bool,
    /// Show goals whole instead of cut to the terminal's width.
    #[arg(long)]
    pub wide: bool,
}

/// `libos kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The process.
    pub pid: String,
    /// Kill its descendants too (otherwise they are detached and keep running).
    #[arg(long)]
    pub tree: bool,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "killed by operator")]
    pub reason: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `libos logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The process.
    pub pid: String,
    /// JSON output (with `--follow`, one line per quantum, then the process).
    #[arg(long)]
    pub json: bool,
    /// Keep printing quanta as they end, until the process ends (or Ctrl-C).
    #[arg(long, short)]
    pub follow: bool,
}

/// `libos audit`.
#[derive(Debug, Default, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// `verify` or `head`; without one, list records.
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    /// Only records about this process.
    #[arg(long)]
    pub pid: Option<String>,
    /// Only this tool (or operator command, or state event).
    #[arg(long)]
    pub tool: Option<String>,
    /// Only this outcome: ok, error, denied, rejected, parked, unknown, pending.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only records since a time: RFC 3339, or an age like 30s, 15m, 2h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many (the most recent).
    #[arg(long)]
    pub limit: Option<usize>,
    /// JSON lines output.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new records as they are appended.
    #[arg(long, short)]
    pub follow: bool,
    /// Show details whole instead of cut to the terminal's width.
    #[arg(long)]
    pub wide: bool,
}

/// `libos audit verify | head`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain; name the first bad record.
    Verify {
        /// The head hash you kept earlier (`libos audit head`): detects a truncated tail.
        #[arg(long)]
        expect_head: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print the current head hash, to keep somewhere else.
    Head {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `libos demo`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    /// Another demo instead of the main one.
    #[command(subcommand)]
    pub which: Option<DemoKind>,
    /// Directory for the demo's store and workspace (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run the demo on this store instead of a new SQLite file in the directory
    /// (e.g. a `postgres://` URL); it must hold no processes yet. (Not
    /// `--db`: the demo never picks up `LIBOS_DB` by accident.)
    #[arg(long)]
    pub store: Option<String>,
}

/// The other demos.
#[derive(Debug, Subcommand)]
pub enum DemoKind {
    /// An agent using a real MCP server (server-everything, installed from
    /// npm once), one call behind approval.
    Mcp(DemoMcpArgs),
}

/// `libos demo mcp`.
#[derive(Debug, Args)]
pub struct DemoMcpArgs {
    /// Directory for the demo's store, configuration and workspace (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where the MCP server is installed, or found already installed, as
    /// `CACHE/mcp-node` (default: `$XDG_CACHE_HOME/libos`, else `~/.cache/libos`).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// `libos mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: McpAction,
}

/// `libos mcp` subcommands.
#[derive(Debug, Subcommand)]
pub enum McpAction {
    /// The configured servers: transport, what is run or reached, limits.
    List {
        /// Start each server (in the workspace) and report its tools or why it failed.
        #[arg(long)]
        check: bool,
        /// The workspace servers are started in for `--check` (default: the current directory).
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A server's tools, with their schemas and annotations (it is started to ask).
    Tools {
        /// The server's name.
        server: String,
        /// The workspace it is started in (default: the current directory).
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Print the tools as MCP's JSON (name, description, inputSchema, annotations).
        #[arg(long)]
        json: bool,
    },
    /// Call a tool, sandboxed as the scheduler would run it.
    Call {
        /// The server's name.
        server: String,
        /// The tool's name on the server.
        tool: String,
        /// The arguments: a JSON object.
        #[arg(default_value = "{}")]
        args: String,
        /// The workspace it runs in (default: the current directory).
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Print the result as JSON (text, structured, is_error).
        #[arg(long)]
        json: bool,
    },
}
