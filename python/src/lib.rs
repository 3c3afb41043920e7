//! libos for Python: the native part of the `libos` package
//! (`libos._libos`), over the same kernel and runtime crates as the CLI.
//!
//! A notebook opens a [`kernel::PyKernel`] on a store, registers images
//! and Python tools, spawns processes, runs the scheduler in the
//! foreground or the background with the interpreter released, and reads
//! back processes, transcripts, audit records and requests as the HTTP
//! API's JSON shapes. Nothing here is a second implementation: every
//! operation is a call of `libos_kernel::Kernel` or `libos_runtime`. What
//! is easier said in Python (schemas from type hints, the async iterator)
//! is in `libos/__init__.py`.
//!
//! Not here: MCP servers of a `libos.toml` (processes of images naming
//! them cannot run, and say why), and the console.
//!
//! Modules, in reading order:
//! - [`error`]: libos's errors as Python exceptions.
//! - [`convert`]: JSON values to Python objects and back.
//! - [`kernel`]: `Kernel`, one method per operation.
//! - [`model`]: `ScriptedModel`, a script written from Python.
//! - [`tool`]: Python callables as registry tools (`exec tool:NAME`).
//! - [`run`]: the scheduler in the foreground (Ctrl-C) and the background (`Run`).
//! - [`events`]: `Events`, the audit log followed as it commits.
//! - [`replay`]: a replay's report as a dict.

pub mod convert;
pub mod error;
pub mod events;
pub mod kernel;
pub mod model;
pub mod replay;
pub mod run;
pub mod tool;

use pyo3::prelude::*;

/// The module `libos._libos`.
#[pymodule]
fn _libos(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<kernel::PyKernel>()?;
    m.add_class::<model::ScriptedModel>()?;
    m.add_class::<run::Run>()?;
    m.add_class::<events::Events>()?;
    m.add("Error", py.get_type::<error::Error>())?;
    m.add("NotFound", py.get_type::<error::NotFound>())?;
    m.add("Refused", py.get_type::<error::Refused>())?;
    m.add("StoreError", py.get_type::<error::StoreError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
