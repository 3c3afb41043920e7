//! The tool registry: every tool libos can offer, built-in or dynamic, as
//! one kind of [`Entry`], and the per-process [`ToolSet`] an image names.
//!
//! Built-ins come from `builtin::entries`; dynamic tools (MCP servers,
//! operator-defined tools, ...) are registered at start with their source's
//! schema ([`Registry::register`]). A dynamic tool may not take a built-in's
//! name, nor another dynamic tool's, and its name must be safe on the wire
//! (OpenAI function names: 1 to 64 of `a-z A-Z 0-9 _ -`). The MCP servers
//! the configuration declares are known by name ([`ServerTools`]), so that
//! an image can name a server's tools as a whole.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::dynamic::{DynamicTool, ToolAnnotations};
use crate::spec::ToolSpec;
use crate::tool::CallArgs;

pub use libos_core::tool_name::{BadToolName, ToolName};

/// Why a tool could not be registered or named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No tool of that name is registered.
    #[error("unknown tool `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Comma-separated registered names.
        known: String,
    },
    /// A dynamic tool named like a built-in.
    #[error("tool `{name}` is a built-in: a {source_name} tool may not take its name")]
    Builtin {
        /// The name.
        name: String,
        /// Where the dynamic tool came from (its source's label).
        source_name: String,
    },
    /// Two dynamic tools of one name.
    #[error("tool `{name}` is registered twice ({first} and {second})")]
    Duplicate {
        /// The name.
        name: String,
        /// The first one's source.
        first: String,
        /// The second one's source.
        second: String,
    },
    /// A name unsafe on the wire.
    #[error("tool name `{name}` is not usable: {reason}")]
    BadName {
        /// The name, escaped and cut.
        name: String,
        /// Why.
        reason: String,
    },
    /// A schema the validator cannot compile, or that does not describe an object.
    #[error("tool `{name}` has an unusable input schema: {reason}")]
    BadSchema {
        /// The tool.
        name: String,
        /// Why.
        reason: String,
    },
    /// A dynamic tool that would need nothing from the capability table.
    #[error("tool `{name}` needs no grant: a dynamic tool must name what it touches (e.g. `exec mcp:SERVER/TOOL`)")]
    NoNeeds {
        /// The tool.
        name: String,
    },
}

impl From<BadToolName> for RegistryError {
    fn from(e: BadToolName) -> RegistryError {
        RegistryError::BadName {
            name: e.name,
            reason: "tool names are 1 to 64 of a-z, A-Z, 0-9, _ and - (what model APIs accept)".to_string(),
        }
    }
}

/// How an entry parses its arguments and runs.
pub(crate) enum Source {
    /// A built-in: serde into its typed arguments.
    Builtin(fn(serde_json::Value) -> Result<Arc<dyn CallArgs>, String>),
    /// A dynamic tool: its JSON schema, then its handler.
    Dynamic(Arc<DynamicTool>),
}

/// One tool of the registry.
pub struct Entry {
    pub(crate) spec: ToolSpec,
    pub(crate) source: Source,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("name", &self.spec.name).field("builtin", &self.is_builtin()).finish()
    }
}

impl Entry {
    /// A built-in tool's entry, its schema generated from its arguments type.
    pub fn builtin<T: crate::tool::Tool>() -> Entry {
        Entry {
            spec: ToolSpec {
                name: ToolName::builtin(T::NAME),
                description: T::DESCRIPTION.to_string(),
                parameters: crate::tool::schema_for::<T::Args>(),
            },
            source: Source::Builtin(crate::tool::parse_typed::<T>),
        }
    }

    /// The tool's name.
    pub fn name(&self) -> &ToolName {
        &self.spec.name
    }

    /// Name, description and argument schema, as the model sees them.
    pub fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// Whether libos ships it.
    pub fn is_builtin(&self) -> bool {
        matches!(self.source, Source::Builtin(_))
    }

    /// A dynamic tool's definition; `None` for built-ins.
    pub fn dynamic(&self) -> Option<&Arc<DynamicTool>> {
        match &self.source {
            Source::Dynamic(d) => Some(d),
            Source::Builtin(_) => None,
        }
    }

    /// A dynamic tool's display-only hints (never authority).
    pub fn annotations(&self) -> Option<&ToolAnnotations> {
        self.dynamic().map(|d| d.annotations())
    }
}

/// What a run knows of one MCP server images may name (`mcp = [..]`,
/// `mcp_tools = [..]`): the tools it listed at start, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTools {
    /// Listed at start: each tool's name on the server and its registered name.
    Listed(Vec<(String, ToolName)>),
    /// Declared but without tools this run (it could not be listed, or no
    /// image of the run's catalog named it), and why.
    Unavailable(String),
}

/// Every tool this run can offer, by name.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Vec<Arc<Entry>>,
    index: HashMap<ToolName, usize>,
    /// MCP servers the configuration declares, by name.
    servers: BTreeMap<String, ServerTools>,
}

impl Registry {
    /// The built-in tools alone, built once.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let entries: Vec<Arc<Entry>> = crate::builtin::entries().into_iter().map(Arc::new).collect();
            let index = entries.iter().enumerate().map(|(i, e)| (e.name().clone(), i)).collect();
            Registry { entries, index, servers: BTreeMap::new() }
        })
    }

    /// Adds a dynamic tool. Refused: a built-in's name, a name already
    /// registered (both sources named).
    pub fn register(&mut self, tool: DynamicTool) -> Result<(), RegistryError> {
        let name = tool.name().clone();
        if let Some(&i) = self.index.get(&name) {
            return Err(match self.entries[i].dynamic() {
                None => RegistryError::Builtin { name: name.to_string(), source_name: tool.source().to_string() },
                Some(first) => RegistryError::Duplicate {
                    name: name.to_string(),
                    first: first.source().to_string(),
                    second: tool.source().to_string(),
                },
            });
        }
        let entry = Entry { spec: tool.spec(), source: Source::Dynamic(Arc::new(tool)) };
        self.index.insert(name, self.entries.len());
        self.entries.push(Arc::new(entry));
        Ok(())
    }

    /// Declares an MCP server images may name, with its registered tools
    /// (registered with [`Registry::register`]) or why it has none.
    pub fn declare_server(&mut self, name: &str, tools: ServerTools) {
        self.servers.insert(name.to_string(), tools);
    }

    /// A declared MCP server.
    pub fn server(&self, name: &str) -> Option<&ServerTools> {
        self.servers.get(name)
    }

    /// The declared MCP servers, by name.
    pub fn servers(&self) -> impl Iterator<Item = (&str, &ServerTools)> {
        self.servers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The declared MCP servers' names, comma-separated (`none` when none), for messages.
    pub fn server_names(&self) -> String {
        match self.servers.is_empty() {
            true => "none".to_string(),
            false => self.servers.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
        }
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Entry>> {
        self.index.get(name).map(|&i| &self.entries[i])
    }

    /// Every entry, built-ins first, then dynamic tools in registration order.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.iter()
    }

    /// Comma-separated names, for messages.
    pub fn known(&self) -> String {
        self.entries.iter().map(|e| e.name().as_str()).collect::<Vec<_>>().join(", ")
    }

    /// `name` as a registered tool's name, or an error naming it.
    pub fn name(&self, name: &str) -> Result<ToolName, RegistryError> {
        self.get(name)
            .map(|e| e.name().clone())
            .ok_or_else(|| RegistryError::Unknown { name: crate::call::one_line(name, 80), known: self.known() })
    }

    /// The tool table of a process: exactly these tools, in this order.
    pub fn table(&self, names: &[ToolName]) -> Result<ToolSet, RegistryError> {
        let entries = names
            .iter()
            .map(|n| {
                self.get(n.as_str())
                    .cloned()
                    .ok_or_else(|| RegistryError::Unknown { name: n.to_string(), known: self.known() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ToolSet { names: names.to_vec(), entries })
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin().clone()
    }
}

/// The tools one process may call, in the order they are offered: what
/// [`crate::ToolCall::parse`] accepts and what the prompt lists.
#[derive(Debug, Clone)]
pub struct ToolSet {
    names: Vec<ToolName>,
    entries: Vec<Arc<Entry>>,
}

impl ToolSet {
    /// Every built-in tool (tests, fuzzing, experiments).
    pub fn builtins() -> ToolSet {
        let registry = Registry::builtin();
        ToolSet {
            names: registry.entries.iter().map(|e| e.name().clone()).collect(),
            entries: registry.entries.clone(),
        }
    }

    /// The names, in order.
    pub fn names(&self) -> &[ToolName] {
        &self.names
    }

    /// The entry named `name`, if the process has it.
    pub fn get(&self, name: &str) -> Option<&Arc<Entry>> {
        self.entries.iter().find(|e| e.name().as_str() == name)
    }

    /// Whether the process has the tool.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The schemas, in order, for the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries.iter().map(|e| e.spec.clone()).collect()
    }
}
