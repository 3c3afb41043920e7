//! Python callables as tools of the registry.
//!
//! A Python tool is a dynamic tool like an operator's command tool: every
//! call needs `exec tool:NAME` (so an image grants it, outright or behind
//! `ask`), its arguments are validated against its JSON schema before
//! anything runs, it is an external effect (intent record first, `unknown`
//! after a crash, answered from the record by a replay), and its call and
//! result are audited like any other. The callable gets the arguments as
//! keyword arguments, on a blocking thread that attaches to the
//! interpreter. What it returns is the result the model sees: a `str` as it
//! is, anything else as JSON; an exception is a tool error the model sees
//! (`ValueError: ...`), never a failure of the process.
//!
//! A call that is cancelled (its process killed, the scheduler stopping) is
//! no longer waited for, but the Python function runs to its end: Python
//! code cannot be interrupted from another thread.

use std::sync::Arc;

use libos_kernel::caps::{Resource, ResourceKind, Right};
use libos_tools::{DynamicTool, Invocation, ToolContext, ToolFuture, ToolHandler, ToolName, ToolOutput};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::Value;

use crate::convert::to_py;
use crate::error;

/// Longest result a Python tool may return, in bytes (as for `read_file`).
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

struct PyTool {
    func: Arc<Py<PyAny>>,
}

impl ToolHandler for PyTool {
    fn call<'a>(&'a self, call: Invocation<'a>, _ctx: &'a ToolContext) -> ToolFuture<'a> {
        let func = self.func.clone();
        let args = call.args.clone();
        Box::pin(async move {
            let ran = tokio::task::spawn_blocking(move || Python::attach(|py| run(py, &func, args))).await;
            match ran {
                Ok(output) => output,
                Err(e) => ToolOutput::Error(format!("the Python tool stopped: {e}")),
            }
        })
    }
}

/// Calls `func(**args)` and turns what happens into the tool's output.
fn run(py: Python<'_>, func: &Py<PyAny>, args: serde_json::Map<String, Value>) -> ToolOutput {
    let kwargs = match to_py(py, &Value::Object(args)).and_then(|d| Ok(d.cast_into::<PyDict>()?)) {
        Ok(d) => d,
        Err(e) => return ToolOutput::Error(format!("cannot pass the arguments to Python: {e}")),
    };
    let text = match func.bind(py).call((), Some(&kwargs)) {
        Ok(value) => result_text(&value),
        Err(e) => return ToolOutput::Error(exception_line(py, &e)),
    };
    match text {
        Ok(text) if text.len() > MAX_RESULT_BYTES => {
            ToolOutput::Error(format!("the tool returned {} bytes, over the limit of {MAX_RESULT_BYTES}", text.len()))
        }
        Ok(text) => ToolOutput::Ok(text),
        Err(e) => ToolOutput::Error(e),
    }
}

/// A returned value as the result text: a `str` as it is, JSON otherwise.
fn result_text(value: &Bound<'_, PyAny>) -> Result<String, String> {
    if let Ok(s) = value.cast::<PyString>() {
        return s
            .to_cow()
            .map(|c| c.into_owned())
            .map_err(|e| format!("the tool returned text that is not UTF-8: {e}"));
    }
    pythonize::depythonize::<Value>(value)
        .map(|v| v.to_string())
        .map_err(|e| format!("the tool's return value must be a str or JSON-like (dicts, lists, numbers): {e}"))
}

/// `TypeName: message`, the way Python prints the last line of a traceback.
fn exception_line(py: Python<'_>, e: &PyErr) -> String {
    let name = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".to_string());
    let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    if message.is_empty() { name } else { format!("{name}: {message}") }
}

/// The registry entry for the Python callable `func` named `name`.
pub fn python_tool(name: &str, description: &str, schema: Value, func: Py<PyAny>) -> PyResult<DynamicTool> {
    let tool_name = ToolName::new(name).map_err(|e| error::invalid(e.to_string()))?;
    let needs = vec![(Resource::new(ResourceKind::Tool, name), Right::Exec)];
    let handler = Arc::new(PyTool { func: Arc::new(func) });
    DynamicTool::new(tool_name, format!("python tool {name}"), description, schema, needs, handler)
        .map_err(|e| error::invalid(e.to_string()))
}
