//! Reading memory from outside: a process's view, one object, its pins.

use super::Kernel;
use crate::error::KernelError;
use crate::ids::{ObjectId, Pid};
use crate::memory::{Handle, Object};

impl Kernel {
    /// A process's view: the handles it holds, by namespace and name.
    pub fn memory_view(&self, pid: Pid) -> Result<Vec<Handle>, KernelError> {
        self.read(|tx| {
            tx.process(pid)?;
            tx.view(pid)
        })
    }

    /// One object, content included.
    pub fn memory_object(&self, oid: ObjectId) -> Result<Object, KernelError> {
        self.read(|tx| tx.object(oid)?.ok_or(KernelError::NoSuchObject(oid)))
    }

    /// A process's pinned objects, content included (what its prompt materialises).
    pub fn pinned_objects(&self, pid: Pid) -> Result<Vec<Object>, KernelError> {
        self.read(|tx| tx.pinned_objects(pid))
    }
}
