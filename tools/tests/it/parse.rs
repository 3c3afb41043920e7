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

/// `http_request`: the URL is parsed once, into what is requested and what
/// the call needs; what may never be sent is refused before any grant.
fn check_http(args: serde_json::Value, expect: &str) {
    let workspace = libos_tools::Workspace::new(&std::env::temp_dir(), Vec::new()).unwrap();
    let caller = libos_tools::Caller { workspace: &workspace, parent: None };
    let got = match ToolCall::parse("http_request", &args.to_string(), &ToolSet::builtins()) {
        Ok(call) => {
            let needs: Vec<String> =
                call.needs(caller).unwrap().iter().map(|n| format!("{} {}", n.right, n.resource)).collect();
            format!("ok {} needs {}", call.canonical_args(), needs.join(", "))
        }
        Err(e) => format!("rejected: {e}"),
    };
    assert_eq!(got, expect, "{args}");
}

#[test]
fn http_requests_need_the_host_and_port_their_url_names() {
    use serde_json::json;
    check_http(
        json!({"method": "get", "url": "HTTPS://API.Example.COM./repos?q=1#readme"}),
        r#"ok {"method":"GET","url":"https://api.example.com/repos?q=1"} needs read net:api.example.com:443"#,
    );
    check_http(
        json!({"method": "HEAD", "url": "http://[::1]:8080/"}),
        r#"ok {"method":"HEAD","url":"http://[::1]:8080/"} needs read net:[::1]:8080"#,
    );
    check_http(
        json!({"method": "POST", "url": "http://10.0.0.1/hook", "body": "{}", "headers": {"Content-Type": "application/json"}}),
        r#"ok {"body":"{}","headers":{"Content-Type":"application/json"},"method":"POST","url":"http://10.0.0.1/hook"} needs write net:10.0.0.1:80"#,
    );
    check_http(
        json!({"method": "DELETE", "url": "https://example.com:8443/x"}),
        r#"ok {"method":"DELETE","url":"https://example.com:8443/x"} needs write net:example.com:8443"#,
    );
}

#[test]
fn http_requests_that_could_carry_secrets_or_mislead_the_check_are_rejected() {
    use serde_json::json;
    let bad = |args: serde_json::Value, why: &str| {
        check_http(args, &format!("rejected: invalid arguments for `http_request`: {why}"));
    };
    bad(
        json!({"method": "GET", "url": "ftp://example.com/f"}),
        "only http and https URLs can be requested, not `ftp:`",
    );
    bad(
        json!({"method": "GET", "url": "file:///etc/passwd"}),
        "only http and https URLs can be requested, not `file:`",
    );
    bad(
        json!({"method": "GET", "url": "https://user:pw@example.com/"}),
        "a URL with credentials (user:password@) is refused: secrets come only from the operator's configuration",
    );
    bad(json!({"method": "GET", "url": "example.com"}), "`example.com` is not a URL: relative URL without a base");
    bad(
        json!({"method": "GET", "url": "https://example.com", "headers": {"Authorization": "Bearer x"}}),
        "header `Authorization` is refused: credentials come only from the operator's configuration ([http.HOST] in \
         libos.toml), never from a call",
    );
    bad(
        json!({"method": "GET", "url": "https://example.com", "headers": {"cookie": "a=b"}}),
        "header `cookie` is refused: credentials come only from the operator's configuration ([http.HOST] in \
         libos.toml), never from a call",
    );
    bad(
        json!({"method": "GET", "url": "https://example.com", "headers": {"Host": "internal"}}),
        "header `Host` is refused: the host is the URL's, which the grant was checked against",
    );
    bad(
        json!({"method": "GET", "url": "https://example.com", "headers": {"X-A": "1\r\nHost: evil"}}),
        "header `X-A` has a value that is not a header value (line breaks, controls)",
    );
    bad(
        json!({"method": "GET", "url": "https://example.com", "headers": {"x-a": "1", "X-A": "2"}}),
        "header `x-a` is given twice",
    );
    bad(
        json!({"method": "GET", "url": "https://example.com", "body": "data"}),
        "a GET request carries no body (it needs only `read`): send data with POST, PUT or PATCH",
    );
}
