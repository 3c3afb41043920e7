//! A model that answers from a recorded run.
//!
//! Each process of the replay is mapped to the process of the original run
//! it re-executes (the root to the root; the k-th child of a mapped parent
//! to the k-th child of its original); its n-th model call gets the
//! original's n-th recorded answer: the same message, the same reported
//! usage, or the same failure.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use libos_kernel::{Kernel, KernelError, ModelCallOutcome, ModelCallRow, Pid};

use super::http::parse_message;
use super::responses::read_items;
use super::{ChatModel, ChatRequest, ChatResponse, ModelError, ReportedUsage};

/// Why a replay process's original, or its recorded answer, could not be found.
#[derive(Debug, thiserror::Error)]
pub enum Unmapped {
    /// A store failed (the original's or the replay's).
    #[error(transparent)]
    Store(#[from] KernelError),
    /// The replay went where the original did not (more children, more calls).
    #[error("{0}")]
    Diverged(String),
}

impl From<Unmapped> for ModelError {
    /// A store that failed for now is a model call to try again later (the
    /// quantum backs off and the process runs on); anything else ends it.
    fn from(e: Unmapped) -> ModelError {
        match e {
            Unmapped::Store(e) if e.is_transient() => {
                ModelError::Transient { message: e.to_string(), attempts: 1, retry_after: None, info: Box::default() }
            }
            e => ModelError::Fatal(e.to_string()),
        }
    }
}

/// Answers from `original`'s recorded model calls, all read when it is
/// made: a replay never waits on the original's store, nor fails a
/// replayed process because that store failed for a moment.
pub struct ReplayModel {
    replay: Kernel,
    /// Replay pid -> original pid, seeded with the roots.
    map: Mutex<HashMap<Pid, Pid>>,
    /// The original processes' children, in spawn order.
    children: HashMap<Pid, Vec<Pid>>,
    /// The original processes' model calls (attempts left out), in order.
    calls: HashMap<Pid, Vec<ModelCallRow>>,
}

impl ReplayModel {
    /// Replays `original_root` (in `original`) as `replay_root` (in
    /// `replay`); `tree` is the original root and its descendants, whose
    /// records it reads now.
    pub fn load(original: &Kernel, tree: &[Pid], replay: Kernel, replay_root: Pid) -> Result<ReplayModel, KernelError> {
        let mut children = HashMap::new();
        let mut calls = HashMap::new();
        for &pid in tree {
            children.insert(pid, original.children(pid)?);
            // Attempts the client retried, and prompts the server found
            // too large, were recorded but are not calls of the process.
            let rows = original.model_calls(pid)?;
            calls.insert(pid, rows.into_iter().filter(|r| !crate::quantum::is_attempt(&r.record)).collect());
        }
        let map = tree.first().map(|&root| (replay_root, root)).into_iter().collect();
        Ok(ReplayModel { replay, map: Mutex::new(map), children, calls })
    }

    /// The original process a replay process re-executes.
    pub fn original_of(&self, pid: Pid) -> Result<Pid, Unmapped> {
        if let Some(o) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&pid) {
            return Ok(*o);
        }
        let p = self.replay.process(pid)?;
        let diverged = Unmapped::Diverged;
        let parent = p.ppid.ok_or_else(|| diverged(format!("replay process {pid} maps to no original process")))?;
        let k = self
            .replay
            .children(parent)?
            .iter()
            .position(|c| *c == pid)
            .ok_or_else(|| diverged(format!("replay process {pid} is not among its parent's children")))?;
        let original_parent = self.original_of(parent)?;
        let siblings = self.children.get(&original_parent).map_or(&[][..], Vec::as_slice);
        let original = *siblings.get(k).ok_or_else(|| {
            diverged(format!(
                "the original process {original_parent} had no child #{} (the replay spawned more)",
                k + 1
            ))
        })?;
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, original);
        Ok(original)
    }
}

#[async_trait]
impl ChatModel for ReplayModel {
    fn profile(&self) -> &str {
        "replay"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let original = self.original_of(request.meta.pid)?;
        let index = request.meta.call_index as usize;
        let Some(row) = self.calls.get(&original).and_then(|rows| rows.get(index)).cloned() else {
            return Err(ModelError::Fatal(format!(
                "replay: the original process {original} made no model call #{} here",
                index + 1
            )));
        };
        let r = row.record;
        if r.outcome == ModelCallOutcome::Error {
            let message = r.error.unwrap_or(r.response);
            return Err(ModelError::Transient { message, attempts: 1, retry_after: None, info: Box::default() });
        }
        let message: serde_json::Value = serde_json::from_str(&r.response).map_err(|e| {
            ModelError::Fatal(format!("replay: recorded answer #{} of process {original} is not JSON: {e}", index + 1))
        })?;
        // A Chat Completions message, or the blocks (Messages) or output
        // items (Responses) of the other protocols.
        let (content, tool_calls) = match &message {
            serde_json::Value::Array(items) => read_items(items),
            _ => parse_message(message).map_err(ModelError::Fatal)?,
        };
        Ok(ChatResponse {
            model: r.model,
            content,
            tool_calls,
            usage: (!r.usage.estimated).then_some(ReportedUsage {
                input: r.usage.input,
                output: r.usage.output,
                ..ReportedUsage::default()
            }),
            raw: r.response,
            carry: None,
            info: Default::default(),
        })
    }
}
