//! A server's tool as libos shows it: name, description, input schema, and
//! the annotations, which are display information only (a server's word on
//! its own tool is never authority).

use serde_json::{Map, Value, json};

/// The hints a server gives about a tool (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// A title for people.
    pub title: Option<String>,
    /// `readOnlyHint`.
    pub read_only: Option<bool>,
    /// `destructiveHint`.
    pub destructive: Option<bool>,
    /// `idempotentHint`.
    pub idempotent: Option<bool>,
    /// `openWorldHint`.
    pub open_world: Option<bool>,
}

impl Annotations {
    /// The hints that are set, as `readOnly`, `destructive=false`, ...
    pub fn hints(&self) -> Vec<String> {
        [
            ("readOnly", self.read_only),
            ("destructive", self.destructive),
            ("idempotent", self.idempotent),
            ("openWorld", self.open_world),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| if v { name.to_string() } else { format!("{name}=false") }))
        .collect()
    }
}

/// One tool of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// Its name on the server.
    pub name: String,
    /// Its title (the tool's own, else its annotations').
    pub title: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// The JSON schema of its arguments (an object schema).
    pub input_schema: Map<String, Value>,
    /// The JSON schema of its structured result, if it declares one.
    pub output_schema: Option<Map<String, Value>>,
    /// Its hints.
    pub annotations: Annotations,
}

impl ToolInfo {
    pub(crate) fn from_wire(t: rmcp::model::Tool) -> ToolInfo {
        let annotations = t
            .annotations
            .map(|a| Annotations {
                title: a.title,
                read_only: a.read_only_hint,
                destructive: a.destructive_hint,
                idempotent: a.idempotent_hint,
                open_world: a.open_world_hint,
            })
            .unwrap_or_default();
        ToolInfo {
            name: t.name.into_owned(),
            title: t.title.or_else(|| annotations.title.clone()),
            description: t.description.map(|d| d.into_owned()),
            input_schema: (*t.input_schema).clone(),
            output_schema: t.output_schema.map(|s| (*s).clone()),
            annotations,
        }
    }

    /// The tool in MCP's own JSON shape (`inputSchema`, `annotations` with
    /// `readOnlyHint`...), for scripts.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        if let Some(t) = &self.title {
            out.insert("title".into(), json!(t));
        }
        if let Some(d) = &self.description {
            out.insert("description".into(), json!(d));
        }
        out.insert("inputSchema".into(), Value::Object(self.input_schema.clone()));
        if let Some(s) = &self.output_schema {
            out.insert("outputSchema".into(), Value::Object(s.clone()));
        }
        let a = &self.annotations;
        let mut ann = Map::new();
        for (k, v) in [
            ("readOnlyHint", a.read_only),
            ("destructiveHint", a.destructive),
            ("idempotentHint", a.idempotent),
            ("openWorldHint", a.open_world),
        ] {
            if let Some(v) = v {
                ann.insert(k.into(), json!(v));
            }
        }
        if let Some(t) = &a.title {
            ann.insert("title".into(), json!(t));
        }
        if !ann.is_empty() {
            out.insert("annotations".into(), Value::Object(ann));
        }
        Value::Object(out)
    }
}
