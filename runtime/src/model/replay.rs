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
use libos_kernel::{Kernel, ModelCallOutcome, ModelCallRow, Pid};

use super::http::parse_message;
use super::responses::read_items;
use super::{ChatModel, ChatRequest, ChatResponse, ModelError, ReportedUsage};

/// Answers from `original`'s recorded model calls.
pub struct ReplayModel {
    original: Kernel,
    replay: Kernel,
    /// Replay pid -> original pid, seeded with the roots.
    map: Mutex<HashMap<Pid, Pid>>,
    calls: Mutex<HashMap<Pid, Vec<ModelCallRow>>>,
}

impl ReplayModel {
    /// Replays `original_root` (in `original`) as `replay_root` (in `replay`).
    pub fn new(original: Kernel, original_root: Pid, replay: Kernel, replay_root: Pid) -> ReplayModel {
        ReplayModel {
            original,
            replay,
            map: Mutex::new(HashMap::from([(replay_root, original_root)])),
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// The original process a replay process re-executes.
    pub fn original_of(&self, pid: Pid) -> Result<Pid, String> {
        if let Some(o) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&pid) {
            return Ok(*o);
        }
        let p = self.replay.process(pid).map_err(|e| e.to_string())?;
        let parent = p.ppid.ok_or_else(|| format!("replay process {pid} maps to no original process"))?;
        let k = self
            .replay
            .children(parent)
            .map_err(|e| e.to_string())?
            .iter()
            .position(|c| *c == pid)
            .ok_or_else(|| format!("replay process {pid} is not among its parent's children"))?;
        let original_parent = self.original_of(parent)?;
        let siblings = self.original.children(original_parent).map_err(|e| e.to_string())?;
        let original = *siblings.get(k).ok_or_else(|| {
            format!("the original process {original_parent} had no child #{} (the replay spawned more)", k + 1)
        })?;
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, original);
        Ok(original)
    }

    fn recorded(&self, original: Pid, index: usize) -> Result<Option<ModelCallRow>, String> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let rows = match calls.entry(original) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                // Attempts the client retried, and prompts the server found
                // too large, were recorded but are not calls of the process.
                let rows = self.original.model_calls(original).map_err(|e| e.to_string())?;
                e.insert(rows.into_iter().filter(|r| !crate::quantum::is_attempt(&r.record)).collect())
            }
        };
        Ok(rows.get(index).cloned())
    }
}

#[async_trait]
impl ChatModel for ReplayModel {
    fn profile(&self) -> &str {
        "replay"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let original = self.original_of(request.meta.pid).map_err(ModelError::Fatal)?;
        let index = request.meta.call_index as usize;
        let Some(row) = self.recorded(original, index).map_err(ModelError::Fatal)? else {
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
