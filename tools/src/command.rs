//! Operator-defined command tools: `[tools.NAME]` in `libos.toml`.
//!
//! ```toml
//! [tools.word_count]
//! description = "Count the words of a workspace file"
//! argv = ["wc", "-w", "--", "{path}"]
//! schema = { type = "object", properties = { path = { type = "string" } }, required = ["path"] }
//! timeout_s = 10
//! ```
//!
//! A call needs `exec tool:NAME` and nothing else: the operator who wrote
//! the entry vouches for its program, as an image's grants vouch for
//! `shell:PROGRAM`. Its arguments are validated against `schema` (the
//! registry does that, before anything runs); then each argv element that
//! is exactly a placeholder `{arg}` becomes that argument: a string as it
//! is, a number or boolean as JSON writes it, an array as one element per
//! item; an absent or null argument drops the element. Never a shell
//! string: there is no shell, and a placeholder is always whole elements.
//! A value that starts with `-` is refused unless a literal `--` comes
//! before its placeholder (so a model cannot turn a file name into an
//! option); NUL bytes are refused. The program then runs exactly as
//! `shell` runs one: in the sandbox, in the workspace, bounded.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use libos_core::caps::{Resource, ResourceKind, Right};
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::shell::{MAX_TIMEOUT_S, run_program};
use crate::dispatch::{ToolContext, ToolOutput};
use crate::dynamic::{DynamicTool, Invocation, ToolFuture, ToolHandler};
use crate::registry::ToolName;

/// Default time limit of a command tool's program.
pub const DEFAULT_TIMEOUT_S: u64 = 30;

/// A `[tools.NAME]` entry as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// What the tool does, for the model.
    pub description: String,
    /// The program and its arguments; elements `{arg}` are placeholders.
    pub argv: Vec<String>,
    /// JSON schema of the arguments (an object schema); default: no arguments.
    #[serde(default)]
    pub schema: Option<Value>,
    /// Seconds before the program is killed (default 30, at most 600).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// One argv element of a command tool.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A placeholder, and whether a literal `--` comes before it.
    Arg {
        name: String,
        after_dashes: bool,
    },
}

/// Makes the registry entry for `[tools.NAME]`; the error says what is
/// wrong with the entry (the caller prefixes `tools.NAME`).
pub fn command_tool(name: &str, spec: &CommandSpec) -> Result<DynamicTool, String> {
    let tool_name = ToolName::new(name).map_err(|e| e.to_string())?;
    let timeout_s = spec.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if timeout_s == 0 || timeout_s > MAX_TIMEOUT_S {
        return Err(format!("timeout_s must be between 1 and {MAX_TIMEOUT_S}"));
    }
    let schema = spec
        .schema
        .clone()
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}, "additionalProperties": false}));
    let declared: BTreeSet<String> =
        schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let parts = parse_argv(&spec.argv, &declared)?;
    let handler = Arc::new(CommandHandler { parts, timeout: Duration::from_secs(timeout_s) });
    let needs = vec![(Resource::new(ResourceKind::Tool, name), Right::Exec)];
    DynamicTool::new(tool_name, format!("tools.{name}"), spec.description.clone(), schema, needs, handler)
        .map_err(|e| e.to_string())
}

fn placeholder(element: &str) -> Option<&str> {
    let inner = element.strip_prefix('{')?.strip_suffix('}')?;
    let ok = !inner.is_empty()
        && inner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !inner.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some(inner)
}

fn parse_argv(argv: &[String], declared: &BTreeSet<String>) -> Result<Vec<Part>, String> {
    let Some(program) = argv.first() else {
        return Err("argv is empty: give the program and its arguments".to_string());
    };
    if program.is_empty() || placeholder(program).is_some() {
        return Err("argv[0] must be the program (a name on PATH or an absolute path), not a placeholder".to_string());
    }
    if !program.starts_with('/') && program.contains('/') {
        return Err(format!("argv[0] `{program}` must be a name found on PATH or an absolute path"));
    }
    let mut after_dashes = false;
    let mut parts = Vec::with_capacity(argv.len());
    for element in argv {
        if element.contains('\0') {
            return Err("an argv element contains a NUL byte".to_string());
        }
        if let Some(name) = placeholder(element) {
            if !declared.contains(name) {
                return Err(format!("argv names `{{{name}}}`, which the schema's properties do not declare"));
            }
            parts.push(Part::Arg { name: name.to_string(), after_dashes });
            continue;
        }
        if element.contains('{') && element.contains('}') && element.len() > 2 {
            return Err(format!(
                "argv element `{element}` mixes text and a placeholder: a placeholder is a whole element (`{{arg}}`)"
            ));
        }
        after_dashes |= element == "--";
        parts.push(Part::Literal(element.clone()));
    }
    Ok(parts)
}

struct CommandHandler {
    parts: Vec<Part>,
    timeout: Duration,
}

impl CommandHandler {
    /// The argv for one call, or the model-visible reason it cannot be built.
    fn argv(&self, args: &serde_json::Map<String, Value>) -> Result<Vec<String>, String> {
        let mut out = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let (name, after_dashes) = match part {
                Part::Literal(text) => {
                    out.push(text.clone());
                    continue;
                }
                Part::Arg { name, after_dashes } => (name, *after_dashes),
            };
            let values: Vec<&Value> = match args.get(name) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v) => vec![v],
            };
            for v in values {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    Value::Array(_) | Value::Object(_) => {
                        return Err(format!(
                            "argument `{name}` holds a nested value: each argument becomes argv elements"
                        ));
                    }
                };
                if text.contains('\0') {
                    return Err(format!("argument `{name}` contains a NUL byte"));
                }
                if text.starts_with('-') && !after_dashes {
                    return Err(format!(
                        "argument `{name}` starts with `-`, which the program would read as an option"
                    ));
                }
                out.push(text);
            }
        }
        Ok(out)
    }
}

impl ToolHandler for CommandHandler {
    fn call<'a>(&'a self, call: Invocation<'a>, ctx: &'a ToolContext) -> ToolFuture<'a> {
        Box::pin(async move {
            let argv = match self.argv(call.args) {
                Ok(a) => a,
                Err(e) => return ToolOutput::Error(e),
            };
            let ctx = ctx.clone();
            let timeout = self.timeout;
            // The program may run for its whole time limit: off the async workers.
            tokio::task::spawn_blocking(move || run_program(&argv, timeout, &ctx))
                .await
                .unwrap_or_else(|e| ToolOutput::Error(format!("the tool stopped: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str], props: &[&str]) -> CommandSpec {
        let properties: serde_json::Map<String, Value> =
            props.iter().map(|p| (p.to_string(), serde_json::json!({}))).collect();
        CommandSpec {
            description: "d".to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            schema: Some(serde_json::json!({"type": "object", "properties": properties})),
            timeout_s: None,
        }
    }

    fn handler(argv: &[&str], props: &[&str]) -> CommandHandler {
        let s = spec(argv, props);
        let declared = props.iter().map(|p| p.to_string()).collect();
        CommandHandler { parts: parse_argv(&s.argv, &declared).unwrap(), timeout: Duration::from_secs(1) }
    }

    #[test]
    fn placeholders_become_whole_elements() {
        let h = handler(&["grep", "-n", "--", "{pattern}", "{files}", "{opt}"], &["pattern", "files", "opt"]);
        let args = serde_json::json!({"pattern": "a b; rm -rf /", "files": ["x.txt", "-y.txt", 3, true]});
        assert_eq!(
            h.argv(args.as_object().unwrap()),
            Ok(vec!["grep", "-n", "--", "a b; rm -rf /", "x.txt", "-y.txt", "3", "true"]
                .into_iter()
                .map(String::from)
                .collect())
        );
    }

    #[test]
    fn a_value_that_looks_like_an_option_needs_a_double_dash_before_it() {
        let h = handler(&["wc", "-w", "{path}"], &["path"]);
        let args = serde_json::json!({"path": "--files0-from=/etc/passwd"});
        assert_eq!(
            h.argv(args.as_object().unwrap()),
            Err("argument `path` starts with `-`, which the program would read as an option".to_string())
        );
        let nested = serde_json::json!({"path": {"a": 1}});
        assert!(h.argv(nested.as_object().unwrap()).is_err());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let errors: Vec<String> = [
            spec(&[], &[]),
            spec(&["{p}"], &["p"]),
            spec(&["bin/tool"], &[]),
            spec(&["echo", "{missing}"], &[]),
            spec(&["echo", "--name={p}"], &["p"]),
            CommandSpec { timeout_s: Some(0), ..spec(&["true"], &[]) },
            CommandSpec { schema: Some(serde_json::json!({"type": "string"})), ..spec(&["true"], &[]) },
        ]
        .iter()
        .map(|s| command_tool("t", s).unwrap_err())
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }
}
