//! `memory_search(query, namespace, limit)`: ranked full-text search over
//! the objects one may read. A kernel call; the view decides, in the kernel.

use libos_core::memory::{MAX_SEARCH_HITS, SearchQuery};
use libos_core::syscall::Syscall;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// Hits returned when the call names no limit.
const DEFAULT_LIMIT: usize = 10;

/// Arguments of `memory_search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySearchArgs {
    /// Words to look for in object names and contents (any of them; objects holding more of them, or the whole phrase, rank first).
    // Not a `pattern` for "has a letter or digit": llama.cpp's grammar
    // builder takes only a subset of regular expressions. The parser
    // refuses a query without words.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Only this namespace of your view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// At most this many results (1 to 50, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u32>,
}

/// `memory_search`.
pub struct MemorySearch;

impl Tool for MemorySearch {
    type Args = MemorySearchArgs;
    const NAME: &'static str = "memory_search";
    const DESCRIPTION: &'static str = "Search the objects you may read by the words they contain; returns ids, names, snippets and scores, best first.";

    fn check(a: &MemorySearchArgs) -> Result<(), String> {
        SearchQuery::parse(&a.query)?;
        match a.limit {
            Some(n) if n == 0 || n as usize > MAX_SEARCH_HITS => {
                Err(format!("limit must be between 1 and {MAX_SEARCH_HITS}, not {n}"))
            }
            _ => Ok(()),
        }
    }

    fn dispatch(a: &MemorySearchArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::MemorySearch {
            query: SearchQuery::parse(&a.query)?,
            namespace: a.namespace.clone(),
            limit: a.limit.map_or(DEFAULT_LIMIT, |n| n as usize),
        }))
    }
}
