//! Memory: a durable object store, and each process's view of it.
//!
//! An object is `(oid, namespace, name, kind, content, version, owner)`.
//! Each process has a private namespace (`pid:N`) and a **view**: the
//! handles `(oid, rights, pinned)` it can see. Writing creates or updates an
//! object in the writer's namespace and puts it in the writer's view with
//! read and write; sharing gives one of the process's own children a handle
//! with at most the sharer's rights. Pinned objects are materialised into
//! the prompt within the image's token budget.

use crate::actor::Actor;
use crate::caps::Rights;
use crate::ids::{ObjectId, Pid};
use crate::time::Timestamp;

/// Largest object content, in bytes.
pub const MAX_OBJECT_BYTES: usize = 256 * 1024;
/// Longest object name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A process's private namespace.
pub fn namespace_of(pid: Pid) -> String {
    format!("pid:{pid}")
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its id.
    pub oid: ObjectId,
    /// The namespace it lives in.
    pub namespace: String,
    /// Its name within the namespace.
    pub name: String,
    /// A free-form kind (`text`, `json`, `note`, ...).
    pub kind: String,
    /// The content.
    pub content: String,
    /// 1 when created, +1 on every write.
    pub version: u64,
    /// The process that created it.
    pub owner: Pid,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last write.
    pub updated_at: Timestamp,
}

/// A handle in a process's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// The object (content not loaded: see [`Object`]).
    pub oid: ObjectId,
    /// Its namespace and name.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its version.
    pub version: u64,
    /// Content size in bytes.
    pub bytes: u64,
    /// What this process may do with it (read, write).
    pub rights: Rights,
    /// Materialised into the prompt.
    pub pinned: bool,
    /// Who put it in the view.
    pub granted_by: Actor,
}

/// Most hits one `memory_search` returns.
pub const MAX_SEARCH_HITS: usize = 50;
/// Most words of a search query that count (the rest are ignored).
pub const MAX_QUERY_WORDS: usize = 16;

/// A search query, reduced to the words it contains: letters and digits
/// only, so no text a model wrote can be read as the search engine's own
/// syntax (quotes, operators, column filters). Lowercased, at most
/// [`MAX_QUERY_WORDS`] distinct words of at most 64 bytes each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// The words of `text`; an error if it has none.
    pub fn parse(text: &str) -> Result<SearchQuery, String> {
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if word.is_empty() || word.len() > 64 || words.contains(&word) {
                continue;
            }
            words.push(word);
            if words.len() == MAX_QUERY_WORDS {
                break;
            }
        }
        if words.is_empty() {
            return Err("the search query has no words (letters or digits) to look for".to_string());
        }
        Ok(SearchQuery { words })
    }

    /// The words, in the order given.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// One object a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The object.
    pub oid: ObjectId,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// A few words of its content around the matches, matches in `[...]`.
    pub snippet: String,
    /// Relevance, higher first, from this object alone (never from word
    /// statistics of objects outside the view), the same on both stores:
    /// 4 if it holds the whole query as a phrase, plus, per word, 2 if its
    /// name holds it and 1 if its content does (words stemmed).
    pub score: f64,
}

/// Checks an object name: non-empty, bounded, printable, no `/`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("object name is empty".to_string());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("object name is {} bytes, more than the {MAX_NAME_BYTES} allowed", name.len()));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!("object name `{name}` may not contain `/` or control characters"));
    }
    Ok(())
}
