//! `http_request(method, url, headers?, body?, timeout_s?)`: one HTTP
//! request from libos itself (not through a program), under `net:` grants.
//!
//! 1. Parse once: the method, the URL (`http`/`https` only, no userinfo,
//!    the fragment dropped, the host canonical), the model's headers (never
//!    `Authorization`, `Proxy-Authorization`, `Cookie`, `Host`, nor framing
//!    headers libos sets), the body (at most 1 MiB, none on `GET`/`HEAD`).
//! 2. Need `read net:HOST:PORT` for `GET`/`HEAD`, `write net:HOST:PORT` for
//!    every other method. An `ask` parks the call with this exact URL.
//! 3. Run: refuse a model header the operator configures for the host;
//!    ask the gate how far the grant that decided the call reaches; resolve
//!    the host once (`libos_sandbox::net::resolve`: a wildcard grant keeps
//!    public addresses only) and connect only to those addresses (pinned,
//!    no proxy). The operator's headers for the host are added now, their
//!    values read from the environment (`https` only unless the operator
//!    allows `http`).
//! 4. A redirect (301, 302, 303, 307, 308; at most 5) is a new destination,
//!    decided live by the gate like a program's connection (an `ask` grant
//!    cannot park the call midway: refused, saying so), with the method
//!    changed as RFC 9110 says (303, and 301/302 after `POST`, become
//!    `GET` without a body). A refused hop is never contacted.
//! 5. The whole exchange is bounded by `timeout_s` (default 30, at most
//!    300) and the process's wall time left, and stops when the call is
//!    cancelled. The result: the status line, `content-type`,
//!    `content-length` and `location`, the redirects followed, and at most
//!    256 KiB of body (text as text, anything else as its type and size).
//!    A 4xx or 5xx status is an error outcome, its body shown.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libos_core::caps::{Resource, Right};
use libos_core::syscall::Need;
use libos_sandbox::{NetGate, Use};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::http::OperatorHeaders;
use crate::tool::Tool;

/// Default time limit of a call.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// Longest time limit a call may ask for.
pub const MAX_TIMEOUT_S: u64 = 300;
/// Bytes of a response body kept.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bytes of a request body allowed.
pub const MAX_REQUEST_BODY_BYTES: usize = 1024 * 1024;
/// Redirects followed, at most.
pub const MAX_REDIRECTS: usize = 5;
/// Headers a model may send, at most.
pub const MAX_HEADERS: usize = 64;
/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Headers a model never sends: credentials only the operator configures
/// (`Authorization`, `Proxy-Authorization`, `Cookie`), the host (it is the
/// URL's, which the grant was checked against), and framing libos sets.
pub const REFUSED_HEADERS: [&str; 7] =
    ["authorization", "proxy-authorization", "cookie", "host", "content-length", "transfer-encoding", "connection"];

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

impl Method {
    const ALL: [Method; 7] =
        [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Options];

    /// The method's name, uppercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// What the request is for: only `GET` and `HEAD` merely read.
    pub fn use_(self) -> Use {
        match self {
            Method::Get | Method::Head => Use::Read,
            Method::Post | Method::Put | Method::Patch | Method::Delete | Method::Options => Use::Write,
        }
    }

    fn right(self) -> Right {
        match self.use_() {
            Use::Read => Right::Read,
            Use::Write => Right::Write,
        }
    }

    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Method::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(&text)).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown method `{}` (expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)",
                crate::call::one_line(&text, 40)
            ))
        })
    }
}

impl JsonSchema for Method {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Method".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]})
    }
}

/// A URL that may be requested: `http` or `https`, no userinfo, no
/// fragment, its host canonical (`libos_core::caps::net::host`) and its
/// port known. Serialised as the URL it requests, which is what the audit
/// and an approval show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
    host: String,
    port: u16,
}

impl Target {
    /// Parses and checks a URL; the error is one line for the model.
    pub fn parse(text: &str) -> Result<Target, String> {
        if text.len() > MAX_URL_BYTES {
            return Err(format!("the URL is {} bytes, more than {MAX_URL_BYTES}", text.len()));
        }
        let url = Url::parse(text).map_err(|e| format!("`{}` is not a URL: {e}", crate::call::one_line(text, 200)))?;
        Target::from_url(url)
    }

    fn from_url(mut url: Url) -> Result<Target, String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("only http and https URLs can be requested, not `{}:`", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a URL with credentials (user:password@) is refused: secrets come only from the operator's \
                        configuration"
                .to_string());
        }
        url.set_fragment(None);
        let host = match url.host() {
            Some(url::Host::Domain(d)) => {
                let canonical = libos_core::caps::net::host(d)?;
                if canonical != d {
                    url.set_host(Some(&canonical)).map_err(|e| format!("host `{canonical}`: {e}"))?;
                }
                canonical
            }
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return Err("the URL names no host".to_string()),
        };
        let port = url.port_or_known_default().ok_or_else(|| "the URL has no port".to_string())?;
        Ok(Target { url, host, port })
    }

    /// The URL requested.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Its host, canonical.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its port (the scheme's when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The resource a request to it touches.
    pub fn resource(&self) -> Resource {
        Resource::net(&self.host, self.port)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.url.as_str())
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Target::parse(&text).map_err(D::Error::custom)
    }
}

impl JsonSchema for Target {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Url".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "description": "An http:// or https:// URL."})
    }
}

/// Arguments of `http_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestArgs {
    /// GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS.
    pub method: Method,
    /// The http:// or https:// URL to request.
    pub url: Target,
    /// Request headers by name (not Authorization, Cookie or Host: credentials come from the operator).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body, as text (not with GET or HEAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Seconds before the request is given up (default 30, at most 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_s: Option<u64>,
}

impl HttpRequestArgs {
    /// Checks what the types cannot: header names and values, the body's
    /// size and presence, the time limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.headers.len() > MAX_HEADERS {
            return Err(format!("{} headers: at most {MAX_HEADERS}", self.headers.len()));
        }
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`{}` is not a header name", crate::call::one_line(name, 80)));
            }
            if REFUSED_HEADERS.contains(&lower.as_str()) {
                return Err(refused_header(name));
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(format!("header `{name}` has a value that is not a header value (line breaks, controls)"));
            }
            if seen.contains(&lower) {
                return Err(format!("header `{name}` is given twice"));
            }
            seen.push(lower);
        }
        if let Some(body) = &self.body {
            if self.method.use_() == Use::Read {
                return Err(format!(
                    "a {} request carries no body (it needs only `read`): send data with POST, PUT or PATCH",
                    self.method
                ));
            }
            if body.len() > MAX_REQUEST_BODY_BYTES {
                return Err(format!("the body is {} bytes, more than {MAX_REQUEST_BODY_BYTES}", body.len()));
            }
        }
        if self.timeout_s.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_S) {
            return Err(format!("timeout_s must be between 1 and {MAX_TIMEOUT_S}"));
        }
        Ok(())
    }
}

fn refused_header(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "host" => "header `Host` is refused: the host is the URL's, which the grant was checked against".to_string(),
        "content-length" | "transfer-encoding" | "connection" => {
            format!("header `{name}` is refused: libos frames the request itself")
        }
        _ => format!(
            "header `{name}` is refused: credentials come only from the operator's configuration ([http.HOST] in \
             libos.toml), never from a call"
        ),
    }
}

/// `http_request`.
pub struct HttpRequest;

impl Tool for HttpRequest {
    type Args = HttpRequestArgs;
    const NAME: &'static str = "http_request";
    const DESCRIPTION: &'static str = "Send one HTTP request (http or https) and get its status, a few headers and \
                                       the body (at most 256 KiB). Redirects to hosts you may reach are followed.";
    const OPEN_WORLD: bool = true;

    fn check(a: &HttpRequestArgs) -> Result<(), String> {
        a.validate()
    }

    fn needs(a: &HttpRequestArgs, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        Ok(vec![Need::grant(a.url.resource(), a.method.right())])
    }

    fn dispatch(_: &HttpRequestArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::External)
    }

    fn run(a: &HttpRequestArgs, ctx: &ToolContext) -> ToolOutput {
        match run_it(a, ctx) {
            Ok(out) => out,
            Err(e) => ToolOutput::Error(format!("`{} {}`: {e}", a.method, a.url)),
        }
    }
}

fn run_it(a: &HttpRequestArgs, ctx: &ToolContext) -> Result<ToolOutput, String> {
    a.validate()?;
    let Some(gate) = ctx.net.clone() else {
        return Err("not sent: the process holds no live net: grant".to_string());
    };
    if let Some(configured) = ctx.http.for_host(a.url.host()) {
        for name in a.headers.keys() {
            if configured.headers.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "not sent: header `{name}` for {} is set by the operator's configuration, never by a call",
                    a.url.host()
                ));
            }
        }
    }
    let asked = Duration::from_secs(a.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S));
    let (limit, by_budget) = match ctx.time_left {
        Some(left) if left < asked => (left, true),
        _ => (asked, false),
    };
    if limit.is_zero() {
        return Err("not sent: no wall time is left in the budget".to_string());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("not sent: no runtime for the request: {e}"))?;
    let (cancelled_tx, cancelled) = tokio::sync::oneshot::channel::<()>();
    ctx.cancel.on_cancel(move || {
        let _ = cancelled_tx.send(());
    });
    let exchange = Exchange { args: a, operator: ctx.http.clone(), gate };
    let out = rt.block_on(async {
        tokio::select! {
            biased;
            _ = cancelled => Err("stopped: the call was cancelled".to_string()),
            done = tokio::time::timeout(limit, exchange.run()) => match done {
                Ok(result) => result,
                Err(_) if by_budget => {
                    Err(format!("stopped when the wall_time budget ran out ({} s)", limit.as_secs()))
                }
                Err(_) => Err(format!("no complete answer within its {} s time limit", limit.as_secs())),
            },
        }
    });
    // A name still being resolved is left to finish on its own thread.
    rt.shutdown_background();
    out
}

/// One call's requests: the first and each redirect followed.
struct Exchange<'a> {
    args: &'a HttpRequestArgs,
    operator: Arc<OperatorHeaders>,
    gate: Arc<dyn NetGate>,
}

/// A request about to be sent.
struct Hop {
    method: Method,
    target: Target,
    body: Option<String>,
    /// The model's headers still sent (a change to `GET` drops the body's).
    headers: BTreeMap<String, String>,
}

impl Exchange<'_> {
    async fn run(&self) -> Result<ToolOutput, String> {
        let a = self.args;
        let mut hop = Hop { method: a.method, target: a.url.clone(), body: a.body.clone(), headers: a.headers.clone() };
        let mut trail: Vec<String> = Vec::new();
        // The operator's values sent so far: never shown, whatever a server echoes.
        let mut secrets: Vec<(String, String)> = Vec::new();
        for n in 0..=MAX_REDIRECTS {
            let t = &hop.target;
            // The first destination was decided with the call (perhaps on an
            // approval); only its reach is asked. Every redirect is decided now.
            let reach = if n == 0 {
                self.gate.reach(t.host(), t.port(), hop.method.use_())
            } else {
                self.gate.decide(t.host(), t.port(), hop.method.use_())
            };
            let reach = reach.map_err(|why| refusal(&trail, n, t, &why))?;
            let (host, port) = (t.host().to_string(), t.port());
            let addrs = tokio::task::spawn_blocking(move || libos_sandbox::net::resolve(&host, port, reach))
                .await
                .map_err(|e| format!("the name could not be resolved: {e}"))?
                .map_err(|why| refusal(&trail, n, t, &why))?;
            let resp = self.send(&hop, &addrs, &mut secrets).await.map_err(|e| with_trail(&trail, e))?;
            let status = resp.status();
            let location = resp.headers().get(reqwest::header::LOCATION).cloned();
            let Some(location) = location.filter(|_| is_redirect(status)) else {
                return finish(resp, hop.method, &trail).await.map(|out| redact(out, &secrets));
            };
            let location = location.to_str().map_err(|_| {
                with_trail(&trail, format!("{status} from {} with a Location that is not text", hop.target))
            })?;
            let next = hop
                .target
                .url()
                .join(location)
                .map_err(|e| e.to_string())
                .and_then(Target::from_url)
                .map_err(|e| with_trail(&trail, format!("{status} to an unusable Location `{location}`: {e}")))?;
            if n == MAX_REDIRECTS {
                return Err(with_trail(&trail, format!("stopped after {MAX_REDIRECTS} redirects (the next: {next})")));
            }
            // RFC 9110 15.4: 303 becomes GET (HEAD stays HEAD); so do 301
            // and 302 after POST, as every client does.
            let to_get = match status.as_u16() {
                303 => hop.method != Method::Head,
                301 | 302 => hop.method == Method::Post,
                _ => false,
            };
            if to_get {
                hop.method = Method::Get;
                hop.body = None;
                hop.headers.retain(|k, _| {
                    !matches!(
                        k.to_ascii_lowercase().as_str(),
                        "content-type" | "content-encoding" | "content-language" | "content-location"
                    )
                });
            }
            trail.push(format!("{status} -> {} {next}", hop.method));
            hop.target = next;
        }
        Err("too many redirects".to_string())
    }

    /// Sends one request to `addrs` only, with the operator's headers for its host.
    async fn send(
        &self,
        hop: &Hop,
        addrs: &[SocketAddr],
        secrets: &mut Vec<(String, String)>,
    ) -> Result<reqwest::Response, String> {
        let t = &hop.target;
        let mut builder = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none());
        if let Some(domain) = t.url().domain() {
            builder = builder.resolve_to_addrs(domain, addrs);
        }
        let client = builder.build().map_err(|e| format!("no HTTP client: {e}"))?;
        let mut headers = HeaderMap::new();
        let configured = self.operator.for_host(t.host());
        for (name, value) in &hop.headers {
            // A redirect's host may have operator headers of the same name:
            // the operator's win (a first hop with one was refused earlier).
            if configured.is_some_and(|c| c.headers.iter().any(|o| o.name.eq_ignore_ascii_case(name))) {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header `{name}`: {e}"))?;
            let value = HeaderValue::from_str(value).map_err(|e| format!("header `{name}`: {e}"))?;
            headers.insert(name, value);
        }
        if let Some(c) = configured {
            if t.url().scheme() != "https" && !c.allow_http {
                return Err(format!(
                    "not sent: the operator's headers for {} go over https only (allow_http = true under \
                     [http.\"{}\"] sends them over http)",
                    t.host(),
                    t.host()
                ));
            }
            for (name, value_text) in self.operator.values(t.host()).map_err(|e| format!("not sent: {e}"))? {
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("not sent: the operator's header `{name}` has an unusable name"))?;
                // Never the value in an error: it is a secret.
                let mut value = HeaderValue::from_str(&value_text).map_err(|_| {
                    format!("not sent: the operator's header `{name}` for {} has an unusable value", t.host())
                })?;
                value.set_sensitive(true);
                headers.insert(header, value);
                secrets.push((name, value_text));
            }
        }
        let mut request = client.request(hop.method.reqwest(), t.url().clone()).headers(headers);
        if let Some(body) = &hop.body {
            request = request.body(body.clone());
        }
        request.send().await.map_err(|e| format!("{} {t} failed: {}", hop.method, error_chain(&e)))
    }
}

/// Shortest operator value redacted from a result: a shorter one would
/// blank out ordinary text (and is no secret worth the name).
const MIN_REDACTED: usize = 4;

/// A result with every operator value sent replaced by a notice naming its
/// header: a server that echoes its request (or puts a token in a
/// `Location`) must not carry the secret into the transcript.
fn redact(out: ToolOutput, secrets: &[(String, String)]) -> ToolOutput {
    let clean = |mut text: String| {
        for (name, value) in secrets.iter().filter(|(_, v)| v.len() >= MIN_REDACTED) {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), &format!("[the operator's {name} header, redacted]"));
            }
        }
        text
    };
    match out {
        ToolOutput::Ok(text) => ToolOutput::Ok(clean(text)),
        ToolOutput::Error(text) => ToolOutput::Error(clean(text)),
    }
}

fn is_redirect(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// A reqwest error with its causes (the top one alone says "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn with_trail(trail: &[String], e: String) -> String {
    if trail.is_empty() { e } else { format!("{e} (after redirects: {})", trail.join(", ")) }
}

fn refusal(trail: &[String], n: usize, t: &Target, why: &str) -> String {
    if n == 0 {
        format!("not sent: {why}")
    } else {
        format!("the redirect to {t} was refused, nothing was sent there: {why} (redirects: {})", trail.join(", "))
    }
}

/// The result: status line, a few headers, the redirects, the bounded body.
async fn finish(mut resp: reqwest::Response, method: Method, trail: &[String]) -> Result<ToolOutput, String> {
    let status = resp.status();
    let mut text = format!("{:?} {status}", resp.version());
    for name in ["content-type", "content-length", "location"] {
        if let Some(v) = resp.headers().get(name) {
            text.push_str(&format!("\n{name}: {}", String::from_utf8_lossy(v.as_bytes())));
        }
    }
    if !trail.is_empty() {
        text.push_str(&format!("\nredirects: {}", trail.join(", ")));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase());
    let declared = resp.content_length();
    let mut kept: Vec<u8> = Vec::new();
    let mut cut = false;
    if method != Method::Head {
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| format!("the body could not be read: {}", error_chain(&e)))?
        {
            let room = MAX_BODY_BYTES - kept.len();
            if chunk.len() > room {
                kept.extend_from_slice(&chunk[..room]);
                cut = true;
                break;
            }
            kept.extend_from_slice(&chunk);
        }
    }
    text.push_str("\n\n");
    let size = match (cut, declared) {
        (false, _) => format!("{} bytes", kept.len()),
        (true, Some(total)) => format!("{total} bytes"),
        (true, None) => format!("more than {} bytes", kept.len()),
    };
    match body_text(content_type.as_deref(), &kept) {
        _ if kept.is_empty() && !cut => text.push_str("(no body)"),
        Some(body) => {
            text.push_str(&body);
            if cut {
                text.push_str(&format!("\n[body cut: the first {} bytes of {size} shown]", kept.len()));
            }
        }
        None => {
            let kind = content_type.as_deref().unwrap_or("no content-type");
            text.push_str(&format!("[binary body: {kind}, {size}]"));
        }
    }
    Ok(if status.is_client_error() || status.is_server_error() {
        ToolOutput::Error(text)
    } else {
        ToolOutput::Ok(text)
    })
}

/// The body as text when it is text: a textual content type (cut UTF-8 is
/// decoded leniently), or none and valid UTF-8. `None`: binary.
fn body_text(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    match content_type {
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            let textual = essence.starts_with("text/")
                || essence.ends_with("+json")
                || essence.ends_with("+xml")
                || ct.contains("charset=")
                || matches!(
                    essence,
                    "application/json"
                        | "application/xml"
                        | "application/javascript"
                        | "application/ecmascript"
                        | "application/x-www-form-urlencoded"
                        | "application/yaml"
                        | "application/x-yaml"
                        | "application/toml"
                        | "application/x-ndjson"
                        | "application/graphql"
                );
            textual.then(|| String::from_utf8_lossy(body).into_owned())
        }
        None => match std::str::from_utf8(body) {
            Ok(s) => Some(s.to_string()),
            // Cut in the middle of a character: still text.
            Err(e) if e.error_len().is_none() => Some(String::from_utf8_lossy(body).into_owned()),
            Err(_) => None,
        },
    }
}
