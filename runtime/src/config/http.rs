//! `[http.HOST]` tables of `libos.toml`: headers `http_request` adds for a
//! host, their values only from the environment.
//!
//! ```toml
//! [http."api.github.com"]
//! headers = { Authorization = "env:GITHUB_TOKEN" }   # read when a request is sent
//! allow_http = false                                 # default: sent over https only
//! ```
//!
//! The key is one host (canonical, any port; no wildcard, no port). Values
//! are `env:VAR`: a secret is never written in the file. Errors are one
//! line naming the key (`http."api.github.com".headers.Authorization: ...`).

use std::collections::BTreeMap;

use libos_tools::{HostHeaders, OperatorHeader, OperatorHeaders};
use reqwest::header::HeaderName;

/// Headers the operator may not set either: the host is the URL's, and
/// libos frames the request.
const NOT_CONFIGURABLE: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// Parses the `[http]` table.
pub(super) fn parse(table: &toml::Table) -> Result<OperatorHeaders, String> {
    let mut hosts = BTreeMap::new();
    for (key, value) in table {
        let at = format!("http.{}", quoted(key));
        let err = |m: String| format!("{at}: {m}");
        if key.contains('*') {
            return Err(err("name one host; headers are never sent to a wildcard".to_string()));
        }
        let (host, port) = libos_kernel::caps::net::split(key).map_err(err)?;
        if port.is_some() {
            return Err(err("name the host without a port (its headers are sent on every port)".to_string()));
        }
        let toml::Value::Table(t) = value else {
            return Err(err("expected a table, e.g. [http.\"api.github.com\"]".to_string()));
        };
        let mut entry = HostHeaders::default();
        for (field, v) in t {
            match (field.as_str(), v) {
                ("headers", toml::Value::Table(h)) => {
                    for (name, v) in h {
                        let at = format!("{at}.headers.{}", quoted(name));
                        entry.headers.push(header(name, v).map_err(|m| format!("{at}: {m}"))?);
                    }
                }
                ("headers", _) => {
                    return Err(err("`headers` is a table, e.g. { Authorization = \"env:TOKEN\" }".into()));
                }
                ("allow_http", toml::Value::Boolean(b)) => entry.allow_http = *b,
                ("allow_http", _) => return Err(err("`allow_http` is true or false".to_string())),
                (other, _) => return Err(err(format!("unknown field `{other}` (expected headers, allow_http)"))),
            }
        }
        if hosts.insert(host.clone(), entry).is_some() {
            return Err(err(format!("{host} is configured twice")));
        }
    }
    Ok(OperatorHeaders::new(hosts))
}

fn header(name: &str, value: &toml::Value) -> Result<OperatorHeader, String> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err("not a header name".to_string());
    }
    let lower = name.to_ascii_lowercase();
    if NOT_CONFIGURABLE.contains(&lower.as_str()) {
        return Err("libos sets this header itself".to_string());
    }
    let var = value.as_str().and_then(|s| s.strip_prefix("env:"));
    match var {
        Some(var) if is_var_name(var) => Ok(OperatorHeader { name: lower, var: var.to_string() }),
        _ => Err("the value must be `env:VAR`, the environment variable holding it (secrets are never written in \
                  libos.toml)"
            .to_string()),
    }
}

fn is_var_name(var: &str) -> bool {
    let mut chars = var.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A TOML key as written in a dotted path.
fn quoted(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
