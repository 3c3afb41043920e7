//! The registry: built-in schemas are generated from the types that parse
//! them and agree with them; dynamic tools are validated against their
//! source's schema before anything runs.

use std::sync::Arc;

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_tools::{
    DynamicTool, Invocation, Registry, RegistryError, ToolAnnotations, ToolCall, ToolContext, ToolFuture, ToolHandler,
    ToolName, ToolOutput, ToolSet,
};
use pretty_assertions::assert_eq;
use serde_json::json;

/// Examples per built-in: calls valid under its schema (which must parse)
/// and calls invalid under it (which the parser must reject too).
fn examples(tool: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    match tool {
        "exit" => {
            (vec![json!({"result": "done"})], vec![json!({}), json!({"result": 1}), json!({"result": "a", "x": 1})])
        }
        "now" => (vec![json!({})], vec![json!({"at": "utc"})]),
        "read_file" | "list_dir" | "delete_file" => {
            (vec![json!({"path": "a.txt"})], vec![json!({}), json!({"path": ["a"]}), json!({"path": "a", "mode": "r"})])
        }
        "write_file" => {
            (vec![json!({"path": "a", "content": ""})], vec![json!({"path": "a"}), json!({"path": "a", "content": 3})])
        }
        "spawn" => (
            vec![
                json!({"image": "worker", "goal": "count"}),
                json!({"image": "worker", "goal": "g", "budget": "quanta=3", "grants": [
                    "read fs:data/**",
                    {"resource": "fs:out/**", "rights": ["write"], "effect": "ask", "uses": 2, "expires": "10m"},
                    {"resource": "image:worker", "rights": "read", "delegable": true}
                ]}),
            ],
            vec![
                json!({"image": "worker"}),
                json!({"image": "worker", "goal": "g", "grants": [{"resource": "fs:x", "rights": "read", "effect": "maybe"}]}),
                json!({"image": "worker", "goal": "g", "grants": [{"resource": "fs:x", "rights": "read", "uses": 0}]}),
                json!({"image": "worker", "goal": "g", "grants": [{"rights": "read"}]}),
                json!({"image": "worker", "goal": "g", "grants": [7]}),
            ],
        ),
        "wait" => {
            (vec![json!({"pid": 3}), json!({"pid": "any"})], vec![json!({"pid": 0}), json!({"pid": "all"}), json!({})])
        }
        "children" => (vec![json!({})], vec![json!({"pid": 1})]),
        "signal" => (
            vec![json!({"pid": 2, "action": "pause"}), json!({"pid": 2, "action": "kill"})],
            vec![json!({"pid": 2, "action": "stop"}), json!({"pid": -1, "action": "kill"}), json!({"pid": 2})],
        ),
        "send" => (
            vec![
                json!({"to": "parent", "body": "hi"}),
                json!({"to": 4, "body": "x", "kind": "interrupt", "channel": "c", "correlation_id": "r1", "reply_to": 9}),
            ],
            vec![json!({"to": "boss", "body": "x"}), json!({"to": 4, "body": "x", "kind": "urgent"}), json!({"to": 4})],
        ),
        "read" | "receive" => (
            vec![json!({}), json!({"from": 2, "kind": "normal", "channel": "c", "correlation_id": "x"})],
            vec![json!({"from": 0}), json!({"kind": "loud"}), json!({"sender": 2})],
        ),
        "sleep" => (
            vec![json!({"seconds": 0}), json!({"seconds": 1.5})],
            vec![json!({"seconds": -1}), json!({"seconds": 1e9}), json!({})],
        ),
        "ask_human" => (vec![json!({"question": "ok?"})], vec![json!({}), json!({"question": false})]),
        "memory_write" => (
            vec![json!({"name": "notes", "content": "x"}), json!({"name": "n", "content": "{}", "kind": "json"})],
            vec![json!({"name": "notes"}), json!({"name": "n", "content": "x", "pinned": true})],
        ),
        "memory_read" => {
            (vec![json!({"object": 3}), json!({"object": "notes"})], vec![json!({}), json!({"object": true})])
        }
        "memory_list" => (vec![json!({}), json!({"namespace": "pid:1"})], vec![json!({"namespace": 1})]),
        "memory_search" => (
            vec![json!({"query": "launch window"}), json!({"query": "plan", "namespace": "pid:1", "limit": 50})],
            vec![
                json!({}),
                json!({"query": ""}),
                json!({"query": "plan", "limit": 0}),
                json!({"query": "plan", "limit": 51}),
                json!({"query": "plan", "limit": -1}),
                json!({"query": "plan", "order": "score"}),
            ],
        ),
        "memory_share" => (
            vec![json!({"oid": 1, "pid": 2, "rights": "read"}), json!({"oid": 1, "pid": 2, "rights": "read,write"})],
            vec![
                json!({"oid": 1, "pid": 2, "rights": "exec"}),
                json!({"oid": 0, "pid": 2, "rights": "read"}),
                json!({"oid": 1, "rights": "read"}),
            ],
        ),
        "memory_pin" | "memory_unpin" => (vec![json!({"oid": 5})], vec![json!({"oid": -5}), json!({"oid": "5"})]),
        "shell" => (
            vec![json!({"argv": ["git", "status"]}), json!({"argv": ["ls"], "timeout_s": 600})],
            vec![
                json!({"argv": []}),
                json!({"argv": ["ls"], "timeout_s": 0}),
                json!({"argv": ["ls"], "timeout_s": 601}),
                json!({"argv": "ls"}),
            ],
        ),
        "http_request" => (
            vec![
                json!({"method": "GET", "url": "https://example.com/a?b=c"}),
                json!({"method": "POST", "url": "http://127.0.0.1:8080/x", "headers": {"Content-Type": "text/plain"},
                       "body": "hi", "timeout_s": 300}),
            ],
            vec![
                json!({"method": "FETCH", "url": "https://example.com"}),
                json!({"method": "GET"}),
                json!({"method": "GET", "url": "https://example.com", "timeout_s": 0}),
                json!({"method": "GET", "url": "https://example.com", "timeout_s": 301}),
                json!({"method": "GET", "url": "https://example.com", "headers": {"Accept": 1}}),
                json!({"method": "GET", "url": "https://example.com", "follow": false}),
            ],
        ),
        other => panic!("no examples for `{other}`: a new built-in needs examples here"),
    }
}

fn refs(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(o) => o.contains_key("$ref") || o.contains_key("$defs") || o.values().any(refs),
        serde_json::Value::Array(a) => a.iter().any(refs),
        _ => false,
    }
}

#[test]
fn every_builtin_schema_is_generated_inline_and_agrees_with_its_parser() {
    let tools = ToolSet::builtins();
    let mut disagreements = Vec::new();
    for spec in tools.specs() {
        let name = spec.name.as_str();
        assert!(!refs(&spec.parameters), "`{name}` has $ref/$defs: {}", spec.parameters);
        assert_eq!(spec.parameters["type"], "object", "{name}");
        assert_eq!(spec.parameters["additionalProperties"], false, "{name}");
        let validator = jsonschema::validator_for(&spec.parameters).unwrap();
        let (valid, invalid) = examples(name);
        for args in valid {
            let schema_ok = validator.is_valid(&args);
            let parsed = ToolCall::parse(name, &args.to_string(), &tools);
            if !schema_ok || parsed.is_err() {
                disagreements.push(format!("{name} {args}: schema {schema_ok}, parse {parsed:?}"));
            }
            // What an approval binds to parses back to the same call.
            if let Ok(call) = parsed {
                assert_eq!(ToolCall::parse(name, &call.canonical_args(), &tools).unwrap(), call);
            }
        }
        for args in invalid {
            let schema_ok = validator.is_valid(&args);
            let parsed = ToolCall::parse(name, &args.to_string(), &tools);
            if schema_ok || parsed.is_ok() {
                disagreements.push(format!("{name} {args} should be invalid: schema {schema_ok}, parse {parsed:?}"));
            }
        }
    }
    assert_eq!(disagreements, Vec::<String>::new());
}

#[test]
fn builtin_schemas_are_what_models_see() {
    let specs: Vec<serde_json::Value> = ToolSet::builtins()
        .specs()
        .into_iter()
        .map(|s| json!({"name": s.name.as_str(), "description": s.description, "parameters": s.parameters}))
        .collect();
    insta::assert_json_snapshot!(specs);
}

/// A handler that says what it was given.
struct Echo;

impl ToolHandler for Echo {
    fn call<'a>(&'a self, call: Invocation<'a>, _ctx: &'a ToolContext) -> ToolFuture<'a> {
        Box::pin(async move { ToolOutput::Ok(format!("{} {}", call.tool, call.canonical)) })
    }
}

fn git_status() -> DynamicTool {
    DynamicTool::new(
        ToolName::new("git__git_status").unwrap(),
        "mcp server git",
        "Shows the working tree status.",
        json!({"type": "object", "properties": {
            "repo_path": {"type": "string"},
            "depth": {"type": "integer", "minimum": 1}
        }, "required": ["repo_path"], "additionalProperties": false}),
        vec![(Resource::new(ResourceKind::Mcp, "git/git_status"), Right::Exec)],
        Arc::new(Echo),
    )
    .unwrap()
}

fn with_git() -> Registry {
    let mut registry = Registry::default();
    registry.register(git_status()).unwrap();
    registry
}

#[test]
fn a_dynamic_call_is_validated_against_its_schema_before_anything_runs() {
    let registry = with_git();
    let tools = registry.table(&[ToolName::new("git__git_status").unwrap(), ToolName::builtin("exit")]).unwrap();
    let check = |args: &str| match ToolCall::parse("git__git_status", args, &tools) {
        Ok(call) => format!("ok {} {}", call.name(), call.canonical_args()),
        Err(e) => format!("rejected: {e}"),
    };
    assert_eq!(check(r#"{"repo_path": ".", "depth": 2}"#), r#"ok git__git_status {"depth":2,"repo_path":"."}"#);
    assert_eq!(
        check(r#"{"depth": 2}"#),
        r#"rejected: invalid arguments for `git__git_status`: the arguments: "repo_path" is a required property"#
    );
    assert_eq!(
        check(r#"{"repo_path": ".", "depth": 0}"#),
        "rejected: invalid arguments for `git__git_status`: `/depth`: 0 is less than the minimum of 1"
    );
    assert_eq!(
        check(r#"{"repo_path": 7}"#),
        r#"rejected: invalid arguments for `git__git_status`: `/repo_path`: 7 is not of type "string""#
    );
    assert_eq!(
        check(r#"{"repo_path": ".", "force": true}"#),
        "rejected: invalid arguments for `git__git_status`: the arguments: Additional properties are not allowed ('force' was unexpected)"
    );
    assert_eq!(check("[]"), "rejected: arguments for `git__git_status` are not a JSON object: expected an object");

    let call = ToolCall::parse("git__git_status", r#"{"repo_path": "."}"#, &tools).unwrap();
    assert!(call.is_dynamic());
    let ws = tempfile::tempdir().unwrap();
    let workspace = libos_tools::Workspace::new(ws.path(), Vec::new()).unwrap();
    let caller = libos_tools::Caller { workspace: &workspace, parent: None };
    assert_eq!(
        call.needs(caller).unwrap(),
        vec![libos_core::syscall::Need::grant(Resource::new(ResourceKind::Mcp, "git/git_status"), Right::Exec)]
    );
    assert_eq!(call.dispatch(caller).unwrap(), libos_tools::Dispatch::External);
}

#[test]
fn dynamic_tools_cannot_shadow_builtins_or_each_other_and_need_safe_names_schemas_and_grants() {
    let mut registry = with_git();
    let tool = |name: &str, schema: serde_json::Value, needs: bool| {
        let needs = if needs { vec![(Resource::new(ResourceKind::Tool, "x"), Right::Exec)] } else { Vec::new() };
        DynamicTool::new(ToolName::new(name).unwrap(), "config", "d", schema, needs, Arc::new(Echo))
    };
    let object = json!({"type": "object"});
    let errors = vec![
        registry.register(tool("shell", object.clone(), true).unwrap()).unwrap_err(),
        registry.register(tool("git__git_status", object.clone(), true).unwrap()).unwrap_err(),
        tool("t", json!({"type": "string"}), true).unwrap_err(),
        tool("t", json!({"type": "object", "properties": {"a": {"type": "strung"}}}), true).unwrap_err(),
        tool("t", json!([1]), true).unwrap_err(),
        tool("t", object.clone(), false).unwrap_err(),
        ToolName::new("git.status").unwrap_err().into(),
        ToolName::new(&"x".repeat(65)).unwrap_err().into(),
        ToolName::new("a\u{1b}[2J").unwrap_err().into(),
        registry.table(&[ToolName::new("nope").unwrap()]).unwrap_err(),
    ];
    let lines: Vec<String> = errors.iter().map(RegistryError::to_string).collect();
    insta::assert_snapshot!(lines.join("\n"));
    assert_eq!(ToolName::mapped("git.status/v2").unwrap(), ToolName::new("git_status_v2").unwrap());
}

#[test]
fn annotations_are_display_only_hints() {
    let a = ToolAnnotations {
        read_only: Some(true),
        destructive: Some(false),
        open_world: Some(true),
        ..Default::default()
    };
    assert_eq!(a.summary(), "read-only, not destructive, open-world");
    let registry = {
        let mut r = Registry::default();
        r.register(git_status().with_annotations(a.clone())).unwrap();
        r
    };
    assert_eq!(registry.get("git__git_status").unwrap().annotations(), Some(&a));
    assert_eq!(registry.get("exit").unwrap().annotations(), None);
}
