//! Issue 14, hole 4: the operator's model key stays in the environment
//! until a request needs it; the loaded configuration holds only its name,
//! and nothing prints a key.

use libos_runtime::config::ConfigError;
use libos_runtime::model::http::ApiKey;
use libos_runtime::{Config, Profile};
use pretty_assertions::assert_eq;

fn key_of(config: &Config, profile: &str) -> ApiKey {
    match config.profiles.get(profile) {
        Some(Profile::Http(c)) => c.api_key.clone(),
        other => panic!("no openai profile `{profile}`: {other:?}"),
    }
}

#[test]
fn a_key_is_named_by_its_variable_and_never_held_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    std::fs::write(&path, "[models.team]\nmodel = \"m\"\napi_key_env = \"TEAM_KEY\"\n").unwrap();
    let env = |k: &str| match k {
        "TEAM_KEY" | "OPENAI_API_KEY" => Some("sk-secret".to_string()),
        "LIBOS_MODEL" => Some("m".to_string()),
        _ => None,
    };
    let config = Config::load(Some(&path), &env).unwrap();
    assert_eq!(key_of(&config, "team"), ApiKey::Env("TEAM_KEY".to_string()));
    assert_eq!(key_of(&config, "default"), ApiKey::Env("OPENAI_API_KEY".to_string()));
    assert!(!format!("{config:?}").contains("sk-secret"), "{config:?}");
    assert_eq!(format!("{:?}", ApiKey::Value("sk-secret".into())), "Value(<redacted>)");
    // Read when a request is made, from the environment as it is then.
    assert_eq!(ApiKey::Env("PATH".to_string()).current(), std::env::var("PATH").ok());
    assert_eq!(ApiKey::Env("LIBOS_NO_SUCH_VARIABLE".to_string()).current(), None);
    // A variable the operator named but did not set is still an error at start.
    let missing = |_: &str| None;
    assert_eq!(
        Config::load(Some(&path), &missing).unwrap_err(),
        ConfigError::Invalid {
            file: path.display().to_string(),
            message: "models.team: environment variable TEAM_KEY is not set".into()
        }
    );
}

/// `[http.HOST]`: headers `http_request` adds for a host, named by the
/// variable holding each value; a bad table is one line naming its key.
fn http_config(text: &str) -> Result<libos_tools::OperatorHeaders, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    std::fs::write(&path, text).unwrap();
    let none = |_: &str| None;
    Config::load(Some(&path), &none).map(|c| c.http).map_err(|e| match e {
        ConfigError::Invalid { message, .. } => message,
        other => panic!("{other:?}"),
    })
}

#[test]
fn operator_headers_are_named_by_their_variables_and_bad_tables_by_their_key() {
    use libos_tools::{HostHeaders, OperatorHeader};
    let config = http_config(
        "[http.\"API.GitHub.com\"]\nheaders = { Authorization = \"env:GITHUB_TOKEN\", X-Team = \"env:TEAM\" }\n\
         [http.\"127.0.0.1\"]\nheaders = { X-Api-Key = \"env:LOCAL_KEY\" }\nallow_http = true\n",
    )
    .unwrap();
    let header = |name: &str, var: &str| OperatorHeader { name: name.into(), var: var.into() };
    assert_eq!(
        config.hosts().iter().map(|(h, c)| (h.clone(), c.clone())).collect::<Vec<_>>(),
        vec![
            (
                "127.0.0.1".to_string(),
                HostHeaders { headers: vec![header("x-api-key", "LOCAL_KEY")], allow_http: true }
            ),
            (
                "api.github.com".to_string(),
                HostHeaders {
                    headers: vec![header("authorization", "GITHUB_TOKEN"), header("x-team", "TEAM")],
                    allow_http: false
                }
            ),
        ]
    );
    for (text, error) in [
        (
            "[http.\"api.github.com\"]\nheaders = { Authorization = \"ghp_literal\" }\n",
            "http.\"api.github.com\".headers.Authorization: the value must be `env:VAR`, the environment variable \
             holding it (secrets are never written in libos.toml)",
        ),
        (
            "[http.\"api.github.com\"]\nheaders = { Authorization = \"env:\" }\n",
            "http.\"api.github.com\".headers.Authorization: the value must be `env:VAR`, the environment variable \
             holding it (secrets are never written in libos.toml)",
        ),
        (
            "[http.\"api.github.com\"]\nheaders = { Host = \"env:H\" }\n",
            "http.\"api.github.com\".headers.Host: libos sets this header itself",
        ),
        (
            "[http.\"api.github.com\"]\nheaders = { \"Bad Name\" = \"env:H\" }\n",
            "http.\"api.github.com\".headers.\"Bad Name\": not a header name",
        ),
        (
            "[http.\"*.github.com\"]\nheaders = {}\n",
            "http.\"*.github.com\": name one host; headers are never sent to a wildcard",
        ),
        (
            "[http.\"127.0.0.1:8080\"]\nheaders = {}\n",
            "http.\"127.0.0.1:8080\": name the host without a port (its headers are sent on every port)",
        ),
        (
            "[http.\"api.github.com\"]\nheader = {}\n",
            "http.\"api.github.com\": unknown field `header` (expected headers, allow_http)",
        ),
        ("[http.\"api.github.com\"]\nallow_http = \"yes\"\n", "http.\"api.github.com\": `allow_http` is true or false"),
        ("http = { \"a.com\" = 1 }\n", "http.\"a.com\": expected a table, e.g. [http.\"api.github.com\"]"),
        ("[http.\"A.com\"]\n[http.\"a.com\"]\n", "http.\"a.com\": a.com is configured twice"),
        ("[http.\"bad host!\"]\n", "http.\"bad host!\": `bad host!` is not a host name"),
    ] {
        assert_eq!(http_config(text).unwrap_err(), error, "{text}");
    }
}

/// Issue 16: a profile's call mode, sampling settings, context window and
/// failure bound, and a clear line for each bad value.
#[test]
fn profile_settings_are_read_and_bad_ones_named() {
    use libos_runtime::model::settings::{CallMode, Sampling};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    let load = |profile: &str| {
        std::fs::write(
            &path,
            format!("[models.local]\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"m\"\n{profile}"),
        )
        .unwrap();
        Config::load(Some(&path), &|_: &str| None).map(|c| match c.profiles.get("local") {
            Some(Profile::Http(o)) => (o.call_mode, o.sampling.clone(), o.context_window, o.max_failures),
            other => panic!("{other:?}"),
        })
    };
    let mut extra = serde_json::Map::new();
    extra.insert("top_k".into(), serde_json::json!(40));
    assert_eq!(
        load(
            "call_mode = \"schema\"\nmax_tokens = 256\ntemperature = 0.0\ntop_p = 0.9\nseed = 3\nstop = [\"\\n\\n\"]\n\
             context_window = 2048\nmax_failures = 2\nextra_body = { top_k = 40 }\n"
        ),
        Ok((
            Some(CallMode::Schema),
            Sampling {
                max_tokens: 256,
                temperature: Some(0.0),
                top_p: Some(0.9),
                seed: Some(3),
                stop: vec!["\n\n".into()],
                extra_body: extra
            },
            Some(2048),
            2
        ))
    );
    assert_eq!(load(""), Ok((None, Sampling::default(), None, 5)));
    let err =
        |m: &str| Err(ConfigError::Invalid { file: path.display().to_string(), message: format!("models.local: {m}") });
    assert_eq!(load("call_mode = \"grammar\"\n"), err("call_mode `grammar` is not one of native, schema, text"));
    assert_eq!(load("temperature = 3.5\n"), err("temperature 3.5 is not between 0 and 2"));
    assert_eq!(
        load("context_window = 1000\n"),
        err("context_window (1000) must be larger than max_tokens (1024), which it reserves for the answer")
    );
}

/// Issue 16: three wire protocols (`kind`), with their defaults; what a
/// protocol cannot send is refused when the file is read, and so is a
/// fallback that names no profile.
#[test]
fn kinds_and_fallbacks_are_read_and_bad_ones_named() {
    use libos_runtime::model::settings::Protocol;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let env = |k: &str| (k == "ANTHROPIC_API_KEY").then(|| "sk-ant".to_string());
        Config::load(Some(&path), &env)
    };
    let config = load(
        "[models.default]\nmodel = \"gpt\"\nfallback = [\"claude\", \"resp\"]\n\
         [models.claude]\nkind = \"anthropic\"\nmodel = \"claude-x\"\n\
         [models.resp]\nkind = \"responses\"\nmodel = \"gpt-r\"\nbase_url = \"http://127.0.0.1:1/v1\"\n",
    )
    .unwrap();
    let shape = |name: &str| match config.profiles.get(name) {
        Some(Profile::Http(c)) => (c.protocol, c.base_url.clone(), c.api_key.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (shape("default"), shape("claude"), shape("resp")),
        (
            (Protocol::Chat, "https://api.openai.com/v1".into(), ApiKey::None),
            (Protocol::Messages, "https://api.anthropic.com/v1".into(), ApiKey::Env("ANTHROPIC_API_KEY".into())),
            (Protocol::Responses, "http://127.0.0.1:1/v1".into(), ApiKey::None),
        )
    );
    assert_eq!(
        config.fallbacks.into_iter().collect::<Vec<_>>(),
        vec![("default".to_string(), vec!["claude".to_string(), "resp".to_string()])]
    );
    let err = |profile: &str, m: &str| {
        Err(ConfigError::Invalid { file: path.display().to_string(), message: format!("models.{profile}: {m}") })
    };
    for (text, error) in [
        (
            "[models.c]\nkind = \"anthropic\"\nmodel = \"x\"\ncall_mode = \"schema\"\n",
            err(
                "c",
                "call_mode `schema` needs a response_format, which the Anthropic Messages API does not take \
                 (kind = \"anthropic\"): use native (tool_choice any: exactly one tool_use) or text",
            ),
        ),
        (
            "[models.c]\nkind = \"anthropic\"\nmodel = \"x\"\nseed = 1\n",
            err(
                "c",
                "`seed` is not part of the Anthropic Messages API (kind = \"anthropic\"); a server that takes it \
                 anyway can be sent it in extra_body",
            ),
        ),
        (
            "[models.r]\nkind = \"responses\"\nmodel = \"x\"\nstop = [\"x\"]\n",
            err(
                "r",
                "`stop` is not part of the OpenAI Responses API (kind = \"responses\"); a server that takes it \
                 anyway can be sent it in extra_body",
            ),
        ),
        (
            "[models.c]\nkind = \"gemini\"\nmodel = \"x\"\n",
            err("c", "unknown kind `gemini` (expected openai, anthropic, responses or scripted)"),
        ),
        ("[models.a]\nmodel = \"x\"\nfallback = [\"b\"]\n", err("a", "fallback: no profile `b` (define [models.b])")),
        ("[models.a]\nmodel = \"x\"\nfallback = [\"a\"]\n", err("a", "fallback: a profile cannot be its own fallback")),
        (
            "[models.a]\nmodel = \"x\"\nfallback = [\"b\", \"b\"]\n[models.b]\nmodel = \"y\"\n",
            err("a", "fallback: `b` is named twice"),
        ),
    ] {
        assert_eq!(load(text).map(|_| ()), error, "{text}");
    }
}
