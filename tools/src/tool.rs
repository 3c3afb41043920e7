//! What a built-in tool is: one type implementing [`Tool`], in one file
//! under `builtin/`, listed once in `builtin::entries`.
//!
//! A tool's arguments are one serde type (`deny_unknown_fields`) that is
//! fully typed when it is deserialised: a value that would only be checked
//! later (a signal's action, a child's budget, a grant) is parsed into its
//! kernel type by the deserialiser, so a call that parsed can be dispatched
//! without a second conversion that might fail. The JSON schema the model
//! sees is generated from the same type ([`schema_for`]), so the schema and
//! the parser cannot drift apart.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use libos_core::syscall::Need;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::dispatch::{Caller, Dispatch, Refusal, ToolContext, ToolOutput};

/// A built-in tool.
pub trait Tool: 'static {
    /// The typed arguments; their schema is what the model sees.
    type Args: DeserializeOwned + Serialize + JsonSchema + fmt::Debug + Clone + Send + Sync + 'static;
    /// The tool's name on the wire.
    const NAME: &'static str;
    /// What it does, for the model.
    const DESCRIPTION: &'static str;
    /// Whether a call reaches the world beyond this machine by itself (not
    /// through a program), as `http_request` does: a replay answers such a
    /// call from the record rather than sending it again.
    const OPEN_WORLD: bool = false;

    /// Checks that the type cannot express (a size in bytes, a text that
    /// must not be blank), run once at parse time. A failure is a
    /// model-visible rejection.
    fn check(_args: &Self::Args) -> Result<(), String> {
        Ok(())
    }

    /// The (resource, right) pairs a call touches; none by default.
    fn needs(_args: &Self::Args, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        Ok(Vec::new())
    }

    /// How a call commits: `Local` and `External` calls are run with
    /// [`Tool::run`], kernel calls by the kernel in the commit.
    fn dispatch(args: &Self::Args, caller: Caller<'_>) -> Result<Dispatch, String>;

    /// Runs a local or external call. Kernel calls never get here.
    fn run(_args: &Self::Args, _ctx: &ToolContext) -> ToolOutput {
        ToolOutput::Error(format!("`{}` is committed by the kernel", Self::NAME))
    }
}

/// The JSON schema of `T` as models see it: draft 2020-12 without `$schema`,
/// every subschema inline (no `$defs`/`$ref`, which small models handle
/// badly), `Option<T>` as `T` not required (rather than a nullable type),
/// no numeric `format`s, no title, and no description at the root (the
/// tool's description says what it does).
pub fn schema_for<T: JsonSchema>() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    tidy(&mut value);
    if let Some(obj) = value.as_object_mut() {
        obj.remove("title");
        obj.remove("description");
        // Some providers refuse an object schema without `properties`.
        obj.entry("properties").or_insert_with(|| serde_json::json!({}));
    }
    value
}

/// Drops what only adds noise for a model: numeric `format`s, and the
/// `null` an `Option<T>` adds (`"type": ["string", "null"]`, `"anyOf": [T,
/// {"type": "null"}]`): leaving the field out is how to say nothing.
fn tidy(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(obj) => {
            if let Some(serde_json::Value::Array(types)) = obj.get_mut("type")
                && types.len() == 2
                && types.iter().any(|t| t == "null")
            {
                types.retain(|t| t != "null");
                if let Some(one) = types.pop() {
                    obj.insert("type".into(), one);
                }
            }
            if let Some(serde_json::Value::Array(words)) = obj.get_mut("enum") {
                words.retain(|w| !w.is_null());
            }
            let null = serde_json::json!({"type": "null"});
            if let Some(serde_json::Value::Array(any)) = obj.get("anyOf")
                && any.len() == 2
                && any.contains(&null)
                && let Some(serde_json::Value::Object(inner)) = any.iter().find(|s| **s != null).cloned()
            {
                obj.remove("anyOf");
                for (k, v) in inner {
                    // The field's own description wins over its type's.
                    obj.entry(k).or_insert(v);
                }
            }
            if obj.get("format").and_then(|f| f.as_str()).is_some_and(|f| {
                matches!(f, "int8" | "int16" | "int32" | "int64" | "uint" | "uint8" | "uint16" | "uint32" | "uint64")
                    || matches!(f, "float" | "double")
            }) {
                obj.remove("format");
            }
            obj.values_mut().for_each(tidy);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// A call's typed arguments with its tool's behaviour, type-erased so the
/// registry can hold every tool in one table.
pub(crate) trait CallArgs: Any + Send + Sync + fmt::Debug {
    fn needs(&self, caller: Caller<'_>) -> Result<Vec<Need>, Refusal>;
    fn dispatch(&self, caller: Caller<'_>) -> Result<Dispatch, String>;
    fn run(&self, ctx: &ToolContext) -> ToolOutput;
    /// Canonical JSON: sorted keys, compact.
    fn canonical(&self) -> String;
    /// See [`Tool::OPEN_WORLD`].
    fn open_world(&self) -> bool {
        false
    }
    /// A dynamic tool's call, which runs asynchronously through its handler.
    fn dynamic(&self) -> Option<&crate::dynamic::DynamicCall> {
        None
    }
}

/// A built-in's arguments, as the registry holds them.
pub(crate) struct Typed<T: Tool>(pub(crate) T::Args);

impl<T: Tool> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Tool> CallArgs for Typed<T> {
    fn needs(&self, caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        T::needs(&self.0, caller)
    }

    fn dispatch(&self, caller: Caller<'_>) -> Result<Dispatch, String> {
        T::dispatch(&self.0, caller)
    }

    fn run(&self, ctx: &ToolContext) -> ToolOutput {
        T::run(&self.0, ctx)
    }

    fn canonical(&self) -> String {
        serde_json::to_value(&self.0).map(|v| v.to_string()).unwrap_or_else(|_| "{}".to_string())
    }

    fn open_world(&self) -> bool {
        T::OPEN_WORLD
    }
}

/// Deserialises and checks a built-in's arguments.
pub(crate) fn parse_typed<T: Tool>(value: serde_json::Value) -> Result<Arc<dyn CallArgs>, String> {
    let args: T::Args = serde_json::from_value(value).map_err(|e| e.to_string())?;
    T::check(&args)?;
    Ok(Arc::new(Typed::<T>(args)))
}
