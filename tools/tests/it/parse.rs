//! The parse boundary: any model output becomes a typed call or a clear rejection.

use libos_tools::{MAX_ARGS_BYTES, Registry, RejectReason, ToolCall, ToolName, ToolSet};
use pretty_assertions::assert_eq;

fn assistant() -> ToolSet {
    let names = ["read_file", "write_file", "exit"].map(ToolName::builtin);
    Registry::builtin().table(&names).unwrap()
}

fn check(name: &str, args: &str, expect: &str) {
    let got = match ToolCall::parse(name, args, &assistant()) {
        Ok(call) => format!("ok {} {}", call.name(), call.canonical_args()),
        Err(e) => format!("rejected: {e}"),
    };
    assert_eq!(got, expect, "{name} {args}");
}

#[test]
fn valid_calls_parse_to_canonical_arguments() {
    check("read_file", r#"{"path": "a.txt"}"#, r#"ok read_file {"path":"a.txt"}"#);
    check("write_file", r#"{"path":"a","content":"x"}"#, r#"ok write_file {"content":"x","path":"a"}"#);
    check("exit", r#"  {"result": "done"} "#, r#"ok exit {"result":"done"}"#);
}

#[test]
fn bad_calls_are_rejected_with_a_model_visible_reason() {
    check("shell", "{}", "rejected: unknown tool `shell`: available tools are read_file, write_file, exit");
    check("now", "{}", "rejected: unknown tool `now`: available tools are read_file, write_file, exit");
    check(
        "read_file",
        "{\"path\": ",
        "rejected: arguments for `read_file` are not a JSON object: EOF while parsing a value at line 1 column 9",
    );
    check("read_file", "[1]", "rejected: arguments for `read_file` are not a JSON object: expected an object");
    check("read_file", "", "rejected: invalid arguments for `read_file`: missing field `path`");
    check(
        "read_file",
        r#"{"path": 7}"#,
        "rejected: invalid arguments for `read_file`: invalid type: integer `7`, expected a string",
    );
    check(
        "read_file",
        r#"{"path": "a", "mode": "rw"}"#,
        "rejected: invalid arguments for `read_file`: unknown field `mode`, expected `path`",
    );
    let long = serde_json::json!({"result": "x".repeat(70_000)}).to_string();
    check("exit", &long, "rejected: invalid arguments for `exit`: result is 70000 bytes, over the limit of 65536");
}

#[test]
fn hostile_sizes_and_shapes_are_rejected_without_panicking() {
    let huge = format!(r#"{{"path": "a", "content": "{}"}}"#, "x".repeat(10 * 1024 * 1024));
    assert_eq!(
        ToolCall::parse("write_file", &huge, &assistant()).unwrap_err(),
        RejectReason::TooLarge { tool: "write_file".into(), bytes: huge.len(), limit: MAX_ARGS_BYTES }
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = ToolCall::parse("read_file", &deep, &assistant()).unwrap_err();
    assert!(matches!(err, RejectReason::InvalidJson { .. }), "{err:?}");
    let long_name = "x".repeat(10_000);
    let err = ToolCall::parse(&long_name, "{}", &assistant()).unwrap_err().to_string();
    assert!(err.len() < 200, "the name is cut in the message: {err}");
}
