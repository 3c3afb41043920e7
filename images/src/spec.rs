//! The TOML image spec and its validation into an [`Image`].

use std::collections::BTreeSet;

use libos_core::budget::Budget;
use libos_core::caps::{Effect, GrantSpec, PatternName, ResourceKind};
use libos_tools::{Registry, ServerTools, ToolName};
use serde::Deserialize;

use crate::error::ImageError;

/// The TOML file as written (the wire form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSpec {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    system_prompt: String,
    tools: Vec<String>,
    #[serde(default)]
    mcp: Vec<String>,
    #[serde(default)]
    mcp_tools: Vec<String>,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    budget: Option<toml::Table>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    repair_model: Option<String>,
    #[serde(default)]
    context: Option<ContextSpecToml>,
    #[serde(default)]
    limits: Option<LimitsToml>,
}

/// `[limits]`: what each program the process runs may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsToml {
    /// CPU time per program process, a duration (`"60s"`).
    #[serde(default)]
    cpu: Option<String>,
    /// Address space per program process, a size (`"2GiB"`).
    #[serde(default)]
    memory: Option<toml::Value>,
    /// Processes alive at once in the sandbox.
    #[serde(default)]
    processes: Option<u64>,
    /// Largest file a program may write, a size.
    #[serde(default)]
    file_size: Option<toml::Value>,
}

/// A size: a whole number of bytes, or a string with a unit (`"512MiB"`,
/// `"2GiB"`, `"64KiB"`; `KB`, `MB`, `GB` are powers of ten).
fn parse_size(value: &toml::Value) -> Result<u64, String> {
    let text = match value {
        toml::Value::Integer(n) if *n > 0 => return Ok(*n as u64),
        toml::Value::String(s) => s.trim(),
        other => return Err(format!("`{other}` is not a size (e.g. \"512MiB\")")),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a size (e.g. \"512MiB\")"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown unit `{other}` in `{text}` (KiB, MiB, GiB, KB, MB, GB)")),
    };
    n.checked_mul(scale).filter(|b| *b > 0).ok_or_else(|| format!("`{text}` is not a usable size"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextSpecToml {
    #[serde(default)]
    token_budget: Option<u32>,
    #[serde(default)]
    transcript_window: Option<u32>,
    #[serde(default)]
    recall: Option<u8>,
    #[serde(default)]
    recall_percent: Option<u8>,
}

/// How much of a process's history goes into each prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextSpec {
    /// Token budget for the whole prompt.
    pub token_budget: u32,
    /// Most recent tool calls (with results) shown in full.
    pub transcript_window: u32,
    /// Memory objects recalled into every prompt: the best `recall` matches
    /// of the goal and the last result among the objects the process may
    /// read (0, the default: none).
    pub recall: u8,
    /// The share of the token budget recalled objects may take, in percent.
    pub recall_percent: u8,
}

/// Most objects an image may recall into a prompt.
pub const MAX_RECALL: u8 = 10;

impl Default for ContextSpec {
    fn default() -> Self {
        ContextSpec { token_budget: 16_000, transcript_window: 24, recall: 0, recall_percent: 10 }
    }
}

/// An MCP server, or one of its tools, an image names (`mcp = ["time"]`,
/// `mcp_tools = ["everything/echo"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpUse {
    /// The server's name (a `[mcp.NAME]` of the configuration).
    pub server: String,
    /// One tool on the server; `None` for all of them.
    pub tool: Option<String>,
}

impl std::fmt::Display for McpUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tool {
            Some(t) => write!(f, "{}/{t}", self.server),
            None => write!(f, "{}", self.server),
        }
    }
}

/// A validated image: what a process is spawned from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Name, e.g. `assistant`.
    pub name: String,
    /// Version string.
    pub version: String,
    /// One line for `libos images`.
    pub description: String,
    /// The system prompt.
    pub system_prompt: String,
    /// The process's tool table: exactly these tools are offered and
    /// callable: those of `tools`, then the MCP tools of `mcp` and
    /// `mcp_tools` as the run's registry lists them (`SERVER__TOOL`).
    pub tools: Vec<ToolName>,
    /// The MCP servers and tools it names, in the order written.
    pub mcp: Vec<McpUse>,
    /// Why some MCP tools it names are missing from `tools` this run (a
    /// server that could not be listed at start, ...): a process of it
    /// cannot run with fewer tools than it names, so it fails with these.
    pub unavailable: Vec<String>,
    /// Grants its processes start with (a child's are attenuated by its parent's).
    pub grants: Vec<GrantSpec>,
    /// Limits its processes run under (a child's are capped by what its parent has left).
    pub budget: Budget,
    /// Model profile name (`default` when unset).
    pub model: String,
    /// The profile asked for a repair turn (after a rejected answer), if
    /// not [`Image::model`]: a stronger model to get a small one unstuck.
    pub repair_model: Option<String>,
    /// Context limits.
    pub context: ContextSpec,
    /// What each program it runs may use (`[limits]`; CPU time is further
    /// bounded by each call's time limit).
    pub limits: libos_sandbox::Limits,
    /// The TOML text it was parsed from (what the store registers).
    pub source: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Image {
    /// Parses and validates an image spec naming built-in tools only.
    /// `origin` names the file in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Image, ImageError> {
        Image::parse_with(origin, text, Registry::builtin())
    }

    /// Parses and validates an image spec whose tools are those `registry`
    /// knows (built-ins and the dynamic tools registered this run); a tool
    /// it does not know is an error naming it.
    pub fn parse_with(origin: &str, text: &str, registry: &Registry) -> Result<Image, ImageError> {
        let spec: ImageSpec = toml::from_str(text)
            .map_err(|e| ImageError::Syntax { origin: origin.to_string(), message: one_line(&e, text) })?;
        let invalid = |field: &str, message: String| ImageError::Invalid {
            origin: origin.to_string(),
            field: field.to_string(),
            message,
        };
        if !valid_name(&spec.name) {
            return Err(invalid("name", format!("`{}` is not a valid image name (use a-z, 0-9, - and _)", spec.name)));
        }
        if spec.version.trim().is_empty() {
            return Err(invalid("version", "is empty".to_string()));
        }
        if spec.system_prompt.trim().is_empty() {
            return Err(invalid("system_prompt", "is empty".to_string()));
        }
        let mut seen = BTreeSet::new();
        let mut tools = Vec::with_capacity(spec.tools.len());
        for (i, t) in spec.tools.iter().enumerate() {
            let tool = registry.name(t).map_err(|e| invalid(&format!("tools[{i}]"), e.to_string()))?;
            if !seen.insert(tool.clone()) {
                return Err(invalid(&format!("tools[{i}]"), format!("`{t}` is listed twice")));
            }
            tools.push(tool);
        }
        let (mcp, unavailable) = mcp_tools(&spec, registry, &mut tools, &mut seen).map_err(|(f, m)| invalid(&f, m))?;
        if !tools.iter().any(|t| t == "exit") {
            return Err(invalid("tools", "must include `exit`, or its processes could never finish".to_string()));
        }
        let mut grants = Vec::with_capacity(spec.grants.len());
        for (i, g) in spec.grants.iter().enumerate() {
            let grant = GrantSpec::parse(g).map_err(|e| invalid(&format!("grants[{i}]"), e))?;
            // `shell:*` is everything a shell can do: images never ship it.
            if grant.resource.kind == ResourceKind::Shell
                && grant.resource.name == PatternName::Any
                && grant.effect == Effect::Allow
            {
                return Err(invalid(&format!("grants[{i}]"), "`shell:*` may not be allowed by an image".to_string()));
            }
            grants.push(grant);
        }
        let mut budget = Budget::unlimited();
        for (key, value) in spec.budget.iter().flatten() {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.to_string(),
            };
            budget.set_from(&format!("{key}={text}")).map_err(|e| invalid(&format!("budget.{key}"), e))?;
        }
        let model = spec.model.unwrap_or_else(|| "default".to_string());
        if model.trim().is_empty() {
            return Err(invalid("model", "is empty".to_string()));
        }
        if spec.repair_model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(invalid("repair_model", "is empty".to_string()));
        }
        let defaults = ContextSpec::default();
        let context = match spec.context {
            None => defaults,
            Some(c) => ContextSpec {
                token_budget: c.token_budget.unwrap_or(defaults.token_budget),
                transcript_window: c.transcript_window.unwrap_or(defaults.transcript_window),
                recall: c.recall.unwrap_or(defaults.recall),
                recall_percent: c.recall_percent.unwrap_or(defaults.recall_percent),
            },
        };
        if context.recall > MAX_RECALL {
            return Err(invalid("context.recall", format!("{} is more than the {MAX_RECALL} allowed", context.recall)));
        }
        if !(1..=50).contains(&context.recall_percent) {
            return Err(invalid(
                "context.recall_percent",
                format!("{} is not a share of the budget between 1 and 50 percent", context.recall_percent),
            ));
        }
        if context.token_budget < 1000 {
            return Err(invalid(
                "context.token_budget",
                format!("{} is too small (at least 1000)", context.token_budget),
            ));
        }
        if context.transcript_window == 0 {
            return Err(invalid("context.transcript_window", "must be at least 1".to_string()));
        }
        let mut limits = libos_sandbox::Limits::default();
        if let Some(l) = spec.limits {
            if let Some(cpu) = &l.cpu {
                let d = libos_core::time::parse_duration(cpu).map_err(|e| invalid("limits.cpu", e))?;
                limits.cpu_s = d.as_secs().max(1);
            }
            if let Some(v) = &l.memory {
                limits.memory_bytes = parse_size(v).map_err(|e| invalid("limits.memory", e))?;
            }
            if let Some(n) = l.processes {
                if n == 0 {
                    return Err(invalid("limits.processes", "must be at least 1".to_string()));
                }
                limits.processes = n;
            }
            if let Some(v) = &l.file_size {
                limits.file_bytes = parse_size(v).map_err(|e| invalid("limits.file_size", e))?;
            }
        }
        Ok(Image {
            name: spec.name,
            version: spec.version,
            description: spec.description.trim().to_string(),
            system_prompt: spec.system_prompt.trim().to_string(),
            tools,
            mcp,
            unavailable,
            grants,
            budget,
            model,
            repair_model: spec.repair_model,
            context,
            limits,
            source: text.to_string(),
        })
    }
}

/// The MCP tools `mcp` and `mcp_tools` name, appended to `tools` (a tool
/// `tools` lists already is not listed twice), and why some are missing
/// this run; an error is (field, message).
type McpResolved = (Vec<McpUse>, Vec<String>);
fn mcp_tools(
    spec: &ImageSpec,
    registry: &Registry,
    tools: &mut Vec<ToolName>,
    seen: &mut BTreeSet<ToolName>,
) -> Result<McpResolved, (String, String)> {
    let mut uses = Vec::new();
    let mut unavailable = Vec::new();
    let named = spec.mcp.iter().map(|s| ("mcp", s.as_str(), None)).chain(spec.mcp_tools.iter().map(|t| {
        let (server, tool) = t.split_once('/').unwrap_or((t.as_str(), ""));
        ("mcp_tools", server, Some(tool))
    }));
    let (mut i_mcp, mut i_tools) = (0, 0);
    for (key, server, tool) in named {
        let i = if key == "mcp" { &mut i_mcp } else { &mut i_tools };
        let field = format!("{key}[{}]", *i);
        *i += 1;
        if tool.is_some_and(str::is_empty) {
            return Err((field, format!("`{server}` is not SERVER/TOOL (e.g. `everything/echo`)")));
        }
        let Some(listed) = registry.server(server) else {
            return Err((
                field,
                format!(
                    "image `{}` names mcp server `{server}`, which the configuration does not declare (declared: {}; \
                     add [mcp.{server}] to libos.toml)",
                    spec.name,
                    registry.server_names()
                ),
            ));
        };
        let usage = McpUse { server: server.to_string(), tool: tool.map(str::to_string) };
        if uses.contains(&usage) {
            return Err((field, format!("`{usage}` is listed twice")));
        }
        match listed {
            ServerTools::Unavailable(why) => {
                let line = format!("mcp server `{server}` has no tools this run: {why}");
                if !unavailable.contains(&line) {
                    unavailable.push(line);
                }
            }
            ServerTools::Listed(known) => {
                let picked: Vec<&ToolName> = match tool {
                    None => known.iter().map(|(_, n)| n).collect(),
                    Some(t) => match known.iter().find(|(raw, _)| raw == t) {
                        Some((_, n)) => vec![n],
                        None => {
                            let names: Vec<&str> = known.iter().map(|(raw, _)| raw.as_str()).collect();
                            return Err((
                                field,
                                format!("mcp server `{server}` has no tool `{t}` (it has: {})", names.join(", ")),
                            ));
                        }
                    },
                };
                for name in picked {
                    if seen.insert(name.clone()) {
                        tools.push(name.clone());
                    }
                }
            }
        }
        uses.push(usage);
    }
    Ok((uses, unavailable))
}

/// The TOML error on one line: `line L, column C: message` plus the key when known.
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}
