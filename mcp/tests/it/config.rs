//! `[mcp.NAME]` tables: what is accepted and the one-line error for what is not.

use std::path::Path;
use std::time::Duration;

use libos_core::caps::ResourcePattern;
use libos_mcp::config::{self, EnvValue, Http, Scope, ServerConfig, ServerName, Stdio, Transport};
use pretty_assertions::assert_eq;

fn check(toml: &str) -> Result<Vec<ServerConfig>, String> {
    let table: toml::Table = toml::from_str(toml).unwrap();
    let mcp = table["mcp"].as_table().unwrap();
    config::parse(mcp, Path::new("/etc/libos")).map(|m| m.into_values().collect()).map_err(|e| e.to_string())
}

#[test]
fn stdio_and_http_servers_are_read_with_their_defaults() {
    let got = check(
        r#"
        [mcp.git]
        command = "bin/mcp-server-git"
        args = ["--repository", "."]
        env = { GIT_TOKEN = "env:MY_TOKEN", MODE = "ro" }
        read = ["share"]
        net = ["github.com:443", "*.githubusercontent.com"]
        timeout_s = 5
        scope = "process"

        [mcp.remote]
        url = "https://mcp.example.com/mcp"
        headers = { Authorization = "env:REMOTE_TOKEN" }
        idle_s = 10
        "#,
    );
    assert_eq!(
        got,
        Ok(vec![
            ServerConfig {
                name: ServerName::new("git").unwrap(),
                transport: Transport::Stdio(Stdio {
                    command: "/etc/libos/bin/mcp-server-git".to_string(),
                    args: vec!["--repository".to_string(), ".".to_string()],
                    env: vec![
                        ("GIT_TOKEN".to_string(), EnvValue::FromEnv("MY_TOKEN".to_string())),
                        ("MODE".to_string(), EnvValue::Literal("ro".to_string())),
                    ],
                    read: vec!["/etc/libos/share".into()],
                    net: vec![
                        ResourcePattern::parse("net:github.com:443").unwrap(),
                        ResourcePattern::parse("net:*.githubusercontent.com").unwrap(),
                    ],
                }),
                timeout: Duration::from_secs(5),
                idle: config::DEFAULT_IDLE,
                scope: Scope::Process,
            },
            ServerConfig {
                name: ServerName::new("remote").unwrap(),
                transport: Transport::Http(Http {
                    url: "https://mcp.example.com/mcp".to_string(),
                    headers: vec![("Authorization".to_string(), "REMOTE_TOKEN".to_string())],
                }),
                timeout: config::DEFAULT_TIMEOUT,
                idle: Duration::from_secs(10),
                scope: Scope::Workspace,
            },
        ])
    );
}

#[test]
fn bad_tables_are_one_line_errors_naming_the_key() {
    let cases = [
        (
            "[mcp.Git]\ncommand = \"x\"",
            "mcp.Git: server name `Git` must be lowercase letters, digits, `_` and `-`, starting with a letter or digit",
        ),
        (
            "[mcp.a__b]\ncommand = \"x\"",
            "mcp.a__b: server name `a__b` must not contain `__` (it separates server and tool)",
        ),
        ("[mcp.x]\nargs = []", "mcp.x: `command` (stdio) or `url` (http) is required"),
        ("[mcp.x]\ncommand = \"a\"\nurl = \"http://h\"", "mcp.x: give `command` (stdio) or `url` (http), not both"),
        (
            "[mcp.x]\ncommand = \"a\"\ncomand = \"b\"",
            "mcp.x: unknown field `comand`, expected one of `command`, `args`, `env`, `read`, `net`, `url`, `headers`, `timeout_s`, `idle_s`, `scope`",
        ),
        (
            "[mcp.x]\nurl = \"http://h\"\nheaders = { Authorization = \"Bearer abc\" }",
            "mcp.x.headers.Authorization: values must be \"env:VAR\" (header values are read from the environment, never written here)",
        ),
        ("[mcp.x]\nurl = \"ftp://h\"", "mcp.x.url: `ftp://h` is not an http:// or https:// URL"),
        (
            "[mcp.x]\ncommand = \"a\"\nnet = [\"*.example.com:443\"]",
            "mcp.x.net: resource `net:*.example.com:443`: a domain pattern `*.DOMAIN` covers every port; name one host to limit its port",
        ),
        (
            "[mcp.x]\nurl = \"http://h\"\nnet = [\"h\"]",
            "mcp.x: `args`, `env`, `read` and `net` are for `command` servers",
        ),
        ("[mcp.x]\ncommand = \"a\"\ntimeout_s = 0", "mcp.x.timeout_s: must be between 1 and 3600"),
        ("[mcp.x]\ncommand = \"a\"\nenv = { K = \"env:\" }", "mcp.x.env.K: `env:` names no variable"),
        (
            "[mcp.x]\ncommand = \"a\"\nscope = \"global\"",
            "mcp.x.scope: unknown scope `global` (expected workspace or process)",
        ),
    ];
    for (toml, want) in cases {
        assert_eq!(check(toml), Err(want.to_string()), "{toml}");
    }
}
