//! libos's errors as Python exceptions, decided in one place.
//!
//! The same families as the CLI's exit codes: `NotFound` (no such
//! process, image, request, grant or object), `Refused` (not in the state
//! things are in: killing an ended process, deciding a request twice),
//! `StoreError` (the store cannot be used), everything else `Error`; bad
//! input from Python (a malformed grant, an unknown budget dimension) is
//! a `ValueError`. All but `ValueError` derive from `libos.Error`.

use libos_images::ImageError;
use libos_kernel::{KernelError, OpenError};
use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};

create_exception!(libos, Error, PyException, "Any libos failure.");
create_exception!(libos, NotFound, Error, "No such process, image, request, grant or memory object.");
create_exception!(
    libos,
    Refused,
    Error,
    "Refused where things stand: killing an ended process, deciding a request twice."
);
create_exception!(
    libos,
    StoreError,
    Error,
    "The store cannot be used: missing, not a libos store, locked, unreachable."
);

/// A replay that could not run: a store's failure as the kernel's, the rest as `Error`.
pub fn replay(e: libos_runtime::replay::ReplayError) -> PyErr {
    match e {
        libos_runtime::replay::ReplayError::Store(e) => kernel(e),
        e => other(e.to_string()),
    }
}

/// A kernel error as the exception of its family.
pub fn kernel(e: KernelError) -> PyErr {
    let text = e.to_string();
    match e {
        KernelError::NoSuchProcess(_)
        | KernelError::NoSuchImage(_)
        | KernelError::NoSuchRequest(_)
        | KernelError::NoSuchGrant(_)
        | KernelError::NoSuchObject(_) => NotFound::new_err(text),
        KernelError::Store(_) => StoreError::new_err(text),
        KernelError::Transition(_) | KernelError::Stale { .. } | KernelError::Refused(_) => Refused::new_err(text),
        KernelError::Invalid(_) | KernelError::BadToolName(_) => PyValueError::new_err(text),
    }
}

/// A store that would not open.
pub fn open(e: OpenError) -> PyErr {
    StoreError::new_err(e.to_string())
}

/// An image error: unknown names are `NotFound`, bad specs `ValueError`.
pub fn image(e: ImageError) -> PyErr {
    match e {
        ImageError::NotFound { .. } => NotFound::new_err(e.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// Bad input from Python, said in one line.
pub fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// Any other failure.
pub fn other(message: impl Into<String>) -> PyErr {
    Error::new_err(message.into())
}
