//! Replay: re-execute a finished process against its recorded model answers
//! and compare, call by call, what it did.
//!
//! 1. Rebuild the run's world in a scratch in-memory store: the images the
//!    process tree ran (by their recorded specs), the root's goal, budget
//!    and spawn-time grants, and a scratch copy of its workspace.
//! 2. Run it with a [`ReplayModel`]: every model call gets the original's
//!    recorded answer; children map to the original's children in spawn
//!    order. The answers (and the results dynamic tools recorded) are read
//!    before the run: a quantum of the replay never waits on the original's
//!    store, and a failure of that store fails the replay, not a process.
//! 3. When a replayed process parks on a human, apply the decision the
//!    original got (approve, deny with its reason, answer with its text).
//! 4. Compare each process's tool calls (tool, sha256 of the arguments,
//!    capability decision, outcome) with the original's. A `receive`,
//!    `wait` or `sleep` that parked counts as one that succeeded at once:
//!    which it was depends on the scheduling of other processes.
//!
//! Dynamic tools (MCP, operator-defined) are never run again: the replay's
//! registry has the same entries (same schemas and needs) with a handler
//! that answers each call with the result the original recorded for the
//! same tool and arguments, in order ([`replay_with`]). Built-ins that
//! reach beyond this machine by themselves (`http_request`) are answered
//! the same way: a replay never sends a request again. A call the
//! original never made gets an error result, which the comparison shows.
//!
//! Known limits: counted grants are replayed with the uses they have left
//! now, not those they started with; a process that slept is replayed only
//! up to the sleep; the workspace is copied as it is now, not as it was.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libos_images::{Image, ImageSet};
use libos_kernel::audit::{AuditAction, AuditDecision, AuditKind, AuditRecord, KernelAction};
use libos_kernel::caps::GrantSpec;
use libos_kernel::ipc::RequestStatus;
use libos_kernel::{
    Actor, AuditFilter, Kernel, KernelError, OpenError, Outcome, Pid, ProcState, RequestId, SpawnSpec, TranscriptEntry,
    Verdict,
};
use libos_tools::{Invocation, Registry, RegistryError, ToolContext, ToolFuture, ToolHandler, ToolOutput};

use crate::ModelRouter;
use crate::model::replay::{ReplayModel, Unmapped};
use crate::quantum::{self, QuantumPolicy};
use crate::scheduler::{Scheduler, SchedulerConfig};

/// Files copied into the scratch workspace, at most.
const MAX_COPIED_FILES: usize = 10_000;
/// Bytes copied into the scratch workspace, at most.
const MAX_COPIED_BYTES: u64 = 256 * 1024 * 1024;

/// Why a replay could not be run (a replay that ran and differs is a
/// [`ReplayReport`] that does not match, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A store failed, the original's or the scratch one's.
    #[error(transparent)]
    Store(#[from] KernelError),
    /// The scratch store could not be opened.
    #[error(transparent)]
    Scratch(#[from] OpenError),
    /// The process is still going.
    #[error("process {pid} has not ended ({state}): replay re-executes finished processes")]
    NotEnded {
        /// The process.
        pid: Pid,
        /// Where it stands.
        state: ProcState,
    },
    /// An image the original ran no longer parses, or its dynamic tools
    /// cannot be registered again.
    #[error("{0}")]
    Image(String),
    /// The scratch workspace could not be made.
    #[error("{0}")]
    Workspace(String),
    /// A replayed process maps to no original one.
    #[error(transparent)]
    Unmapped(#[from] Unmapped),
}

impl From<RegistryError> for ReplayError {
    fn from(e: RegistryError) -> ReplayError {
        ReplayError::Image(e.to_string())
    }
}

/// One tool call as a replay compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSig {
    /// The tool (or, for a rejected output, what the model named).
    pub tool: AuditAction,
    /// sha256 of its canonical arguments.
    pub args_sha256: String,
    /// The capability decision.
    pub decision: Option<AuditDecision>,
    /// How it came out.
    pub outcome: Outcome,
}

impl std::fmt::Display for CallSig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} args {} decision {} -> {}",
            self.tool,
            &self.args_sha256[..self.args_sha256.len().min(12)],
            self.decision.map_or("-", AuditDecision::as_str),
            self.outcome
        )
    }
}

/// One process of a replayed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessReplay {
    /// The original process.
    pub original: Pid,
    /// Its image.
    pub image: String,
    /// The replay's process, if the replay spawned one for it.
    pub replay: Option<Pid>,
    /// The original's calls, in order.
    pub original_calls: Vec<CallSig>,
    /// The replay's calls, in order.
    pub replay_calls: Vec<CallSig>,
    /// How the original ended.
    pub original_end: String,
    /// How the replay ended (or stands).
    pub replay_end: String,
}

impl ProcessReplay {
    /// The index of the first call that differs (or is missing on one side).
    pub fn first_difference(&self) -> Option<usize> {
        let n = self.original_calls.len().max(self.replay_calls.len());
        (0..n).find(|i| self.original_calls.get(*i) != self.replay_calls.get(*i))
    }

    /// Same calls, same end.
    pub fn matches(&self) -> bool {
        self.first_difference().is_none() && self.original_end == self.replay_end
    }
}

/// A whole replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// The root and its descendants, in pid order.
    pub processes: Vec<ProcessReplay>,
}

impl ReplayReport {
    /// Every process matches.
    pub fn matches(&self) -> bool {
        self.processes.iter().all(ProcessReplay::matches)
    }
}

/// `root` and its descendants, parents before children (what a replay re-executes).
pub fn tree(k: &Kernel, root: Pid) -> Result<Vec<Pid>, KernelError> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        out.extend(k.children(out[i])?);
        i += 1;
    }
    Ok(out)
}

fn calls(k: &Kernel, pid: Pid) -> Result<Vec<CallSig>, KernelError> {
    let actor = Actor::Process(pid);
    let records = k.audit(&AuditFilter { pid: Some(pid), ..Default::default() })?;
    Ok(records
        .into_iter()
        .filter(|r| r.kind == AuditKind::Tool && r.actor == actor)
        .map(|r| {
            // Whether a wait parked or found its message, child or deadline
            // already there depends on how other processes were scheduled,
            // not on what this one did: both count as the call succeeding.
            let waited = r.outcome == Outcome::Parked
                && r.action.tool_name().is_some_and(|t| matches!(t.as_str(), "receive" | "wait" | "sleep"));
            let outcome = if waited { Outcome::Ok } else { r.outcome };
            CallSig { tool: r.action, args_sha256: r.args_sha256, decision: r.decision, outcome }
        })
        .collect())
}

fn copy_dir(from: &Path, to: &Path, files: &mut usize, bytes: &mut u64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".libos" || *files >= MAX_COPIED_FILES || *bytes >= MAX_COPIED_BYTES {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target, files, bytes)?;
        } else if kind.is_file() {
            *bytes += std::fs::copy(entry.path(), &target)?;
            *files += 1;
        }
    }
    Ok(())
}

/// The decisions humans made on `pid`'s requests in the original, in order.
fn decisions(k: &Kernel, pid: Pid) -> Result<Vec<(Verdict, Actor)>, KernelError> {
    let records = k.audit(&AuditFilter { pid: Some(pid), ..Default::default() })?;
    let mut out = Vec::new();
    let decided = |r: &&AuditRecord| {
        matches!(r.action, AuditAction::Kernel(KernelAction::Approve | KernelAction::Deny | KernelAction::Answer))
    };
    for r in records.iter().filter(decided) {
        let args: serde_json::Value = serde_json::from_str(&r.args).unwrap_or_default();
        let Some(id) = args.get("request").and_then(serde_json::Value::as_i64) else { continue };
        let always = args.get("always").and_then(serde_json::Value::as_bool).unwrap_or(false);
        let req = k.request(RequestId(id))?;
        let verdict = match req.status {
            RequestStatus::Approved => Verdict::Approve { always },
            RequestStatus::Denied { reason } => Verdict::Deny { always, reason },
            RequestStatus::Answered { text } => Verdict::Answer { text },
            RequestStatus::Open | RequestStatus::Cancelled => continue,
        };
        out.push((verdict, r.actor.clone()));
    }
    Ok(out)
}

/// Answers a replayed dynamic call from the original's transcript, read
/// before the replay starts (so a quantum never waits on the original's
/// store, nor shows the model its failure).
struct Recorded {
    transcripts: HashMap<Pid, Vec<TranscriptEntry>>,
    model: Arc<ReplayModel>,
    /// Per replayed process, the original's quanta already answered.
    used: Mutex<HashMap<Pid, HashSet<u64>>>,
}

impl Recorded {
    fn answer(&self, call: Invocation<'_>, pid: Option<Pid>) -> Result<ToolOutput, String> {
        let pid = pid.ok_or("the call has no process")?;
        let original = self.model.original_of(pid).map_err(|e| e.to_string())?;
        let entries = self.transcripts.get(&original).map_or(&[][..], Vec::as_slice);
        let mut used = self.used.lock().map_err(|_| "replay state poisoned".to_string())?;
        let used = used.entry(pid).or_default();
        let entry = entries
            .iter()
            .find(|e| e.call.tool == call.tool.as_str() && e.call.args == call.canonical && !used.contains(&e.quantum))
            .ok_or_else(|| format!("the original run made no such call of `{}` (replay never runs it)", call.tool))?;
        used.insert(entry.quantum);
        Ok(match entry.result.outcome {
            Outcome::Ok => ToolOutput::Ok(entry.result.content.clone()),
            _ => ToolOutput::Error(entry.result.content.clone()),
        })
    }
}

impl ToolHandler for Recorded {
    fn call<'a>(&'a self, call: Invocation<'a>, ctx: &'a ToolContext) -> ToolFuture<'a> {
        let out = self.answer(call, ctx.pid).unwrap_or_else(ToolOutput::Error);
        Box::pin(async move { out })
    }
}

/// Replays the finished process `pid` of `original`, whose images name
/// built-in tools only; see the module docs.
pub async fn replay(original: &Kernel, pid: Pid) -> Result<ReplayReport, ReplayError> {
    replay_with(original, pid, Registry::builtin()).await
}

/// Replays the finished process `pid` of `original`, whose images may name
/// the tools `registry` knows; its dynamic tools answer from the record.
pub async fn replay_with(original: &Kernel, pid: Pid, registry: &Registry) -> Result<ReplayReport, ReplayError> {
    let root = original.process(pid)?;
    if !root.state.is_terminal() {
        return Err(ReplayError::NotEnded { pid, state: root.state });
    }
    let originals = tree(original, pid)?;

    // 1. The world: images by their recorded specs, the root, its workspace.
    let mut catalog = ImageSet::default();
    let scratch = Kernel::in_memory()?;
    let mut transcripts = HashMap::new();
    for p in &originals {
        let info = original.process(*p)?;
        let (name, version, text) = original.image_spec(&info.image_digest)?;
        let image = Image::parse_with(&format!("{name}@{version}"), &text, registry)
            .map_err(|e| ReplayError::Image(e.to_string()))?;
        scratch.register_image(&name, &version, &text)?;
        catalog.insert(image);
        transcripts.insert(*p, original.transcript(*p, None)?.0);
    }
    let workspace = tempfile::Builder::new()
        .prefix("libos-replay-")
        .tempdir()
        .map_err(|e| ReplayError::Workspace(e.to_string()))?;
    let (mut files, mut bytes) = (0, 0);
    copy_dir(&root.workspace, workspace.path(), &mut files, &mut bytes)
        .map_err(|e| ReplayError::Workspace(format!("cannot copy the workspace {}: {e}", root.workspace.display())))?;
    let grants: Vec<GrantSpec> = original
        .caps(pid)?
        .into_iter()
        .filter(|(g, _)| g.created_at == root.created_at)
        .map(|(g, _)| g.as_spec(g.created_at))
        .collect();
    let spec = SpawnSpec {
        image: root.image_digest.clone(),
        goal: root.goal.clone(),
        workspace: workspace.path().to_path_buf(),
        parent: None,
        priority: root.priority,
        actor: Actor::operator(),
        budget: root.budget,
    };
    let replay_root = scratch.spawn_with_grants(&spec, &grants)?;

    // 2. Run on the recorded answers; 3. decide as the original's humans did.
    let model = Arc::new(ReplayModel::load(original, &originals, scratch.clone(), replay_root)?);
    let router = ModelRouter::default().with_override(model.clone());
    let policy = QuantumPolicy { backoff: Duration::ZERO, ..QuantumPolicy::default() };
    let recorded: Arc<dyn ToolHandler> =
        Arc::new(Recorded { transcripts, model: model.clone(), used: Mutex::default() });
    let mut replay_registry = Registry::builtin().clone();
    for entry in registry.entries() {
        if let Some(tool) = entry.dynamic() {
            replay_registry.register(tool.with_handler(recorded.clone()))?;
        }
    }
    for (name, tools) in registry.servers() {
        replay_registry.declare_server(name, tools.clone());
    }
    let env = quantum::env_with_registry(
        scratch.clone(),
        router,
        policy,
        catalog,
        quantum::default_sandbox(),
        replay_registry,
    );
    let env = quantum::with_recorded(env, recorded);
    let mut decided: HashMap<Pid, usize> = HashMap::new();
    for _ in 0..1_000 {
        let config = SchedulerConfig { until_idle: true, concurrency: 1, ..SchedulerConfig::default() };
        Scheduler::new(env.clone(), config).run(std::future::pending()).await?;
        let mut progressed = false;
        for req in scratch.pending()? {
            let original_pid = model.original_of(req.pid)?;
            let k = decided.entry(req.pid).or_default();
            let Some((verdict, by)) = decisions(original, original_pid)?.into_iter().nth(*k) else { continue };
            scratch.decide(req.id, &verdict, &by)?;
            *k += 1;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }

    // 4. Compare, process by process.
    let mut reverse: HashMap<Pid, Pid> = HashMap::new();
    for p in tree(&scratch, replay_root)? {
        if let Ok(o) = model.original_of(p) {
            reverse.insert(o, p);
        }
    }
    let mut processes = Vec::new();
    for o in originals {
        let info = original.process(o)?;
        let replayed = reverse.get(&o).copied();
        let (replay_calls, replay_end) = match replayed {
            Some(r) => (calls(&scratch, r)?, scratch.process(r)?.state.to_string()),
            None => (Vec::new(), "never spawned".to_string()),
        };
        processes.push(ProcessReplay {
            original: o,
            image: info.image.clone(),
            replay: replayed,
            original_calls: calls(original, o)?,
            replay_calls,
            original_end: info.state.to_string(),
            replay_end,
        });
    }
    Ok(ReplayReport { processes })
}
