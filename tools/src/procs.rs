//! Process tools: `spawn(image, goal, grants)`, `wait(pid | "any")`,
//! `children()`, `signal(pid, action)`. Kernel calls: they commit with the
//! quantum. Spawn names an image the runtime resolves; the grants it asks
//! for are attenuated by the kernel against the caller's delegable grants.

use libos_kernel::budget::Budget;
use libos_kernel::caps::{Effect, GrantSpec, ResourcePattern, Rights};
use libos_kernel::syscall::SignalAction;
use libos_kernel::{Pid, time::parse_duration};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::spec::ToolSpec;

/// A grant in a `spawn` call: the string form or an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GrantArg {
    /// `"read fs:data/** delegable uses=3"`.
    Text(String),
    /// `{resource, rights, effect, delegable, uses, expires}`.
    Object(GrantObject),
}

/// The object form of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantObject {
    /// `fs:src/**`, `image:worker`, ...
    pub resource: String,
    /// `read,write` or a list.
    pub rights: RightsArg,
    /// `allow` (default), `ask` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// Whether the child may delegate it further.
    #[serde(default)]
    pub delegable: bool,
    /// A use count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// A lifetime such as `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// Rights as `"read,write"` or `["read", "write"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RightsArg {
    /// Comma-separated.
    Text(String),
    /// A list.
    List(Vec<String>),
}

impl GrantArg {
    /// The grant as a typed spec, or why it is not one.
    pub fn to_spec(&self) -> Result<GrantSpec, String> {
        match self {
            GrantArg::Text(t) => GrantSpec::parse(t),
            GrantArg::Object(o) => {
                let rights = match &o.rights {
                    RightsArg::Text(t) => Rights::parse(t)?,
                    RightsArg::List(l) => Rights::parse(&l.join(","))?,
                };
                let mut spec = GrantSpec::allow(rights, ResourcePattern::parse(&o.resource)?);
                if let Some(e) = &o.effect {
                    spec.effect = Effect::parse(e)?;
                }
                spec.delegable = o.delegable;
                spec.uses = o.uses;
                spec.expires = o.expires.as_deref().map(parse_duration).transpose()?;
                Ok(spec)
            }
        }
    }
}

/// Arguments of `spawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnArgs {
    /// The image's name.
    pub image: String,
    /// The child's goal.
    pub goal: String,
    /// Grants asked for the child.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantArg>,
    /// Limits for the child, e.g. `quanta=10,tool_calls=10` (within its
    /// image's budget and what the parent has left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

impl SpawnArgs {
    /// The budget asked for, if any.
    pub fn budget(&self) -> Result<Option<Budget>, String> {
        self.budget.as_deref().map(|b| Budget::parse([b])).transpose()
    }
}

/// `wait` takes a pid or `"any"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WaitTarget {
    /// One child.
    Pid(i64),
    /// `"any"`.
    Any(String),
}

/// Arguments of `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// A child's pid, or `"any"`.
    pub pid: WaitTarget,
}

impl WaitArgs {
    /// The child waited for; `None` for any.
    pub fn target(&self) -> Result<Option<Pid>, String> {
        match &self.pid {
            WaitTarget::Pid(n) if *n > 0 => Ok(Some(Pid(*n))),
            WaitTarget::Any(s) if s == "any" => Ok(None),
            WaitTarget::Any(s) => {
                s.parse::<Pid>().map(Some).map_err(|_| format!("pid must be a child's pid or \"any\", not `{s}`"))
            }
            WaitTarget::Pid(n) => Err(format!("pid must be positive, not {n}")),
        }
    }
}

/// Arguments of `children`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildrenArgs {}

/// Arguments of `signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalArgs {
    /// The target.
    pub pid: i64,
    /// `pause`, `resume` or `kill`.
    pub action: String,
}

impl SignalArgs {
    /// The typed action.
    pub fn action(&self) -> Result<SignalAction, String> {
        match self.action.as_str() {
            "pause" => Ok(SignalAction::Pause),
            "resume" => Ok(SignalAction::Resume),
            "kill" => Ok(SignalAction::Kill),
            other => Err(format!("unknown action `{other}` (actions are pause, resume, kill)")),
        }
    }
}

pub(crate) fn spawn_spec() -> ToolSpec {
    ToolSpec {
        name: "spawn",
        description: "Start a child process from an image with a goal. Grants you ask for are kept only where a \
                      delegable grant of yours covers them; the result says which were kept and which dropped. \
                      Returns the child's pid.",
        parameters: json!({
            "type": "object",
            "properties": {
                "image": {"type": "string", "description": "Image name, e.g. `worker`."},
                "goal": {"type": "string", "description": "What the child should do."},
                "budget": {"type": "string", "description": "Limits for the child, e.g. \"quanta=10,tool_calls=10\"; carved out of yours."},
                "grants": {
                    "type": "array",
                    "description": "Grants for the child, e.g. \"read fs:data/**\".",
                    "items": {"anyOf": [
                        {"type": "string"},
                        {"type": "object", "properties": {
                            "resource": {"type": "string"},
                            "rights": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                            "effect": {"type": "string", "enum": ["allow", "ask", "deny"]},
                            "delegable": {"type": "boolean"},
                            "uses": {"type": "integer", "minimum": 1},
                            "expires": {"type": "string"}
                        }, "required": ["resource", "rights"], "additionalProperties": false}
                    ]}
                }
            },
            "required": ["image", "goal"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn wait_spec() -> ToolSpec {
    ToolSpec {
        name: "wait",
        description: "Wait until one of your children (or any, with \"any\") ends; returns its exit status and \
                      result. You are parked, at no cost, until then.",
        parameters: json!({
            "type": "object",
            "properties": {"pid": {"anyOf": [{"type": "integer"}, {"type": "string", "enum": ["any"]}]}},
            "required": ["pid"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn children_spec() -> ToolSpec {
    ToolSpec {
        name: "children",
        description: "List your children with their states.",
        parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
    }
}

pub(crate) fn signal_spec() -> ToolSpec {
    ToolSpec {
        name: "signal",
        description: "Pause, resume or kill one of your children.",
        parameters: json!({
            "type": "object",
            "properties": {
                "pid": {"type": "integer"},
                "action": {"type": "string", "enum": ["pause", "resume", "kill"]}
            },
            "required": ["pid", "action"],
            "additionalProperties": false
        }),
    }
}
