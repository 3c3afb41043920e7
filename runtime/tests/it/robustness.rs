//! Model output is hostile input: whatever a model (or a proxy in front of
//! it) returns, libos turns it into one typed call or a model-visible
//! rejection, never a panic, a hang or a silently wrong call.

use libos_runtime::extract::one_call;
use libos_runtime::{ChatResponse, RawToolCall};
use libos_tools::{RejectReason, ToolCall, ToolSet};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

fn text(content: &str) -> ChatResponse {
    ChatResponse {
        model: "m".into(),
        content: Some(content.into()),
        tool_calls: Vec::new(),
        usage: None,
        raw: String::new(),
        carry: None,
        info: Default::default(),
    }
}

/// Extraction then parsing, as a quantum does it.
fn turn(resp: &ChatResponse) -> Result<ToolCall, RejectReason> {
    let found = one_call(resp, ToolSet::builtins().names(), "call_1")?;
    ToolCall::parse(&found.call.name, &found.call.arguments, &ToolSet::builtins())
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "(?s).{0,12}".prop_map(serde_json::Value::from),
        prop::sample::select(vec!["path", "a.txt", "..", "/etc/passwd", "parent", "any", "kill"])
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "path",
                        "content",
                        "result",
                        "argv",
                        "pid",
                        "to",
                        "body",
                        "image",
                        "goal",
                        "grants",
                        "seconds",
                        "key",
                        "question",
                        "timeout_s",
                        "action",
                        "channel",
                    ])
                    .prop_map(String::from),
                    "(?s).{0,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

// 256 cases each by default; `PROPTEST_CASES=100000` for a long run.
proptest! {
    /// Any JSON as any tool's arguments: a typed call whose canonical form
    /// parses back to itself, or a rejection that names the tool.
    #[test]
    fn any_json_arguments_parse_or_are_rejected(tool in prop::sample::select(ToolSet::builtins().names().to_vec()), args in json_value()) {
        let text = args.to_string();
        match ToolCall::parse(tool.as_str(), &text, &ToolSet::builtins()) {
            Ok(call) => {
                let again = ToolCall::parse(tool.as_str(), &call.canonical_args(), &ToolSet::builtins()).unwrap();
                prop_assert_eq!(again, call);
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains(tool.as_str()), "{}", message);
                prop_assert!(!message.contains('\n') && message.len() < 2_000, "{}", message);
            }
        }
    }

    /// Any text as arguments, any name as the tool (newlines and control
    /// characters included): the rejection is still one line.
    #[test]
    fn any_text_as_a_call_is_handled(name in "(?s).{0,40}", args in "(?s).{0,200}") {
        if let Err(e) = ToolCall::parse(&name, &args, &ToolSet::builtins()) {
            let message = e.to_string();
            prop_assert!(!message.contains('\n') && !message.contains('\r'), "{}", message);
        }
    }

    /// Any text as the whole answer (no native call): one call, or a
    /// rejection telling the model what to do.
    #[test]
    fn any_text_answer_is_one_call_or_a_rejection(
        prefix in "(?s).{0,40}",
        call in json_value(),
        suffix in "(?s).{0,40}",
        fence in any::<bool>(),
    ) {
        let body = if fence { format!("```json\n{call}\n```") } else { call.to_string() };
        if let Err(e) = turn(&text(&format!("{prefix}{body}{suffix}"))) {
            let message = e.to_string();
            prop_assert!(!message.contains('\n') && !message.contains('\r'), "{}", message);
        }
    }

    /// Any number of native calls with any names and arguments.
    #[test]
    fn any_native_calls_are_one_call_or_a_rejection(calls in prop::collection::vec(("(?s).{0,12}", "(?s).{0,40}"), 0..8)) {
        let resp = ChatResponse {
            model: "m".into(),
            content: None,
            tool_calls: calls.iter().map(|(n, a)| RawToolCall { id: String::new(), name: n.clone(), arguments: a.clone() }).collect(),
            usage: None,
            raw: String::new(),
            carry: None,
            info: Default::default(),
        };
        match (calls.len(), turn(&resp)) {
            (0, Err(e)) => prop_assert!(matches!(e, RejectReason::NoCall { .. }), "{}", e),
            (1, _) => {}
            (n, Err(e)) => prop_assert_eq!(e, RejectReason::TooMany { count: n }),
            (n, Ok(call)) => prop_assert!(false, "{} calls became {:?}", n, call),
        }
    }
}

/// The shapes a fuzzer finds first, each checked for its exact outcome.
#[test]
fn adversarial_answers_are_rejected_with_the_reason() {
    let all = |resp: &ChatResponse| turn(resp).map(|c| c.name().to_string()).map_err(|e| e.to_string());
    let native = |name: &str, args: String| ChatResponse {
        tool_calls: vec![RawToolCall { id: "c".into(), name: name.into(), arguments: args }],
        content: None,
        ..text("")
    };
    let ten_mb = format!(r#"{{"path":"a","content":"{}"}}"#, "x".repeat(10 << 20));
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let many = ChatResponse {
        tool_calls: (0..1000)
            .map(|i| RawToolCall { id: format!("c{i}"), name: "now".into(), arguments: "{}".into() })
            .collect(),
        ..text("")
    };
    let got = vec![
        all(&native("write_file", ten_mb.clone())),
        all(&native("read_file", deep.clone())),
        all(&native("read_file", r#"{"path": 7}"#.into())),
        all(&native("rm -rf /", "{}".into())),
        all(&native("exit", "not json".into())),
        all(&many),
        all(&text("")),
        all(&text(&format!("I will write it now: {ten_mb}"))),
        all(&text(&deep)),
    ];
    let reasons: Vec<&str> = got.iter().map(|r| r.as_ref().map_or_else(|e| e.as_str(), |c| c.as_str())).collect();
    assert_eq!(
        reasons,
        [
            "arguments for `write_file` are 10485785 bytes, over the limit of 1048576",
            "arguments for `read_file` are not a JSON object: recursion limit exceeded at line 1 column 128",
            "invalid arguments for `read_file`: invalid type: integer `7`, expected a string",
            "unknown tool `rm -rf /`: available tools are exit, now, read_file, list_dir, write_file, delete_file, spawn, \
             wait, children, signal, send, read, receive, sleep, ask_human, memory_write, memory_read, memory_list, \
             memory_search, memory_share, memory_pin, memory_unpin, shell, http_request",
            "arguments for `exit` are not a JSON object: expected ident at line 1 column 2",
            "1000 tool calls in one turn: call exactly one tool per turn",
            "no tool call found: answer with exactly one call to one of the tools (exit, now, read_file, list_dir, \
             write_file, delete_file, spawn, wait, children, signal, send, read, receive, sleep, ask_human, \
             memory_write, memory_read, memory_list, memory_search, memory_share, memory_pin, memory_unpin, shell, \
             http_request)",
            "no tool call found: answer with exactly one call to one of the tools (exit, now, read_file, list_dir, \
             write_file, delete_file, spawn, wait, children, signal, send, read, receive, sleep, ask_human, \
             memory_write, memory_read, memory_list, memory_search, memory_share, memory_pin, memory_unpin, shell, \
             http_request)",
            "no tool call found: answer with exactly one call to one of the tools (exit, now, read_file, list_dir, \
             write_file, delete_file, spawn, wait, children, signal, send, read, receive, sleep, ask_human, \
             memory_write, memory_read, memory_list, memory_search, memory_share, memory_pin, memory_unpin, shell, \
             http_request)",
        ]
    );
}

/// Text built so that many `{` start a JSON value that runs a long way
/// before it breaks (nested to just under the parser's depth limit, then
/// cut): the search for a call gives up after reading about eight times the text,
/// instead of going on for minutes. A hang here ends in nextest's timeout.
#[test]
fn text_full_of_broken_json_fragments_is_given_up_on() {
    let block = format!("{}x\n", r#"{"a":["#.repeat(120));
    let evil = format!("{}{}", block.repeat(1_000), r#"{"tool": "now", "args": {}}"#);
    let got = turn(&text(&evil)).map(|c| c.name().to_string()).map_err(|e| e.to_string());
    assert_eq!(
        got,
        Err(format!(
            "the answer is {} bytes of text with too many broken JSON fragments to find a call in: answer with \
             exactly one tool call",
            evil.len()
        ))
    );
    // A few broken fragments before a call are searched past.
    let noisy = format!("{}{}", block.repeat(3), r#"{"tool": "now", "args": {}}"#);
    assert_eq!(turn(&text(&noisy)).map(|c| c.name().to_string()).map_err(|e| e.to_string()), Ok("now".to_string()));
}

/// Issue 16: a small model echoed a tool's schema (`{"name", "description",
/// "parameters"}`) and the text fallback took it for a call of that tool.
/// Only objects shaped as a call count: `name` + `arguments` or `tool` +
/// `args`, and besides them at most `id` and `type`.
#[test]
fn an_echoed_tool_schema_is_not_a_call() {
    let check = |answer: &str| turn(&text(answer)).map(|c| c.name().to_string()).map_err(|e| e.to_string());
    let echo = r#"{"name": "write_file", "description": "Write a file", "parameters": {"type": "object"}}"#;
    let no_call = check("").unwrap_err();
    assert_eq!(
        [
            check(echo),
            check(&format!("Here is the tool: {echo}")),
            check(r#"{"name": "exit"}"#),
            check(r#"{"tool": "exit", "args": {"result": "ok"}, "reason": "done"}"#),
            check(r#"{"type": "function", "id": "c1", "name": "exit", "arguments": {"result": "ok"}}"#),
            check(r#"{"tool": "exit", "args": {"result": "ok"}}"#),
            check(&format!("{echo} then {{\"tool\": \"now\", \"args\": {{}}}}")),
        ],
        [
            Err(no_call.clone()),
            Err(no_call.clone()),
            Err(no_call.clone()),
            Err(no_call),
            Ok("exit".to_string()),
            Ok("exit".to_string()),
            Ok("now".to_string()),
        ]
    );
}
