//! `libos.toml`: model profiles and image directories, plus the environment.
//!
//! ```toml
//! image_dirs = ["./images"]          # extra image directories (relative to the file)
//!
//! [models.default]                   # the profile images use unless they name another
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"     # the key is read from this variable, never stored
//! timeout_s = 120
//! max_retries = 4
//! call_mode = "native"               # native | schema | text (default: asked of the server)
//! max_tokens = 1024                  # the answer's limit (default 1024)
//! temperature = 0.2                  # also top_p, seed, stop = ["..."]
//! context_window = 8192              # tokens per slot (default: asked of the server)
//! max_failures = 5                   # consecutive failed quanta on one error that end a process
//! extra_body = { top_k = 40 }        # sent verbatim, merged last
//! fallback = ["claude"]              # profiles a call goes to when this one is down or rate-limited
//!
//! [models.claude]
//! kind = "anthropic"                 # the Messages API (also "responses": OpenAI's Responses API)
//! base_url = "https://api.anthropic.com/v1"   # the default for this kind
//! model = "claude-sonnet-4-5"
//! api_key_env = "ANTHROPIC_API_KEY"  # the default for this kind
//!
//! [models.local]
//! kind = "scripted"                  # plays a script file instead of calling an endpoint
//! script = "script.toml"
//!
//! [mcp.time]                         # an MCP server (see `libos_mcp::config`)
//! command = "mcp-server-time"
//!
//! [http."api.github.com"]            # headers http_request adds (see `config::http`)
//! headers = { Authorization = "env:GITHUB_TOKEN" }
//! ```
//!
//! When no `default` profile is configured, `OPENAI_BASE_URL`, `OPENAI_API_KEY`
//! and `LIBOS_MODEL` define it (any one of the first and last is enough; the
//! base URL defaults to OpenAI's).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libos_images::FileError;
use libos_mcp::{ServerConfig as McpServer, ServerName, Transport as McpTransport};
use libos_tools::{CommandSpec, Registry};
use serde::Deserialize;

mod http;

use crate::model::ChatModel;
use crate::model::http::{ApiKey, HttpConfig, HttpModel};
use crate::model::retry::RetryPolicy;
use crate::model::route::Route;
use crate::model::scripted::{Script, ScriptedModel};
use crate::model::settings::{CallMode, Protocol, Sampling};

/// The default base URL when only a key or model is given.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The default base URL of `kind = "anthropic"`.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    #[serde(default)]
    image_dirs: Vec<PathBuf>,
    #[serde(default)]
    models: BTreeMap<String, ProfileToml>,
    /// `[mcp.NAME]` tables, validated by `libos_mcp::config::parse`.
    #[serde(default)]
    mcp: toml::Table,
    /// `[tools.NAME]` tables: operator-defined command tools.
    #[serde(default)]
    tools: BTreeMap<String, toml::Table>,
    /// `[http.HOST]` tables, validated by `http::parse`.
    #[serde(default)]
    http: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileToml {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    timeout_s: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    script: Option<PathBuf>,
    /// Requests per minute, shared by every process on the profile.
    #[serde(default)]
    rpm: Option<u32>,
    /// Prompt tokens per minute, shared likewise.
    #[serde(default)]
    tpm: Option<u32>,
    /// USD per million input tokens.
    #[serde(default)]
    price_in: Option<f64>,
    /// USD per million output tokens.
    #[serde(default)]
    price_out: Option<f64>,
    #[serde(default)]
    call_mode: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Vec<String>>,
    #[serde(default)]
    context_window: Option<u64>,
    #[serde(default)]
    max_failures: Option<u32>,
    #[serde(default)]
    extra_body: Option<toml::Table>,
    #[serde(default)]
    fallback: Vec<String>,
}

/// What a profile's tokens cost, in USD per million (so a token costs that
/// many micro-USD).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    /// Per million input tokens.
    pub input: f64,
    /// Per million output tokens.
    pub output: f64,
}

impl Price {
    /// The cost of a call, micro-USD.
    pub fn cost_micros(&self, input: u64, output: u64) -> u64 {
        (input as f64 * self.input + output as f64 * self.output).round() as u64
    }
}

/// A model profile.
// A configuration holds a handful of profiles: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// An HTTP endpoint (Chat Completions, Messages or Responses).
    Http(HttpConfig),
    /// A script file.
    Scripted {
        /// Profile name.
        name: String,
        /// The script's path.
        script: PathBuf,
    },
}

/// The loaded configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file it was read from, or looked for (`libos.toml` when none was
    /// given, whether or not it exists: the next start reads it).
    pub file: Option<PathBuf>,
    /// Extra image directories, absolute or relative to the working directory.
    pub image_dirs: Vec<PathBuf>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Prices by profile name (profiles without prices cost nothing).
    pub prices: BTreeMap<String, Price>,
    /// The profiles a profile's calls go to when it is down or rate-limited, in order.
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// MCP servers by name.
    pub mcp: BTreeMap<ServerName, McpServer>,
    /// Operator-defined command tools by name (checked: each makes a registry entry).
    pub tools: BTreeMap<String, CommandSpec>,
    /// The operator's headers for `http_request`, by host.
    pub http: libos_tools::OperatorHeaders,
}

/// Reads environment variables (injectable for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Why a configuration could not be loaded; its text names the file
/// (`config libos.toml: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing when named, a directory, not UTF-8, no permission).
    #[error("config {file}: {reason}")]
    Unreadable {
        /// The file, as given.
        file: String,
        /// Why.
        reason: String,
    },
    /// The file was read, but says something libos refuses: the key and why.
    #[error("config {file}: {message}")]
    Invalid {
        /// The file, as given.
        file: String,
        /// The key and what is wrong with it (`models.local: ...`).
        message: String,
    },
}

impl Config {
    /// Loads `path` if given (it must exist), else `./libos.toml` if present;
    /// then fills a missing `default` profile from the environment. Only a
    /// missing `./libos.toml` means "no configuration": one that exists but
    /// cannot be read (a directory, a FIFO, not UTF-8, no permission) is an
    /// error naming it, never silently ignored.
    pub fn load(path: Option<&Path>, env: Env<'_>) -> Result<Config, ConfigError> {
        let file_path = path.unwrap_or(Path::new("libos.toml"));
        let origin = file_path.display().to_string();
        let invalid = |message: String| ConfigError::Invalid { file: origin.clone(), message };
        let text = match libos_images::read_text(file_path) {
            Ok(t) => Some(t),
            Err(FileError::NotFound) if path.is_none() => None,
            Err(e) => return Err(ConfigError::Unreadable { file: origin.clone(), reason: e.to_string() }),
        };
        let base = path.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let file: ConfigToml = match text {
            Some(t) => toml::from_str(&t).map_err(|e| invalid(e.message().trim().replace('\n', " ")))?,
            None => ConfigToml::default(),
        };
        let mcp = libos_mcp::config::parse(&file.mcp, &base).map_err(|e| invalid(e.to_string()))?;
        let mut tools = BTreeMap::new();
        for (name, table) in file.tools {
            let err = |m: String| invalid(format!("tools.{name}: {}", m.trim().replace('\n', " ")));
            let spec: CommandSpec = table.try_into().map_err(|e: toml::de::Error| err(e.message().to_string()))?;
            libos_tools::command_tool(&name, &spec).map_err(err)?;
            tools.insert(name, spec);
        }
        let http = http::parse(&file.http).map_err(|e| invalid(e.to_string()))?;
        let mut config = Config {
            file: Some(file_path.to_path_buf()),
            image_dirs: file.image_dirs.iter().map(|d| base.join(d)).collect(),
            profiles: BTreeMap::new(),
            prices: BTreeMap::new(),
            fallbacks: BTreeMap::new(),
            mcp,
            tools,
            http,
        };
        for (name, p) in file.models {
            if p.price_in.is_some() || p.price_out.is_some() {
                let price = Price { input: p.price_in.unwrap_or(0.0), output: p.price_out.unwrap_or(0.0) };
                if !(price.input.is_finite() && price.output.is_finite() && price.input >= 0.0 && price.output >= 0.0) {
                    return Err(invalid(format!("models.{name}: prices must be non-negative numbers")));
                }
                config.prices.insert(name.clone(), price);
            }
            if !p.fallback.is_empty() {
                config.fallbacks.insert(name.clone(), p.fallback.clone());
            }
            let profile = profile_from_toml(&base, &name, p, env).map_err(invalid)?;
            config.profiles.insert(name, profile);
        }
        if !config.profiles.contains_key("default")
            && let Some(p) = default_from_env(env)
        {
            config.profiles.insert("default".to_string(), p);
        }
        for (name, chain) in &config.fallbacks {
            let err = |m: String| invalid(format!("models.{name}: fallback: {m}"));
            let mut seen = std::collections::BTreeSet::new();
            for other in chain {
                if other == name {
                    return Err(err("a profile cannot be its own fallback".to_string()));
                }
                if !config.profiles.contains_key(other) {
                    return Err(err(format!("no profile `{other}` (define [models.{other}])")));
                }
                if !seen.insert(other) {
                    return Err(err(format!("`{other}` is named twice")));
                }
            }
        }
        // A command tool named like a built-in is refused now, not at the first run.
        config.registry().map_err(|e| invalid(e.to_string()))?;
        Ok(config)
    }
}

impl Config {
    /// Everything this configuration makes libos load at start: the file
    /// itself (whether or not it exists), the image directories, the
    /// scripts of scripted profiles, and the programs of MCP servers given
    /// by path. No tool may write any of them, or an agent could choose the
    /// next run's models, keys and grants, or replace a server that is
    /// handed the operator's secrets.
    pub fn loaded_paths(&self) -> Vec<PathBuf> {
        let scripts = self.profiles.values().filter_map(|p| match p {
            Profile::Scripted { script, .. } => Some(script.clone()),
            Profile::Http(_) => None,
        });
        let servers = self.mcp.values().filter_map(|s| match &s.transport {
            McpTransport::Stdio(stdio) if stdio.command.contains('/') => Some(PathBuf::from(&stdio.command)),
            McpTransport::Stdio(_) | McpTransport::Http(_) => None,
        });
        // A command tool's program given by path runs on every call.
        let commands =
            self.tools.values().filter_map(|t| t.argv.first().filter(|p| p.starts_with('/')).map(PathBuf::from));
        self.file
            .iter()
            .cloned()
            .chain(self.image_dirs.iter().cloned())
            .chain(scripts)
            .chain(servers)
            .chain(commands)
            .collect()
    }

    /// The tools processes of this configuration may have: the built-ins
    /// and the `[tools.NAME]` command tools.
    pub fn registry(&self) -> Result<Registry, String> {
        let mut registry = Registry::builtin().clone();
        for (name, spec) in &self.tools {
            let tool = libos_tools::command_tool(name, spec).map_err(|e| format!("tools.{name}: {e}"))?;
            registry.register(tool).map_err(|e| format!("tools.{name}: {e}"))?;
        }
        Ok(registry)
    }
}

/// The profile `[models.NAME]`, or what is wrong with it (`models.NAME: ...`).
fn profile_from_toml(base: &Path, name: &str, p: ProfileToml, env: Env<'_>) -> Result<Profile, String> {
    let err = |m: String| format!("models.{name}: {m}");
    let kind = p.kind.as_deref().unwrap_or("openai");
    match Protocol::parse(kind) {
        Some(protocol) => {
            let model = p.model.clone().ok_or_else(|| err("`model` is required".to_string()))?;
            // The key stays in the environment until a request needs it.
            let api_key = match &p.api_key_env {
                Some(var) => {
                    env(var).ok_or_else(|| err(format!("environment variable {var} is not set")))?;
                    ApiKey::Env(var.clone())
                }
                None if protocol == Protocol::Messages => match env("ANTHROPIC_API_KEY") {
                    Some(_) => ApiKey::Env("ANTHROPIC_API_KEY".to_string()),
                    None => ApiKey::None,
                },
                None => key_from_env(env),
            };
            let defaults = RetryPolicy::default();
            let call_mode = match p.call_mode.as_deref() {
                None => None,
                Some(m) => {
                    let mode = CallMode::parse(m)
                        .ok_or_else(|| err(format!("call_mode `{m}` is not one of native, schema, text")))?;
                    if !protocol.modes().contains(&mode) {
                        return Err(err(format!(
                            "call_mode `{m}` needs a response_format, which the {} API does not take \
                             (kind = \"{kind}\"): use native (tool_choice any: exactly one tool_use) or text",
                            protocol.api()
                        )));
                    }
                    Some(mode)
                }
            };
            let sampling = sampling(&p).map_err(err)?;
            if let Some(why) = protocol.refuses(&sampling) {
                return Err(err(why));
            }
            if let Some(w) = p.context_window
                && w <= u64::from(sampling.max_tokens)
            {
                return Err(err(format!(
                    "context_window ({w}) must be larger than max_tokens ({}), which it reserves for the answer",
                    sampling.max_tokens
                )));
            }
            let default_base = if protocol == Protocol::Messages { ANTHROPIC_BASE_URL } else { DEFAULT_BASE_URL };
            Ok(Profile::Http(HttpConfig {
                profile: name.to_string(),
                protocol,
                base_url: p.base_url.clone().unwrap_or_else(|| default_base.to_string()),
                api_key,
                model,
                timeout: Duration::from_secs(p.timeout_s.unwrap_or(120).max(1)),
                retry: RetryPolicy { max_retries: p.max_retries.unwrap_or(defaults.max_retries), ..defaults },
                limits: crate::model::capacity::Limits { rpm: p.rpm, tpm: p.tpm },
                call_mode,
                sampling,
                context_window: p.context_window,
                max_failures: p.max_failures.unwrap_or(crate::model::DEFAULT_MAX_FAILURES).max(1),
            }))
        }
        None if kind == "scripted" => {
            let script = p.script.ok_or_else(|| err("`script` is required for kind = \"scripted\"".to_string()))?;
            Ok(Profile::Scripted { name: name.to_string(), script: base.join(script) })
        }
        None => Err(err(format!("unknown kind `{kind}` (expected openai, anthropic, responses or scripted)"))),
    }
}

/// A profile's sampling settings, checked.
fn sampling(p: &ProfileToml) -> Result<Sampling, String> {
    let max_tokens = p.max_tokens.unwrap_or(crate::model::settings::DEFAULT_MAX_TOKENS);
    if max_tokens == 0 {
        return Err("max_tokens must be at least 1".to_string());
    }
    if let Some(t) = p.temperature
        && !(t.is_finite() && (0.0..=2.0).contains(&t))
    {
        return Err(format!("temperature {t} is not between 0 and 2"));
    }
    if let Some(t) = p.top_p
        && !(t.is_finite() && t > 0.0 && t <= 1.0)
    {
        return Err(format!("top_p {t} is not in (0, 1]"));
    }
    let extra_body = match &p.extra_body {
        None => serde_json::Map::new(),
        Some(table) => match serde_json::to_value(table) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err("extra_body cannot be sent as JSON".to_string()),
        },
    };
    Ok(Sampling {
        max_tokens,
        temperature: p.temperature,
        top_p: p.top_p,
        seed: p.seed,
        stop: p.stop.clone().unwrap_or_default(),
        extra_body,
    })
}

fn key_from_env(env: Env<'_>) -> ApiKey {
    match env("OPENAI_API_KEY") {
        Some(_) => ApiKey::Env("OPENAI_API_KEY".to_string()),
        None => ApiKey::None,
    }
}

fn default_from_env(env: Env<'_>) -> Option<Profile> {
    let base_url = env("OPENAI_BASE_URL");
    let model = env("LIBOS_MODEL");
    if base_url.is_none() && model.is_none() {
        return None;
    }
    let base_url = base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let model = model.unwrap_or_else(|| "gpt-4o-mini".to_string());
    Some(Profile::Http(HttpConfig { api_key: key_from_env(env), ..HttpConfig::new("default", &base_url, &model) }))
}

/// Maps profile names to models. With an override (`--script`), every profile
/// resolves to it.
#[derive(Clone, Default)]
pub struct ModelRouter {
    models: HashMap<String, Arc<dyn ChatModel>>,
    /// Profiles with fallbacks: what their name resolves to.
    routes: HashMap<String, Arc<dyn ChatModel>>,
    prices: HashMap<String, Price>,
    unavailable: HashMap<String, String>,
    all: Option<Arc<dyn ChatModel>>,
}

impl ModelRouter {
    /// Builds every configured profile. A profile that cannot be built (a
    /// missing script) is remembered with its error and reported when used.
    pub fn from_config(config: &Config) -> ModelRouter {
        let mut router = ModelRouter {
            prices: config.prices.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ..ModelRouter::default()
        };
        for (name, profile) in &config.profiles {
            let built: Result<Arc<dyn ChatModel>, String> = match profile {
                Profile::Http(c) => HttpModel::new(c.clone()).map(|m| Arc::new(m) as _).map_err(|e| e.to_string()),
                Profile::Scripted { name, script } => {
                    Script::load(script).map(|s| Arc::new(ScriptedModel::new(name, s)) as _)
                }
            };
            match built {
                Ok(m) => {
                    router.models.insert(name.clone(), m);
                }
                Err(e) => {
                    router.unavailable.insert(name.clone(), e);
                }
            }
        }
        // A profile with fallbacks resolves to its route (of the profiles that could be built).
        for (name, chain) in &config.fallbacks {
            let Some(first) = router.models.get(name).cloned() else { continue };
            let mut models = vec![first];
            models.extend(chain.iter().filter_map(|other| router.models.get(other).cloned()));
            if let Some(route) = Route::new(models) {
                router.routes.insert(name.clone(), Arc::new(route));
            }
        }
        router
    }

    /// Every profile resolves to `model`.
    pub fn with_override(mut self, model: Arc<dyn ChatModel>) -> ModelRouter {
        self.all = Some(model);
        self
    }

    /// Registers a model under a profile name.
    pub fn insert(&mut self, profile: &str, model: Arc<dyn ChatModel>) {
        self.models.insert(profile.to_string(), model);
    }

    /// Sets a profile's prices.
    pub fn set_price(&mut self, profile: &str, price: Price) {
        self.prices.insert(profile.to_string(), price);
    }

    /// A profile's prices (none: its calls cost nothing).
    pub fn price(&self, profile: &str) -> Option<Price> {
        self.prices.get(profile).copied()
    }

    /// The model for a profile.
    pub fn get(&self, profile: &str) -> Result<Arc<dyn ChatModel>, String> {
        if let Some(m) = &self.all {
            return Ok(m.clone());
        }
        if let Some(m) = self.routes.get(profile).or_else(|| self.models.get(profile)) {
            return Ok(m.clone());
        }
        if let Some(e) = self.unavailable.get(profile) {
            return Err(format!("model profile `{profile}` is unusable: {e}"));
        }
        Err(format!(
            "no model profile `{profile}`: define [models.{profile}] in libos.toml, set OPENAI_BASE_URL or LIBOS_MODEL, or run with --script FILE"
        ))
    }
}
