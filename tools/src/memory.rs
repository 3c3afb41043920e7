//! Memory tools: `memory_write`, `memory_read`, `memory_list`,
//! `memory_share`, `memory_pin`, `memory_unpin`. Kernel calls: they commit
//! with the quantum. A process writes only its own namespace; what it may
//! read or share of other objects is what its view's handles allow.

use libos_kernel::ObjectId;
use libos_kernel::caps::Rights;
use libos_kernel::syscall::ObjectRef;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::spec::ToolSpec;

/// Arguments of `memory_write`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryWriteArgs {
    /// The object's name in your namespace.
    pub name: String,
    /// Its content.
    pub content: String,
    /// A kind such as `text`, `json`, `note` (default `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An object by name or id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ObjectArg {
    /// An oid.
    Oid(i64),
    /// A name in your namespace.
    Name(String),
}

/// Arguments of `memory_read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryReadArgs {
    /// A name in your namespace, or an object id from your view.
    pub object: ObjectArg,
}

impl MemoryReadArgs {
    /// The typed reference.
    pub fn target(&self) -> Result<ObjectRef, String> {
        match &self.object {
            ObjectArg::Oid(n) => oid(*n).map(ObjectRef::Oid),
            ObjectArg::Name(name) => Ok(ObjectRef::Name(name.clone())),
        }
    }
}

/// Arguments of `memory_list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryListArgs {
    /// Only this namespace of your view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Arguments of `memory_share`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryShareArgs {
    /// The object id.
    pub oid: i64,
    /// One of your children.
    pub pid: i64,
    /// `read` or `read,write` (at most what you hold).
    pub rights: String,
}

impl MemoryShareArgs {
    /// The typed rights (only read and write mean anything on an object).
    pub fn rights(&self) -> Result<Rights, String> {
        let r = Rights::parse(&self.rights)?;
        if !Rights::parse("read,write").unwrap_or_default().is_superset(r) {
            return Err(format!("objects take read and write rights, not `{}`", self.rights));
        }
        Ok(r)
    }
}

/// Arguments of `memory_pin` and `memory_unpin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPinArgs {
    /// The object id.
    pub oid: i64,
}

/// An object id from the model.
pub fn oid(n: i64) -> Result<ObjectId, String> {
    n.to_string().parse()
}

pub(crate) fn write_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_write",
        description: "Create or update an object in your private memory namespace (durable across restarts).",
        parameters: json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "content": {"type": "string"},
                "kind": {"type": "string", "description": "e.g. text, json, note (default text)"}
            },
            "required": ["name", "content"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn read_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_read",
        description: "Read an object: a name in your namespace, or an object id from your view.",
        parameters: json!({
            "type": "object",
            "properties": {"object": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
            "required": ["object"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn list_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_list",
        description: "List the objects in your view (ids, names, sizes, rights, pins).",
        parameters: json!({
            "type": "object",
            "properties": {"namespace": {"type": "string"}},
            "additionalProperties": false
        }),
    }
}

pub(crate) fn share_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_share",
        description: "Give one of your children a handle on an object, with at most the rights you hold.",
        parameters: json!({
            "type": "object",
            "properties": {
                "oid": {"type": "integer"},
                "pid": {"type": "integer"},
                "rights": {"type": "string", "enum": ["read", "read,write"]}
            },
            "required": ["oid", "pid", "rights"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn pin_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_pin",
        description: "Pin an object of your view: its content is shown in every prompt (within your token budget).",
        parameters: json!({
            "type": "object",
            "properties": {"oid": {"type": "integer"}},
            "required": ["oid"],
            "additionalProperties": false
        }),
    }
}

pub(crate) fn unpin_spec() -> ToolSpec {
    ToolSpec {
        name: "memory_unpin",
        description: "Stop showing a pinned object in your prompt.",
        parameters: json!({
            "type": "object",
            "properties": {"oid": {"type": "integer"}},
            "required": ["oid"],
            "additionalProperties": false
        }),
    }
}
