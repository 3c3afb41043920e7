//! Reading memory from outside: a process's view, one object, its pins.

use super::Kernel;
use crate::error::KernelError;
use crate::ids::{ObjectId, Pid};
use crate::memory::{Handle, MAX_SEARCH_HITS, Object, SearchHit, SearchQuery};

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

    /// What `memory_search` would find for `pid`: the objects of its view
    /// it may read that match `query`, best first (at most
    /// [`MAX_SEARCH_HITS`]). For operators, embedders and the prompt's
    /// recall; it changes nothing.
    pub fn memory_search(
        &self,
        pid: Pid,
        query: &SearchQuery,
        namespace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KernelError> {
        let limit = limit.clamp(1, MAX_SEARCH_HITS);
        self.read(|tx| {
            tx.process(pid)?;
            tx.search_objects(pid, query, namespace, limit)
        })
    }

    /// A process's pinned objects, content included (what its prompt materialises).
    pub fn pinned_objects(&self, pid: Pid) -> Result<Vec<Object>, KernelError> {
        self.read(|tx| tx.pinned_objects(pid))
    }
}
