//! A tool's name: the one text type every crate names a tool by.
//!
//! Built-in tools, operator-defined tools and MCP servers' tools share one
//! namespace whose names must be safe on the wire (OpenAI function names:
//! 1 to 64 of `a-z A-Z 0-9 _ -`, [`crate::caps::is_wire_name`]). The check
//! happens once, in [`ToolName::new`]; past it a name is known good, so the
//! audit log's `action` column and the registry hold the same type.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A tool's name: a built-in's (static) or a registered tool's (shared).
/// Compared, hashed and ordered by its text.
#[derive(Clone)]
pub struct ToolName(NameText);

#[derive(Clone)]
enum NameText {
    Static(&'static str),
    Shared(Arc<str>),
}

/// A name no tool can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool name `{name}` is not usable: tool names are 1 to 64 of a-z, A-Z, 0-9, _ and - (what model APIs accept)")]
pub struct BadToolName {
    /// The name refused, cut to one short line for messages.
    pub name: String,
}

impl ToolName {
    /// A built-in's name (not checked: built-in names are wire-safe by construction).
    pub const fn builtin(name: &'static str) -> ToolName {
        ToolName(NameText::Static(name))
    }

    /// A name checked to be safe on the wire (1 to 64 of `a-z A-Z 0-9 _ -`).
    pub fn new(name: &str) -> Result<ToolName, BadToolName> {
        if crate::caps::is_wire_name(name) {
            Ok(ToolName(NameText::Shared(Arc::from(name))))
        } else {
            Err(BadToolName { name: one_line(name, 80) })
        }
    }

    /// `raw` made safe on the wire: every other character becomes `_`
    /// (`git.status` -> `git_status`). Mapping can make two names one; the
    /// registry then refuses the second, naming both.
    pub fn mapped(raw: &str) -> Result<ToolName, BadToolName> {
        let text: String =
            raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        ToolName::new(&text)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameText::Static(s) => s,
            NameText::Shared(s) => s,
        }
    }
}

/// `s` escaped onto one line and cut after about `max` bytes.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 3);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        crate::text::push_escaped(&mut out, c);
    }
    out
}

impl PartialEq for ToolName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for ToolName {}
impl PartialEq<str> for ToolName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
impl PartialEq<&str> for ToolName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
impl Hash for ToolName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}
impl PartialOrd for ToolName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ToolName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl Borrow<str> for ToolName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
