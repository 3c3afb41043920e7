//! `libos.ScriptedModel`: the runtime's scripted model, written from Python.
//!
//! A script is a list of agents, each a list of steps that a process
//! matching it plays, one per model call (`libos_runtime::Script`, the same
//! as a `--script` file). From Python a step is a tool call, `("exit",
//! {"result": "done"})`, or a dict: `{"tool": ..., "args": {...}, "say":
//! ..., "delay_ms": ...}`, `{"text": ...}` (an answer with no native call),
//! `{"calls": [(tool, args), ...]}` (several at once, which the quantum
//! rejects), `{"tool": ..., "raw_args": "{not json"}`. An agent without an
//! image plays for every image the run knows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libos_runtime::model::scripted::{Agent, Step};
use libos_runtime::{Script, ScriptedModel as Scripted};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::Value;

use crate::convert::from_py;
use crate::error;

/// One agent of a script as written from Python.
#[derive(Debug, Clone)]
struct PyAgent {
    image: Option<String>,
    goal_contains: Option<String>,
    steps: Vec<Step>,
}

/// A model that plays scripted tool calls: for tests, demos and
/// experiments that need no network and whose outcome is known.
///
/// ``ScriptedModel(steps, image=None, goal_contains=None)`` plays `steps`
/// for every process of `image` (every image when None) whose goal
/// contains `goal_contains`; `add` appends more agents (the first that
/// matches a process plays it). A step is ``(tool, args)`` or a dict
/// with ``tool``/``args`` (and optional ``say``, ``delay_ms``), ``text``,
/// ``calls`` or ``raw_args``. The step played is the process's model-call
/// count, so a script resumes where it was after a restart.
#[pyclass(module = "libos._libos", frozen)]
pub struct ScriptedModel {
    agents: Mutex<Vec<PyAgent>>,
    /// A script given whole (`from_toml`), played before `agents`.
    parsed: Option<Script>,
}

#[pymethods]
impl ScriptedModel {
    #[new]
    #[pyo3(signature = (steps=None, *, image=None, goal_contains=None))]
    fn new(
        steps: Option<&Bound<'_, PyAny>>,
        image: Option<String>,
        goal_contains: Option<String>,
    ) -> PyResult<ScriptedModel> {
        let model = ScriptedModel { agents: Mutex::new(Vec::new()), parsed: None };
        if let Some(steps) = steps {
            model.push(steps, image, goal_contains)?;
        }
        Ok(model)
    }

    /// A script in the TOML format of ``libos run --script FILE``.
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<ScriptedModel> {
        let script = Script::parse("python", text).map_err(error::invalid)?;
        Ok(ScriptedModel { agents: Mutex::new(Vec::new()), parsed: Some(script) })
    }

    /// Adds an agent playing `steps` (see the class); returns the model.
    #[pyo3(signature = (steps, *, image=None, goal_contains=None))]
    fn add<'py>(
        slf: Bound<'py, Self>,
        steps: &Bound<'py, PyAny>,
        image: Option<String>,
        goal_contains: Option<String>,
    ) -> PyResult<Bound<'py, Self>> {
        slf.get().push(steps, image, goal_contains)?;
        Ok(slf)
    }

    fn __repr__(&self) -> String {
        let agents = self.lock();
        let parsed = self.parsed.as_ref().map_or(0, |s| s.agents.len());
        format!("ScriptedModel({} agents)", agents.len() + parsed)
    }
}

impl ScriptedModel {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PyAgent>> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, steps: &Bound<'_, PyAny>, image: Option<String>, goal_contains: Option<String>) -> PyResult<()> {
        if steps.is_instance_of::<pyo3::types::PyString>() || steps.is_instance_of::<PyDict>() {
            return Err(error::invalid("steps must be a list of steps"));
        }
        let mut parsed = Vec::new();
        for (i, step) in steps.try_iter()?.enumerate() {
            parsed.push(step_from_py(&step?).map_err(|e| error::invalid(format!("step {i}: {e}")))?);
        }
        self.lock().push(PyAgent { image, goal_contains, steps: parsed });
        Ok(())
    }

    /// The runtime's model for a run whose images are `images`.
    pub fn build<'a>(&self, images: impl Iterator<Item = &'a str> + Clone) -> Arc<Scripted> {
        let mut agents = self.parsed.as_ref().map(|s| s.agents.clone()).unwrap_or_default();
        for a in self.lock().iter() {
            let names: Vec<String> = match &a.image {
                Some(image) => vec![image.clone()],
                None => images.clone().map(str::to_string).collect(),
            };
            for image in names {
                agents.push(Agent { image, goal_contains: a.goal_contains.clone(), steps: a.steps.clone() });
            }
        }
        Arc::new(Scripted::new("scripted", Script { origin: "python".to_string(), agents }))
    }
}

/// A call's arguments as the JSON text the model would send.
fn args_text(args: Option<&Bound<'_, PyAny>>) -> Result<String, String> {
    let value = match args {
        None => Value::Object(Default::default()),
        Some(a) if a.is_none() => Value::Object(Default::default()),
        Some(a) => from_py(a, "args").map_err(|e| e.to_string())?,
    };
    if !value.is_object() {
        return Err("args must be a dict".to_string());
    }
    Ok(value.to_string())
}

/// `(tool, args)` or `(tool,)`.
fn call_from_tuple(t: &Bound<'_, PyTuple>) -> Result<(String, String), String> {
    let tool: String = t.get_item(0).and_then(|x| x.extract()).map_err(|_| "a call is (tool, args)".to_string())?;
    if t.len() > 2 {
        return Err("a call is (tool, args)".to_string());
    }
    let args = t.get_item(1).ok();
    Ok((tool, args_text(args.as_ref())?))
}

fn step_from_py(step: &Bound<'_, PyAny>) -> Result<Step, String> {
    if let Ok(t) = step.cast::<PyTuple>() {
        return Ok(Step { text: None, calls: vec![call_from_tuple(t)?], delay: None });
    }
    let d = step.cast::<PyDict>().map_err(|_| "a step is (tool, args) or a dict".to_string())?;
    let get = |key: &str| d.get_item(key).ok().flatten().filter(|v| !v.is_none());
    let string = |key: &str| -> Result<Option<String>, String> {
        get(key).map(|v| v.extract::<String>().map_err(|_| format!("`{key}` must be a string"))).transpose()
    };
    for key in d.keys() {
        let key: String = key.extract().map_err(|_| "step keys are strings".to_string())?;
        if !["tool", "args", "raw_args", "say", "text", "calls", "delay_ms"].contains(&key.as_str()) {
            return Err(format!("unknown key `{key}` (a step has tool, args, raw_args, say, text, calls, delay_ms)"));
        }
    }
    let delay = get("delay_ms")
        .map(|v| v.extract::<u64>().map(Duration::from_millis).map_err(|_| "`delay_ms` must be a whole number"))
        .transpose()?;
    let kinds = [get("tool").is_some(), get("text").is_some(), get("calls").is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("give exactly one of `tool`, `text` or `calls`".to_string());
    }
    if get("args").is_some() && get("raw_args").is_some() {
        return Err("give `args` or `raw_args`, not both".to_string());
    }
    let say = string("say")?;
    if let Some(tool) = string("tool")? {
        let args = match string("raw_args")? {
            Some(raw) => raw,
            None => args_text(get("args").as_ref())?,
        };
        return Ok(Step { text: say, calls: vec![(tool, args)], delay });
    }
    if let Some(text) = string("text")? {
        return Ok(Step { text: Some(text), calls: Vec::new(), delay });
    }
    let calls = get("calls").ok_or("`calls` is missing")?;
    let list = calls.cast::<PyList>().map_err(|_| "`calls` must be a list of (tool, args)".to_string())?;
    let mut out = Vec::new();
    for c in list.iter() {
        let t = c.cast::<PyTuple>().map_err(|_| "`calls` must be a list of (tool, args)".to_string())?;
        out.push(call_from_tuple(t)?);
    }
    Ok(Step { text: say, calls: out, delay })
}
