//! `libos.Kernel`: a store, the images and tools its processes may use,
//! and every operation the CLI has, as methods.
//!
//! Each method is one kernel call (one transaction) made with the
//! interpreter released, as the operator (`human:operator`): the audit log
//! cannot tell a notebook's approval from the CLI's. Values come back as
//! the HTTP API's JSON shapes (`libos_console::wire`), as dicts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libos_console::wire;
use libos_images::{Image, ImageSet};
use libos_kernel::caps::GrantSpec;
use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{
    Actor, AuditFilter, AuditSeq, GrantId, KernelError, ObjectId, OpenMode, Outcome, Pid, ProcState, ProcessFilter,
    RequestId, SpawnSpec, StoreLocation, Verdict,
};
use libos_runtime::quantum::{self, QuantumPolicy};
use libos_runtime::{Config, ModelRouter, QuantumEnv, SchedulerConfig};
use libos_tools::Registry;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::{Value, json};

use crate::convert::{from_py, json_or_text, list_to_py, to_py};
use crate::error;
use crate::events::{Commits, Events};
use crate::model::ScriptedModel;
use crate::run::{self, Run};

/// What runs are made of: the configuration, the tools and the images.
struct Setup {
    config: Config,
    registry: Registry,
    images: ImageSet,
}

/// A libos kernel over a store: ``":memory:"`` (the default), an SQLite
/// file (created if missing) or a ``postgres://`` URL.
///
/// `config` names a ``libos.toml`` (model profiles, image directories,
/// command tools, HTTP headers), as ``libos --config`` does; without it,
/// ``./libos.toml`` is read if it exists, and the environment
/// (``OPENAI_BASE_URL``, ``LIBOS_MODEL``) gives the default profile.
#[pyclass(module = "libos._libos", name = "Kernel", frozen, subclass)]
pub struct PyKernel {
    kernel: libos_kernel::Kernel,
    store: String,
    setup: Mutex<Setup>,
    commits: Arc<Commits>,
}

/// A positive id from Python.
fn id<T>(n: i64, what: &str, make: fn(i64) -> T) -> PyResult<T> {
    if n > 0 { Ok(make(n)) } else { Err(error::invalid(format!("invalid {what} `{n}`: expected a positive integer"))) }
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| error::invalid(format!("{what} must be a non-negative number")))
}

/// A budget dict (`{"quanta": 8, "wall_time": "10m", "cost_usd": 0.5}`)
/// applied over `budget`; None removes a limit.
fn apply_budget(budget: &mut libos_kernel::budget::Budget, given: &Bound<'_, PyDict>) -> PyResult<()> {
    for (key, value) in given.iter() {
        let key: String = key.extract().map_err(|_| error::invalid("budget keys are dimension names"))?;
        if value.is_none() {
            let d = libos_kernel::budget::Dimension::ALL
                .into_iter()
                .find(|d| d.as_str() == key)
                .ok_or_else(|| error::invalid(format!("unknown budget dimension `{key}`")))?;
            budget.set(d, None);
            continue;
        }
        let text = match from_py(&value, "a budget value")? {
            Value::String(s) => s,
            Value::Number(n) if key == "wall_time" => format!("{n}s"),
            Value::Number(n) => n.to_string(),
            other => return Err(error::invalid(format!("budget `{key}`: `{other}` is not a number or a duration"))),
        };
        budget.set_from(&format!("{key}={text}")).map_err(error::invalid)?;
    }
    Ok(())
}

impl PyKernel {
    fn setup(&self) -> MutexGuard<'_, Setup> {
        self.setup.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the kernel with the interpreter released.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&libos_kernel::Kernel) -> Result<T, KernelError> + Send,
    ) -> PyResult<T> {
        let kernel = &self.kernel;
        py.detach(|| f(kernel)).map_err(error::kernel)
    }

    /// Adds a dynamic tool to the registry later images and runs use.
    fn register_tool(&self, tool: libos_tools::DynamicTool) -> PyResult<()> {
        self.setup().registry.register(tool).map_err(|e| error::invalid(e.to_string()))
    }

    /// A quantum environment for a run on `model`: None for the configured
    /// profiles, a profile name for that profile on every image, or a
    /// `ScriptedModel`.
    fn env(&self, py: Python<'_>, model: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<QuantumEnv>> {
        let live = self.call(py, |k| k.processes(ProcessFilter::Live))?;
        let setup = self.setup();
        let router = ModelRouter::from_config(&setup.config);
        let router = match model {
            None => {
                // Refused now rather than failed quantum by quantum, as `libos run` refuses.
                for p in &live {
                    let Ok(image) = setup.images.get(&p.image) else { continue };
                    router.get(&image.model).map_err(|e| error::invalid(format!("{e} (pid {} needs it)", p.pid)))?;
                }
                router
            }
            Some(m) if m.is_instance_of::<PyString>() => {
                let name: String = m.extract()?;
                let chosen = router.get(&name).map_err(error::invalid)?;
                router.with_override(chosen)
            }
            Some(m) => {
                let scripted = m.cast::<ScriptedModel>().map_err(|_| {
                    error::invalid("model must be None (the configured profiles), a profile name or a ScriptedModel")
                })?;
                let mut names: Vec<&str> = setup.images.iter().map(|i| i.name.as_str()).collect();
                names.extend(live.iter().map(|p| p.image.as_str()));
                names.sort_unstable();
                names.dedup();
                router.with_override(scripted.get().build(names.into_iter()))
            }
        };
        // What runs are loaded from is not the agents' to edit.
        for path in setup.config.loaded_paths() {
            self.kernel.protect(&path);
        }
        let env = quantum::env_with_registry(
            self.kernel.clone(),
            router,
            QuantumPolicy::default(),
            setup.images.clone(),
            quantum::default_sandbox(),
            setup.registry.clone(),
        );
        Ok(quantum::with_http(env, setup.config.http.clone()))
    }
}

fn scheduler_config(concurrency: usize, poll_ms: u64, until_idle: bool) -> PyResult<SchedulerConfig> {
    if concurrency == 0 {
        return Err(error::invalid("concurrency must be at least 1"));
    }
    Ok(SchedulerConfig {
        concurrency,
        poll: Duration::from_millis(poll_ms.max(1)),
        until_idle,
        ..SchedulerConfig::default()
    })
}

#[pymethods]
impl PyKernel {
    #[new]
    #[pyo3(signature = (store=":memory:", *, config=None))]
    fn new(py: Python<'_>, store: &str, config: Option<PathBuf>) -> PyResult<PyKernel> {
        let location = StoreLocation::parse(store);
        let kernel = py.detach(|| libos_kernel::Kernel::open(&location, OpenMode::Create)).map_err(error::open)?;
        let config = Config::load(config.as_deref(), &libos_runtime::config::process_env)
            .map_err(|e| error::invalid(e.to_string()))?;
        kernel.protect(config.file.as_deref().unwrap_or(std::path::Path::new("libos.toml")));
        let mut registry = config.registry().map_err(error::invalid)?;
        // Images may name the configuration's MCP servers; their processes
        // cannot run from here, and say why.
        libos_runtime::mcp::declare_unlisted(
            &mut registry,
            config.mcp.keys().cloned(),
            "the Python package does not start MCP servers",
        );
        let mut images = ImageSet::shipped().map_err(error::image)?;
        for dir in &config.image_dirs {
            images.add_dir_with(dir, &registry).map_err(error::image)?;
        }
        let commits = Arc::new(Commits::default());
        let bump = commits.clone();
        kernel.on_commit(move || bump.bump());
        Ok(PyKernel {
            kernel,
            store: location.to_string(),
            setup: Mutex::new(Setup { config, registry, images }),
            commits,
        })
    }

    /// The store, as shown to people (a URL without its password).
    #[getter]
    fn store(&self) -> &str {
        &self.store
    }

    /// The images processes may be spawned from (shipped, configured, registered).
    fn images<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        list_to_py(py, self.setup().images.iter().map(wire::image).collect())
    }

    /// One image, with its spec text (``spec``).
    fn image<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let setup = self.setup();
        let image = setup.images.get(name).map_err(error::image)?;
        let mut out = wire::image(image);
        out["spec"] = json!(image.source);
        out["system_prompt"] = json!(image.system_prompt);
        to_py(py, &out)
    }

    /// Adds an image from its TOML text or a dict of the same fields
    /// (replacing one of the same name); returns its name. Python tools it
    /// names must be registered first.
    fn register_image(&self, spec: &Bound<'_, PyAny>) -> PyResult<String> {
        let text = match spec.cast::<PyString>() {
            Ok(s) => s.to_cow()?.into_owned(),
            Err(_) => {
                let value = from_py(spec, "an image spec")?;
                if !value.is_object() {
                    return Err(error::invalid("an image spec is TOML text or a dict"));
                }
                toml::to_string(&value).map_err(|e| error::invalid(format!("image spec: {e}")))?
            }
        };
        let mut setup = self.setup();
        let image = Image::parse_with("python", &text, &setup.registry).map_err(error::image)?;
        let name = image.name.clone();
        setup.images.insert(image);
        Ok(name)
    }

    /// Registers a Python tool (see ``Kernel.tool``, which derives the schema).
    fn _register_tool(
        &self,
        name: &str,
        description: &str,
        schema: &Bound<'_, PyAny>,
        func: Py<PyAny>,
    ) -> PyResult<()> {
        let schema = from_py(schema, "a tool schema")?;
        self.register_tool(crate::tool::python_tool(name, description, schema, func)?)
    }

    /// Spawns a root process of `image` and returns its pid. It holds the
    /// image's grants plus `grants` (``"read,write fs:src/**"``, ``"exec
    /// tool:lookup ask"``), under the image's budget changed by `budget`
    /// (``{"quanta": 8, "wall_time": "10m", "cost_usd": 0.5}``), confined to
    /// `workspace` (default: the current directory).
    #[pyo3(signature = (image, goal, *, grants=Vec::new(), budget=None, workspace=None, priority=0))]
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        py: Python<'_>,
        image: &str,
        goal: &str,
        grants: Vec<String>,
        budget: Option<&Bound<'_, PyDict>>,
        workspace: Option<PathBuf>,
        priority: i32,
    ) -> PyResult<i64> {
        let (name, version, source, mut all_grants, mut limits) = {
            let setup = self.setup();
            let i = setup.images.get(image).map_err(error::image)?;
            (i.name.clone(), i.version.clone(), i.source.clone(), i.grants.clone(), i.budget)
        };
        for g in &grants {
            all_grants.push(GrantSpec::parse(g).map_err(error::invalid)?);
        }
        if let Some(b) = budget {
            apply_budget(&mut limits, b)?;
        }
        let dir = match workspace {
            Some(w) => w,
            None => {
                std::env::current_dir().map_err(|e| error::other(format!("cannot read the current directory: {e}")))?
            }
        };
        let dir = std::fs::canonicalize(&dir)
            .map_err(|_| error::invalid(format!("workspace {} does not exist", dir.display())))?;
        if !dir.is_dir() {
            return Err(error::invalid(format!("workspace {} is not a directory", dir.display())));
        }
        let goal = goal.to_string();
        let pid = self.call(py, move |k| {
            let digest = k.register_image(&name, &version, &source)?;
            let spec = SpawnSpec {
                image: digest,
                goal,
                workspace: dir,
                parent: None,
                priority,
                actor: Actor::operator(),
                budget: limits,
            };
            k.spawn_with_grants(&spec, &all_grants)
        })?;
        Ok(pid.get())
    }

    /// Runs the scheduler until nothing is runnable (parked processes stay
    /// parked) and returns its summary. `model`: None for the configured
    /// profiles, a profile name for that profile on every image, or a
    /// ``ScriptedModel``. Releases the interpreter; Ctrl-C stops it cleanly
    /// and raises KeyboardInterrupt.
    #[pyo3(signature = (model=None, *, concurrency=16, poll_ms=20))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        model: Option<&Bound<'py, PyAny>>,
        concurrency: usize,
        poll_ms: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let env = self.env(py, model)?;
        let summary = run::foreground(py, env, scheduler_config(concurrency, poll_ms, true)?)?;
        to_py(py, &summary)
    }

    /// Starts the scheduler in the background and returns its ``Run``;
    /// with ``until_idle=True`` it ends by itself when nothing is runnable.
    #[pyo3(signature = (model=None, *, concurrency=16, until_idle=false, poll_ms=20))]
    fn start(
        &self,
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        concurrency: usize,
        until_idle: bool,
        poll_ms: u64,
    ) -> PyResult<Run> {
        let env = self.env(py, model)?;
        Run::start(env, scheduler_config(concurrency, poll_ms, until_idle)?)
    }

    /// Live processes (every process with ``all=True``), in pid order.
    #[pyo3(signature = (all=false))]
    fn processes<'py>(&self, py: Python<'py>, all: bool) -> PyResult<Bound<'py, PyAny>> {
        let filter = if all { ProcessFilter::All } else { ProcessFilter::Live };
        let list = self.call(py, |k| k.processes(filter))?;
        list_to_py(py, list.iter().map(wire::process).collect())
    }

    /// One process, with its children's pids.
    fn process<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let (info, children) = self.call(py, |k| Ok((k.process(pid)?, k.children(pid)?)))?;
        let mut out = wire::process(&info);
        out["children"] = json!(children.iter().map(|c| c.get()).collect::<Vec<_>>());
        to_py(py, &out)
    }

    /// What a process exited with, as a Python value (a result that is
    /// JSON text is decoded, other text is a str); None unless it exited.
    fn result<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        match self.call(py, |k| k.process(pid))?.state {
            ProcState::Exited { result, .. } => to_py(py, &json_or_text(&result)),
            _ => Ok(py.None().into_bound(py)),
        }
    }

    /// A process and its quanta: model calls (rejections, errors) and tool calls with results.
    fn transcript<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let (info, calls, entries, leases) =
            self.call(py, |k| Ok((k.process(pid)?, k.model_calls(pid)?, k.transcript(pid, None)?.0, k.leases(pid)?)))?;
        to_py(py, &wire::transcript(&info, &calls, &entries, &leases))
    }

    /// A process's messages, read and unread.
    fn inbox<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let list = self.call(py, |k| k.inbox(pid))?;
        list_to_py(py, list.iter().map(wire::message).collect())
    }

    /// A process's memory view (handles, without content).
    fn memory<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let list = self.call(py, |k| k.memory_view(pid))?;
        list_to_py(py, list.iter().map(wire::handle).collect())
    }

    /// One memory object, with its content.
    fn memory_object<'py>(&self, py: Python<'py>, oid: i64) -> PyResult<Bound<'py, PyAny>> {
        let oid = id(oid, "object id", ObjectId)?;
        let object = self.call(py, |k| k.memory_object(oid))?;
        to_py(py, &wire::object(&object))
    }

    /// A process's grants, with where each stands.
    fn caps<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let list = self.call(py, |k| k.caps(pid))?;
        list_to_py(py, list.iter().map(|(g, s)| wire::grant(g, *s)).collect())
    }

    /// Audit records, oldest first: of one process, one tool or action, one
    /// outcome, after a sequence number; `limit` keeps the most recent.
    #[pyo3(signature = (*, pid=None, tool=None, outcome=None, after=None, limit=None))]
    fn audit<'py>(
        &self,
        py: Python<'py>,
        pid: Option<i64>,
        tool: Option<String>,
        outcome: Option<String>,
        after: Option<i64>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let outcome = outcome
            .map(|o| {
                Outcome::parse(&o).ok_or_else(|| {
                    let all: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    error::invalid(format!("invalid outcome `{o}` (expected one of {})", all.join(", ")))
                })
            })
            .transpose()?;
        let filter = AuditFilter {
            pid: pid.map(|p| id(p, "pid", Pid)).transpose()?,
            action: tool,
            outcome,
            after: after.map(AuditSeq),
            limit,
            ..AuditFilter::default()
        };
        let list = self.call(py, |k| k.audit(&filter))?;
        list_to_py(py, list.iter().map(wire::audit).collect())
    }

    /// The chain's head: ``{"seq": N, "hash": "..."}``. Keep the hash
    /// elsewhere: ``verify(expect_head=...)`` then detects a cut tail.
    fn audit_head<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (seq, hash) = self.call(py, |k| k.audit_head())?;
        to_py(py, &json!({"seq": seq.get(), "hash": hash}))
    }

    /// Recomputes the audit chain: ``{"ok", "records", "unsealed", "head",
    /// "first_bad_seq", "problem"}`` (``unsealed``: records committed but
    /// not yet chained, on PostgreSQL).
    #[pyo3(signature = (expect_head=None))]
    fn verify<'py>(&self, py: Python<'py>, expect_head: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let report = self.call(py, |k| k.audit_verify(expect_head.as_deref()))?;
        to_py(py, &wire::verify(&report))
    }

    /// Open approval requests and questions, each with the exact call.
    fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = self.call(py, |k| k.pending())?;
        list_to_py(py, list.iter().map(wire::request).collect())
    }

    /// One request, open or decided.
    fn request<'py>(&self, py: Python<'py>, request: i64) -> PyResult<Bound<'py, PyAny>> {
        let rid = id(request, "request id", RequestId)?;
        let r = self.call(py, |k| k.request(rid))?;
        to_py(py, &wire::request(&r))
    }

    /// Runs the parked call exactly as parked, once (after the capability
    /// check runs again); ``always`` also adds an exact allow grant.
    #[pyo3(signature = (request, *, always=false))]
    fn approve<'py>(&self, py: Python<'py>, request: i64, always: bool) -> PyResult<Bound<'py, PyAny>> {
        self.decide(py, request, Verdict::Approve { always })
    }

    /// Refuses the parked call; the reason becomes its result. ``always`` adds an exact deny.
    #[pyo3(signature = (request, *, reason=None, always=false))]
    fn deny<'py>(
        &self,
        py: Python<'py>,
        request: i64,
        reason: Option<String>,
        always: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reason = reason.unwrap_or_else(|| "denied by the operator".to_string());
        self.decide(py, request, Verdict::Deny { always, reason })
    }

    /// Answers an ``ask_human`` question.
    fn answer<'py>(&self, py: Python<'py>, request: i64, text: String) -> PyResult<Bound<'py, PyAny>> {
        if text.trim().is_empty() {
            return Err(error::invalid("an answer needs text"));
        }
        self.decide(py, request, Verdict::Answer { text })
    }

    /// Adds a grant (``"read,write fs:data/** ask uses=3"``) to a live process; returns its id.
    fn grant(&self, py: Python<'_>, pid: i64, grant: &str) -> PyResult<i64> {
        let pid = id(pid, "pid", Pid)?;
        let spec = GrantSpec::parse(grant).map_err(error::invalid)?;
        Ok(self.call(py, |k| k.grant(pid, &spec, &Actor::operator()))?.get())
    }

    /// Revokes a grant and everything derived from it: ``{"grant", "derived"}``.
    fn revoke<'py>(&self, py: Python<'py>, grant: i64) -> PyResult<Bound<'py, PyAny>> {
        let gid = id(grant, "grant id", GrantId)?;
        let (g, derived) = self.call(py, |k| k.revoke(gid, &Actor::operator()))?;
        to_py(py, &json!({"grant": g.id.get(), "derived": derived}))
    }

    /// Kills a process in any live state (``tree``: its descendants too); returns the pids killed.
    #[pyo3(signature = (pid, *, tree=false, reason=None))]
    fn kill(&self, py: Python<'_>, pid: i64, tree: bool, reason: Option<String>) -> PyResult<Vec<i64>> {
        let pid = id(pid, "pid", Pid)?;
        let reason = reason.unwrap_or_else(|| "killed by the operator".to_string());
        let killed = self.call(py, |k| k.kill_tree(pid, tree, Actor::operator(), &reason))?;
        Ok(killed.iter().map(|p| p.get()).collect())
    }

    /// Stops a process where it is; ``resume`` returns it to exactly that.
    fn pause<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let state = self.call(py, |k| k.pause(pid, Actor::operator()))?;
        to_py(py, &wire::state_change(pid, &state))
    }

    /// Resumes a paused process in the state it was paused in.
    fn resume<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let state = self.call(py, |k| k.resume(pid, Actor::operator()))?;
        to_py(py, &wire::state_change(pid, &state))
    }

    /// Changes a process's priority (higher runs first); returns the old one.
    fn renice(&self, py: Python<'_>, pid: i64, priority: i32) -> PyResult<i32> {
        let pid = id(pid, "pid", Pid)?;
        self.call(py, |k| k.renice(pid, priority, &Actor::operator()))
    }

    /// Sends a message as the operator; an interrupt is shown first and
    /// wakes a receiver or sleeper. Returns the message id.
    #[pyo3(signature = (pid, text, *, interrupt=false, channel=None))]
    fn send(&self, py: Python<'_>, pid: i64, text: String, interrupt: bool, channel: Option<String>) -> PyResult<i64> {
        let to = id(pid, "pid", Pid)?;
        if text.trim().is_empty() {
            return Err(error::invalid("a message needs text"));
        }
        let m = NewMessage {
            to,
            body: text,
            kind: if interrupt { MessageKind::Interrupt } else { MessageKind::Normal },
            channel,
            correlation_id: None,
            reply_to: None,
        };
        Ok(self.call(py, |k| k.send(&m, &Actor::operator()))?.get())
    }

    /// Re-executes a finished process and its children on their recorded
    /// answers in a scratch store and compares every tool call.
    fn replay<'py>(&self, py: Python<'py>, pid: i64) -> PyResult<Bound<'py, PyAny>> {
        let pid = id(pid, "pid", Pid)?;
        let registry = self.setup().registry.clone();
        let kernel = self.kernel.clone();
        let rt = run::runtime()?;
        let report = py
            .detach(|| rt.block_on(libos_runtime::replay::replay_with(&kernel, pid, &registry)))
            .map_err(error::replay)?;
        to_py(py, &crate::replay::report(&report))
    }

    /// The audit log's events as they commit (see ``Events``).
    #[pyo3(signature = (*, after=None, idle_timeout=None))]
    fn _events(&self, py: Python<'_>, after: Option<i64>, idle_timeout: Option<f64>) -> PyResult<Events> {
        let idle = idle_timeout.map(|t| seconds(t, "idle_timeout")).transpose()?;
        let kernel = self.kernel.clone();
        let commits = self.commits.clone();
        py.detach(|| Events::new(kernel, commits, after, idle))
    }

    fn __repr__(&self) -> String {
        format!("<libos.Kernel {}>", self.store)
    }
}

impl PyKernel {
    fn decide<'py>(&self, py: Python<'py>, request: i64, verdict: Verdict) -> PyResult<Bound<'py, PyAny>> {
        let rid = id(request, "request id", RequestId)?;
        let decided = self.call(py, |k| k.decide(rid, &verdict, &Actor::operator()))?;
        to_py(py, &wire::decided(&decided))
    }
}
