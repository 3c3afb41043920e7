//! JSON values to Python objects and back.
//!
//! Everything libos hands to Python is the JSON shape the HTTP API and
//! the CLI's `--json` use (`libos_console::wire`), as plain dicts, lists,
//! strings and numbers: the field names are the same everywhere, and a
//! list of processes goes straight into `csv.DictWriter` or a DataFrame.

use pyo3::prelude::*;
use serde_json::Value;

use crate::error;

/// A JSON value as a Python object.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| error::other(format!("cannot convert a value to Python: {e}")))
}

/// A list of JSON values as a Python list.
pub fn list_to_py<'py>(py: Python<'py>, values: Vec<Value>) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &Value::Array(values))
}

/// A Python object as JSON (dicts with string keys, lists, tuples,
/// strings, numbers, booleans, None); `what` names it in the error.
pub fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    pythonize::depythonize::<Value>(obj)
        .map_err(|e| error::invalid(format!("{what} must be JSON-like (dicts, lists, strings, numbers): {e}")))
}

/// Text that holds JSON as the value it holds, other text as itself: how
/// an exit result reaches Python.
pub fn json_or_text(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
