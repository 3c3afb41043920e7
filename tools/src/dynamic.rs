//! Dynamic tools: entries whose schema comes from their source at run time
//! (an MCP server, an operator's `[tools.NAME]`, ...), run by a
//! [`ToolHandler`] the source provides.
//!
//! A dynamic call is an external effect like `shell`: the runtime writes an
//! intent record first, runs the handler with the [`ToolContext`], and
//! records the result; a crash between leaves `unknown`, never a re-run.
//! Its arguments are validated against the tool's JSON schema (compiled
//! once, when the tool is made) before anything runs; what it needs from
//! the capability table is fixed by whoever registers it (e.g. `exec
//! mcp:git/git_push`), never by the model, and a dynamic tool must need
//! something. Annotations (MCP's `readOnlyHint`, ...) are shown to humans
//! and never consulted for authority.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libos_core::caps::{Resource, Right};
use libos_core::syscall::Need;

use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};
use crate::registry::{RegistryError, ToolName};
use crate::spec::ToolSpec;
use crate::tool::CallArgs;

/// What a handler's call returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolOutput> + Send + 'a>>;

/// One call of a dynamic tool, as its handler gets it: already validated
/// against the tool's schema and checked against the caller's grants.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The tool called.
    pub tool: &'a ToolName,
    /// The arguments, valid under the tool's schema.
    pub args: &'a serde_json::Map<String, serde_json::Value>,
    /// The same as canonical JSON (what the audit and an approval hold).
    pub canonical: &'a str,
}

/// Runs a dynamic tool's calls (an MCP client, a command runner, ...).
///
/// The handler owns time and cancellation within what the context says:
/// `ctx.time_left` bounds the call (the runtime also stops waiting when it
/// runs out), and the future is dropped when the call is cancelled (the
/// process was killed, the scheduler is stopping), so whatever it started
/// must stop when it is dropped.
pub trait ToolHandler: Send + Sync + 'static {
    /// Runs one call.
    fn call<'a>(&'a self, call: Invocation<'a>, ctx: &'a ToolContext) -> ToolFuture<'a>;

    /// Needs that depend on the arguments (say, the host of a URL), beyond
    /// the tool's fixed ones. A failure is a model-visible error.
    fn needs(&self, _call: Invocation<'_>) -> Result<Vec<(Resource, Right)>, String> {
        Ok(Vec::new())
    }
}

/// Display-only hints a tool's source gives (MCP tool annotations). Never
/// authority: grants decide, whatever a tool says of itself. The kernel's
/// type, so a parked call's request can carry them to approvals.
pub type ToolAnnotations = libos_core::ipc::ToolHints;

/// A tool whose schema and behaviour come from outside libos.
pub struct DynamicTool {
    name: ToolName,
    description: String,
    schema: serde_json::Value,
    validator: Arc<jsonschema::Validator>,
    needs: Vec<(Resource, Right)>,
    annotations: ToolAnnotations,
    source: String,
    handler: Arc<dyn ToolHandler>,
}

impl fmt::Debug for DynamicTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicTool")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl DynamicTool {
    /// A dynamic tool named `name` (wire-safe; see [`ToolName::new`] and
    /// [`ToolName::mapped`]), from `source` (a label for messages, e.g.
    /// `mcp server git`), taking arguments valid under `input_schema` (a
    /// JSON schema of an object; compiled here, once), needing `needs`
    /// (at least one), run by `handler`.
    pub fn new(
        name: ToolName,
        source: impl Into<String>,
        description: impl Into<String>,
        input_schema: serde_json::Value,
        needs: Vec<(Resource, Right)>,
        handler: Arc<dyn ToolHandler>,
    ) -> Result<DynamicTool, RegistryError> {
        let bad = |reason: String| RegistryError::BadSchema { name: name.to_string(), reason };
        let Some(obj) = input_schema.as_object() else {
            return Err(bad("it is not a JSON object".to_string()));
        };
        if obj.get("type").is_some_and(|t| t != "object") {
            return Err(bad("its `type` is not `object` (tool arguments are an object)".to_string()));
        }
        let validator =
            jsonschema::validator_for(&input_schema).map_err(|e| bad(crate::call::one_line(&e.to_string(), 300)))?;
        if needs.is_empty() {
            return Err(RegistryError::NoNeeds { name: name.to_string() });
        }
        Ok(DynamicTool {
            name,
            description: description.into(),
            schema: input_schema,
            validator: Arc::new(validator),
            needs,
            annotations: ToolAnnotations::default(),
            source: source.into(),
            handler,
        })
    }

    /// With display-only hints.
    pub fn with_annotations(mut self, annotations: ToolAnnotations) -> DynamicTool {
        self.annotations = annotations;
        self
    }

    /// The same tool run by another handler (replay answers from the record).
    pub fn with_handler(&self, handler: Arc<dyn ToolHandler>) -> DynamicTool {
        DynamicTool {
            name: self.name.clone(),
            description: self.description.clone(),
            schema: self.schema.clone(),
            validator: self.validator.clone(),
            needs: self.needs.clone(),
            annotations: self.annotations.clone(),
            source: self.source.clone(),
            handler,
        }
    }

    /// Its name.
    pub fn name(&self) -> &ToolName {
        &self.name
    }

    /// Where it came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Its input schema, as its source declared it.
    pub fn schema(&self) -> &serde_json::Value {
        &self.schema
    }

    /// What every call of it needs.
    pub fn needs(&self) -> &[(Resource, Right)] {
        &self.needs
    }

    /// Its display-only hints.
    pub fn annotations(&self) -> &ToolAnnotations {
        &self.annotations
    }

    pub(crate) fn spec(&self) -> ToolSpec {
        ToolSpec { name: self.name.clone(), description: self.description.clone(), parameters: self.schema.clone() }
    }

    /// Validates `value` against the schema: the first violation, naming
    /// the property and why, or the typed call.
    pub(crate) fn parse(self: &Arc<Self>, value: serde_json::Value) -> Result<Arc<dyn CallArgs>, String> {
        if let Some(e) = self.validator.iter_errors(&value).next() {
            let at = e.instance_path.to_string();
            let at = if at.is_empty() { "the arguments".to_string() } else { format!("`{at}`") };
            return Err(format!("{at}: {e}"));
        }
        let serde_json::Value::Object(args) = value else {
            return Err("expected an object".to_string());
        };
        let canonical = serde_json::Value::Object(args.clone()).to_string();
        Ok(Arc::new(DynamicCall { tool: self.clone(), args, canonical }))
    }
}

/// A parsed call of a dynamic tool.
pub struct DynamicCall {
    tool: Arc<DynamicTool>,
    args: serde_json::Map<String, serde_json::Value>,
    canonical: String,
}

impl fmt::Debug for DynamicCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.tool.name, self.canonical)
    }
}

impl DynamicCall {
    fn invocation(&self) -> Invocation<'_> {
        Invocation { tool: &self.tool.name, args: &self.args, canonical: &self.canonical }
    }

    /// Its tool's display-only hints.
    pub(crate) fn annotations(&self) -> &ToolAnnotations {
        &self.tool.annotations
    }

    /// Runs the call through its handler.
    pub(crate) fn run<'a>(&'a self, ctx: &'a ToolContext) -> ToolFuture<'a> {
        self.tool.handler.call(self.invocation(), ctx)
    }
}

impl CallArgs for DynamicCall {
    fn needs(&self, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        let extra = self.tool.handler.needs(self.invocation()).map_err(Refusal::Invalid)?;
        Ok(self.tool.needs.iter().chain(extra.iter()).map(|(r, right)| Need::grant(r.clone(), *right)).collect())
    }

    fn dispatch(&self, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::External)
    }

    fn run(&self, _ctx: &ToolContext) -> ToolOutput {
        ToolOutput::Error(format!("`{}` runs through its handler (ToolCall::run_dynamic)", self.tool.name))
    }

    fn canonical(&self) -> String {
        self.canonical.clone()
    }

    fn dynamic(&self) -> Option<&DynamicCall> {
        Some(self)
    }
}
