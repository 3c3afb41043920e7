//! A model that plays a script of tool calls.
//!
//! A script is TOML: a list of `[[agent]]` entries, each matching processes by
//! image (and optionally by a substring of the goal), each with a list of
//! steps. A process plays the first agent that matches it, one step per model
//! call, in order; the step is chosen by how many model calls the process has
//! made so far (a durable count), so a script picks up where it left off after
//! a restart. A step is one of:
//!
//! ```toml
//! [[agent]]
//! image = "assistant"
//! goal_contains = "notes"        # optional
//!
//! [[agent.step]]                 # a tool call, with optional rationale text
//! say = "Look first."
//! tool = "list_dir"
//! args = { path = "." }
//!
//! [[agent.step]]                 # arguments exactly as given (e.g. broken JSON)
//! tool = "write_file"
//! raw_args = "{not json"
//!
//! [[agent.step]]                 # text only, no native tool call
//! text = "{\"tool\": \"exit\", \"args\": {\"result\": \"done\"}}"
//!
//! [[agent.step]]                 # several calls at once
//! calls = [{ tool = "now" }, { tool = "now" }]
//!
//! [[agent.step]]                 # any step may take time, like a real model
//! tool = "now"
//! delay_ms = 250
//! ```
//!
//! Scripted calls report no usage, so their tokens are estimated (and marked so).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{ChatModel, ChatRequest, ChatResponse, ModelError, RawToolCall};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    #[serde(default)]
    agent: Vec<AgentToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentToml {
    image: String,
    #[serde(default)]
    goal_contains: Option<String>,
    #[serde(default)]
    step: Vec<StepToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepToml {
    #[serde(default)]
    say: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    args: Option<toml::Table>,
    #[serde(default)]
    raw_args: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    calls: Option<Vec<CallToml>>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallToml {
    tool: String,
    #[serde(default)]
    args: Option<toml::Table>,
}

/// One scripted model turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Text content of the turn (a rationale, or the whole answer).
    pub text: Option<String>,
    /// Native tool calls: (name, arguments JSON text).
    pub calls: Vec<(String, String)>,
    /// How long the model "thinks" before answering.
    pub delay: Option<std::time::Duration>,
}

/// The steps played by processes that match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Image name matched.
    pub image: String,
    /// Optional goal substring matched.
    pub goal_contains: Option<String>,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Where it came from (for errors).
    pub origin: String,
    /// Agents, first match wins.
    pub agents: Vec<Agent>,
}

fn args_json(args: Option<toml::Table>) -> Result<String, String> {
    let table = args.unwrap_or_default();
    serde_json::to_value(&table).map(|v| v.to_string()).map_err(|e| e.to_string())
}

impl Script {
    /// Parses a script; errors name the origin, agent and step.
    pub fn parse(origin: &str, text: &str) -> Result<Script, String> {
        let file: ScriptFile =
            toml::from_str(text).map_err(|e| format!("script {origin}: {}", e.message().trim().replace('\n', " ")))?;
        let mut agents = Vec::new();
        for (a, agent) in file.agent.into_iter().enumerate() {
            let mut steps = Vec::new();
            for (s, step) in agent.step.into_iter().enumerate() {
                let err = |m: &str| format!("script {origin}: agent[{a}].step[{s}]: {m}");
                let kinds = [step.tool.is_some(), step.text.is_some(), step.calls.is_some()];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    return Err(err("give exactly one of `tool`, `text` or `calls`"));
                }
                if step.args.is_some() && step.raw_args.is_some() {
                    return Err(err("give `args` or `raw_args`, not both"));
                }
                let delay = step.delay_ms.map(std::time::Duration::from_millis);
                let step = if let Some(tool) = step.tool {
                    let args = match step.raw_args {
                        Some(raw) => raw,
                        None => args_json(step.args).map_err(|e| err(&e))?,
                    };
                    Step { text: step.say, calls: vec![(tool, args)], delay }
                } else if let Some(text) = step.text {
                    Step { text: Some(text), calls: Vec::new(), delay }
                } else {
                    let calls = step
                        .calls
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| Ok((c.tool, args_json(c.args)?)))
                        .collect::<Result<Vec<_>, String>>()
                        .map_err(|e| err(&e))?;
                    Step { text: step.say, calls, delay }
                };
                steps.push(step);
            }
            agents.push(Agent { image: agent.image, goal_contains: agent.goal_contains, steps });
        }
        Ok(Script { origin: origin.to_string(), agents })
    }

    /// Reads and parses a script file.
    pub fn load(path: &std::path::Path) -> Result<Script, String> {
        // A regular file only: a FIFO or a device is an error, not a hang.
        let text = libos_images::read_text(path).map_err(|e| format!("script {}: {e}", path.display()))?;
        Script::parse(&path.display().to_string(), &text)
    }

    fn agent_for(&self, image: &str, goal: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.image == image && a.goal_contains.as_deref().is_none_or(|g| goal.contains(g)))
    }
}

/// A chat model that plays a [`Script`].
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    profile: String,
    script: Script,
}

impl ScriptedModel {
    /// A scripted model under a profile name.
    pub fn new(profile: &str, script: Script) -> ScriptedModel {
        ScriptedModel { profile: profile.to_string(), script }
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    fn profile(&self) -> &str {
        &self.profile
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let meta = &request.meta;
        let agent = self.script.agent_for(&meta.image, &meta.goal).ok_or_else(|| {
            ModelError::Fatal(format!(
                "script {}: no agent plays image `{}` with this goal",
                self.script.origin, meta.image
            ))
        })?;
        let index = meta.call_index as usize;
        let step = agent.steps.get(index).ok_or_else(|| {
            ModelError::Fatal(format!(
                "script {}: the `{}` agent has {} steps and pid {} asked for step {}",
                self.script.origin,
                agent.image,
                agent.steps.len(),
                meta.pid,
                index + 1
            ))
        })?;
        if let Some(delay) = step.delay {
            tokio::time::sleep(delay).await;
        }
        let tool_calls: Vec<RawToolCall> = step
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| RawToolCall {
                id: format!("call_{}_{}_{}", meta.pid, index + 1, i),
                name: name.clone(),
                arguments: arguments.clone(),
            })
            .collect();
        let raw = json!({
            "role": "assistant",
            "content": step.text,
            "tool_calls": tool_calls.iter().map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})).collect::<Vec<_>>(),
        })
        .to_string();
        Ok(ChatResponse {
            model: "scripted".to_string(),
            content: step.text.clone(),
            tool_calls,
            usage: None,
            raw,
            carry: None,
            info: Default::default(),
        })
    }
}
