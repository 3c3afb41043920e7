//! Capabilities: typed resources, rights, effects, grants and the decision rule.
//!
//! Pure logic; the store keeps grants and the kernel applies decisions.
//!
//! - A [`ResourcePattern`] names what a grant covers: `fs:src/**`,
//!   `fs:notes.txt`, `image:worker`, `message:*`, `process:spawn`, ...
//!   File paths are relative to the process workspace, canonical, and can
//!   never name anything outside it (`..` and absolute paths are refused).
//! - [`decide`]: among live grants that match the resource and include the
//!   right, the most specific pattern decides; among equally specific ones
//!   `deny` beats `ask` beats `allow`; nothing matching means deny.
//! - [`covers`]: whether a parent's grant lets it delegate a child's grant
//!   (pattern within, rights a subset, effect no looser, expiry no later,
//!   uses no more, and no `deny`/`ask` of the parent bypassed).

pub mod net;

use std::fmt;
use std::time::Duration;

use crate::actor::Actor;
use crate::ids::{GrantId, Pid};
use crate::time::{Timestamp, parse_duration};

/// One right a grant may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    /// Read a file, an image, a memory object.
    Read,
    /// Create or change.
    Write,
    /// Run a program.
    Exec,
    /// Remove.
    Delete,
    /// Create processes.
    Spawn,
    /// Pause, resume or kill a process.
    Signal,
    /// Send a message or a question.
    Send,
}

impl Right {
    /// Every right, in display order.
    pub const ALL: [Right; 7] =
        [Right::Read, Right::Write, Right::Exec, Right::Delete, Right::Spawn, Right::Signal, Right::Send];

    /// The right's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Exec => "exec",
            Right::Delete => "delete",
            Right::Spawn => "spawn",
            Right::Signal => "signal",
            Right::Send => "send",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// The set holding one right.
    pub fn one(r: Right) -> Rights {
        Rights(r.bit())
    }

    /// Whether `r` is in the set.
    pub fn contains(self, r: Right) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether every right of `other` is in this set.
    pub fn is_superset(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the sets share a right.
    pub fn intersects(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }

    /// The rights in the set, in display order.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The raw bits, for storage.
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    /// From stored bits (unknown bits dropped).
    pub fn from_bits(bits: i64) -> Rights {
        Rights((bits & 0x7f) as u8)
    }

    /// Parses `read,write`.
    pub fn parse(text: &str) -> Result<Rights, String> {
        let mut set = Rights::default();
        for word in text.split(',').map(str::trim) {
            let r = Right::ALL.into_iter().find(|r| r.as_str() == word).ok_or_else(|| {
                format!("unknown right `{word}` (rights are read, write, exec, delete, spawn, signal, send)")
            })?;
            set.0 |= r.bit();
        }
        Ok(set)
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Right::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// What a matching grant does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// The call goes ahead.
    Allow,
    /// The call parks until a human approves or denies it.
    Ask,
    /// The call is refused.
    Deny,
}

impl Effect {
    /// The effect's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Ask => "ask",
            Effect::Deny => "deny",
        }
    }

    /// Parses `allow`, `ask` or `deny`.
    pub fn parse(text: &str) -> Result<Effect, String> {
        match text {
            "allow" => Ok(Effect::Allow),
            "ask" => Ok(Effect::Ask),
            "deny" => Ok(Effect::Deny),
            other => Err(format!("unknown effect `{other}` (effects are allow, ask, deny)")),
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `fs:<path>`, relative to the workspace.
    Fs,
    /// `shell:<program>`.
    Shell,
    /// `net:<host>` (any port), `net:<host>:<port>`, `net:*.<domain>` (its
    /// subdomains); a connection is the resource `net:<host>:<port>`.
    Net,
    /// `process:spawn`.
    Spawn,
    /// `image:<name>`.
    Image,
    /// `process:<pid>` (signals).
    Process,
    /// `message:<pid>`.
    Message,
    /// `memory:<namespace>`.
    Memory,
    /// `human:<name>`.
    Human,
    /// `mcp:<server>/<tool>`: a tool of an MCP server (`mcp:<server>/*`, all of its tools).
    Mcp,
    /// `tool:<name>`: an operator-defined tool.
    Tool,
}

impl ResourceKind {
    fn prefix(self) -> &'static str {
        match self {
            ResourceKind::Fs => "fs",
            ResourceKind::Shell => "shell",
            ResourceKind::Net => "net",
            ResourceKind::Spawn | ResourceKind::Process => "process",
            ResourceKind::Image => "image",
            ResourceKind::Message => "message",
            ResourceKind::Memory => "memory",
            ResourceKind::Human => "human",
            ResourceKind::Mcp => "mcp",
            ResourceKind::Tool => "tool",
        }
    }
}

/// A concrete resource a call touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name: a workspace-relative canonical path (empty for the
    /// workspace itself), a program, a host, an image, a pid...
    pub name: String,
}

impl Resource {
    /// A workspace file or directory, by its canonical relative path.
    pub fn fs(path: &str) -> Resource {
        Resource { kind: ResourceKind::Fs, name: path.to_string() }
    }

    /// A connection to `host` (canonical, as [`net::host`] makes it) on `port`.
    pub fn net(host: &str, port: u16) -> Resource {
        Resource { kind: ResourceKind::Net, name: format!("{host}:{port}") }
    }

    /// Any other kind.
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> Resource {
        Resource { kind, name: name.into() }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ResourceKind::Spawn => f.write_str("process:spawn"),
            ResourceKind::Fs if self.name.is_empty() => f.write_str("fs:."),
            kind => write!(f, "{}:{}", kind.prefix(), self.name),
        }
    }
}

/// How a pattern matches names of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PatternName {
    /// Exactly this name.
    Exact(String),
    /// A directory and everything beneath it (`dir/**`; empty: the whole workspace, `**`).
    Subtree(String),
    /// Any name of the kind (`*`).
    Any,
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePattern {
    /// The kind of resource.
    pub kind: ResourceKind,
    /// Which names of that kind.
    pub name: PatternName,
}

fn depth(path: &str) -> usize {
    if path.is_empty() { 0 } else { path.split('/').count() }
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Normalises a workspace-relative path written in a grant: no absolute
/// paths, no `..`, no empty segments; `./` and `.` segments dropped.
fn clean_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        return Err(format!("`{text}` is absolute: file grants name paths relative to the workspace"));
    }
    let mut parts = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(format!("`{text}` contains `..`: file grants stay inside the workspace")),
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

impl ResourcePattern {
    /// Parses `fs:src/**`, `fs:notes.txt`, `fs:**`, `process:spawn`,
    /// `process:12`, `image:worker`, `message:*`, `human:operator`, ...
    pub fn parse(text: &str) -> Result<ResourcePattern, String> {
        let (prefix, rest) =
            text.split_once(':').ok_or_else(|| format!("resource `{text}` has no kind (e.g. `fs:src/**`)"))?;
        let named = |kind: ResourceKind| -> Result<ResourcePattern, String> {
            if rest.is_empty() {
                return Err(format!("resource `{text}` names nothing after `{prefix}:`"));
            }
            let name = if rest == "*" { PatternName::Any } else { PatternName::Exact(rest.to_string()) };
            Ok(ResourcePattern { kind, name })
        };
        let pid = |kind: ResourceKind| -> Result<ResourcePattern, String> {
            if rest == "*" {
                return Ok(ResourcePattern { kind, name: PatternName::Any });
            }
            let p: Pid = rest.parse().map_err(|_| format!("resource `{text}`: `{rest}` is not a pid or `*`"))?;
            Ok(ResourcePattern { kind, name: PatternName::Exact(p.to_string()) })
        };
        match prefix {
            "fs" => {
                let name = if rest == "**" || rest == "*" {
                    PatternName::Subtree(String::new())
                } else if let Some(dir) = rest.strip_suffix("/**") {
                    PatternName::Subtree(clean_path(dir)?)
                } else if rest.contains('*') {
                    return Err(format!("resource `{text}`: file patterns are a path, `dir/**` or `**`"));
                } else {
                    let path = clean_path(rest)?;
                    if path.is_empty() { PatternName::Subtree(String::new()) } else { PatternName::Exact(path) }
                };
                Ok(ResourcePattern { kind: ResourceKind::Fs, name })
            }
            "process" if rest == "spawn" => Ok(ResourcePattern { kind: ResourceKind::Spawn, name: PatternName::Any }),
            "process" => pid(ResourceKind::Process),
            "message" => pid(ResourceKind::Message),
            "shell" => named(ResourceKind::Shell),
            "net" => net::pattern(rest).map_err(|e| format!("resource `{text}`: {e}")),
            "image" => named(ResourceKind::Image),
            "memory" => named(ResourceKind::Memory),
            "human" => named(ResourceKind::Human),
            "mcp" => mcp_pattern(text, rest),
            "tool" => tool_pattern(text, rest),
            other => Err(format!(
                "unknown resource kind `{other}` (kinds are fs, shell, net, process, image, message, memory, human, \
                 mcp, tool)"
            )),
        }
    }

    /// The pattern matching exactly `r`.
    pub fn exact(r: &Resource) -> ResourcePattern {
        let name = match r.kind {
            ResourceKind::Spawn => PatternName::Any,
            ResourceKind::Fs if r.name.is_empty() => PatternName::Subtree(String::new()),
            _ => PatternName::Exact(r.name.clone()),
        };
        ResourcePattern { kind: r.kind, name }
    }

    /// Whether the pattern matches the resource.
    pub fn matches(&self, r: &Resource) -> bool {
        if self.kind == ResourceKind::Net && r.kind == ResourceKind::Net {
            return net::matches(&self.name, &r.name);
        }
        self.kind == r.kind
            && match &self.name {
                PatternName::Exact(n) => *n == r.name,
                PatternName::Subtree(dir) => under(&r.name, dir),
                PatternName::Any => true,
            }
    }

    /// Higher is more specific: an exact name over any subtree, a deeper
    /// subtree over a shallower one, any subtree over `*`.
    pub fn specificity(&self) -> (u8, usize) {
        if self.kind == ResourceKind::Net {
            return net::specificity(&self.name);
        }
        match &self.name {
            PatternName::Exact(n) => (2, depth(n)),
            PatternName::Subtree(d) => (1, depth(d)),
            PatternName::Any => (0, 0),
        }
    }

    /// Whether everything this pattern matches, `outer` matches too.
    pub fn within(&self, outer: &ResourcePattern) -> bool {
        if self.kind != outer.kind {
            return false;
        }
        if self.kind == ResourceKind::Net {
            return net::within(&self.name, &outer.name);
        }
        match (&self.name, &outer.name) {
            (_, PatternName::Any) => true,
            (PatternName::Any, _) => false,
            (PatternName::Exact(a), PatternName::Exact(b)) => a == b,
            (PatternName::Subtree(_), PatternName::Exact(_)) => false,
            (PatternName::Exact(a) | PatternName::Subtree(a), PatternName::Subtree(d)) => under(a, d),
        }
    }

    /// Whether some resource matches both patterns.
    pub fn intersects(&self, other: &ResourcePattern) -> bool {
        self.within(other) || other.within(self)
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.name) {
            (ResourceKind::Spawn, _) => f.write_str("process:spawn"),
            (ResourceKind::Fs, PatternName::Subtree(d)) if d.is_empty() => f.write_str("fs:**"),
            (ResourceKind::Net, PatternName::Subtree(d)) => write!(f, "net:*.{d}"),
            (ResourceKind::Mcp, PatternName::Subtree(server)) => write!(f, "mcp:{server}/*"),
            (kind, PatternName::Subtree(d)) => write!(f, "{}:{d}/**", kind.prefix()),
            (kind, PatternName::Exact(n)) => write!(f, "{}:{n}", kind.prefix()),
            (kind, PatternName::Any) => write!(f, "{}:*", kind.prefix()),
        }
    }
}

/// One segment of an `mcp:` resource (a server's or a tool's name): not
/// empty, no `/` or `*`, no whitespace or control characters.
fn mcp_segment(text: &str, what: &str, seg: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err(format!(
            "resource `{}`: the {what} name is empty (e.g. `mcp:git/git_status`)",
            crate::text::escape_line(text)
        ));
    }
    if let Some(c) = seg.chars().find(|c| c.is_whitespace() || c.is_control() || *c == '*' || *c == '/') {
        return Err(format!(
            "resource `{}`: the {what} name contains `{}` (names are printable, without `/`, `*` or spaces)",
            crate::text::escape_line(text),
            c.escape_default()
        ));
    }
    Ok(())
}

/// `mcp:SERVER/TOOL` (exact), `mcp:SERVER/*` (all of a server's tools, a
/// subtree of the server) or `mcp:*` (every server's).
fn mcp_pattern(text: &str, rest: &str) -> Result<ResourcePattern, String> {
    let kind = ResourceKind::Mcp;
    if rest == "*" {
        return Ok(ResourcePattern { kind, name: PatternName::Any });
    }
    let Some((server, tool)) = rest.split_once('/') else {
        return Err(format!(
            "resource `{}` names no tool: write `mcp:SERVER/TOOL` or `mcp:SERVER/*`",
            crate::text::escape_line(text)
        ));
    };
    mcp_segment(text, "server", server)?;
    if tool == "*" {
        return Ok(ResourcePattern { kind, name: PatternName::Subtree(server.to_string()) });
    }
    mcp_segment(text, "tool", tool)?;
    Ok(ResourcePattern { kind, name: PatternName::Exact(rest.to_string()) })
}

/// Whether `name` is safe as a tool name on the wire (OpenAI function
/// names): 1 to 64 of `a-z A-Z 0-9 _ -`.
pub fn is_wire_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `tool:NAME` (an operator-defined tool, by its wire name) or `tool:*`.
fn tool_pattern(text: &str, rest: &str) -> Result<ResourcePattern, String> {
    let kind = ResourceKind::Tool;
    if rest == "*" {
        return Ok(ResourcePattern { kind, name: PatternName::Any });
    }
    if !is_wire_name(rest) {
        return Err(format!(
            "resource `{}`: `tool:` names a tool by its name (1 to 64 of a-z, A-Z, 0-9, _ and -)",
            crate::text::escape_line(text)
        ));
    }
    Ok(ResourcePattern { kind, name: PatternName::Exact(rest.to_string()) })
}

/// A grant as asked for: by an operator, an image, or a parent for its child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    /// What it covers.
    pub resource: ResourcePattern,
    /// With which rights.
    pub rights: Rights,
    /// What a match does.
    pub effect: Effect,
    /// Whether the holder may delegate it to children.
    pub delegable: bool,
    /// How many uses, if counted.
    pub uses: Option<u32>,
    /// How long it lasts from when it is granted.
    pub expires: Option<Duration>,
}

impl GrantSpec {
    /// An allow grant of `rights` on `resource`.
    pub fn allow(rights: Rights, resource: ResourcePattern) -> GrantSpec {
        GrantSpec { resource, rights, effect: Effect::Allow, delegable: false, uses: None, expires: None }
    }

    /// Parses `RIGHTS RESOURCE [EFFECT] [delegable] [uses=N] [expires=DURATION]`,
    /// e.g. `read,write fs:src/**` or `write fs:** ask`.
    pub fn parse(text: &str) -> Result<GrantSpec, String> {
        let mut words = text.split_whitespace();
        let (Some(rights), Some(resource)) = (words.next(), words.next()) else {
            return Err(format!(
                "grant `{text}` is incomplete: expected `RIGHTS RESOURCE [EFFECT] [delegable] [uses=N] [expires=DURATION]`"
            ));
        };
        let mut spec = GrantSpec::allow(Rights::parse(rights)?, ResourcePattern::parse(resource)?);
        for word in words {
            if let Some(n) = word.strip_prefix("uses=") {
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("grant `{text}`: `{word}` needs a positive whole number of uses"))?;
                spec.uses = Some(n);
            } else if let Some(d) = word.strip_prefix("expires=") {
                spec.expires = Some(parse_duration(d).map_err(|e| format!("grant `{text}`: {e}"))?);
            } else if word == "delegable" {
                spec.delegable = true;
            } else {
                spec.effect = Effect::parse(word).map_err(|e| format!("grant `{text}`: {e}"))?;
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for GrantSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rights, self.resource, self.effect)?;
        if self.delegable {
            f.write_str(" delegable")?;
        }
        if let Some(n) = self.uses {
            write!(f, " uses={n}")?;
        }
        if let Some(d) = self.expires {
            write!(f, " expires={}s", d.as_secs())?;
        }
        Ok(())
    }
}

/// A grant held by a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its id.
    pub id: GrantId,
    /// The process holding it.
    pub holder: Pid,
    /// What it covers.
    pub resource: ResourcePattern,
    /// With which rights.
    pub rights: Rights,
    /// What a match does.
    pub effect: Effect,
    /// Uses left on its own counter (derived grants also draw from their ancestors').
    pub uses_left: Option<i64>,
    /// When it stops matching.
    pub expires_at: Option<Timestamp>,
    /// Whether the holder may delegate it.
    pub delegable: bool,
    /// The grant it was derived from.
    pub parent: Option<GrantId>,
    /// When it (or, for liveness, an ancestor) was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Who granted it.
    pub granted_by: Actor,
    /// When.
    pub created_at: Timestamp,
}

impl Grant {
    /// This grant as a spec (for covering checks), with the uses it has left.
    pub fn as_spec(&self, now: Timestamp) -> GrantSpec {
        GrantSpec {
            resource: self.resource.clone(),
            rights: self.rights,
            effect: self.effect,
            delegable: self.delegable,
            uses: self.uses_left.map(|n| n.max(0) as u32),
            expires: self.expires_at.map(|t| t.since(now)),
        }
    }
}

/// How one (resource, right) was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The effect.
    pub effect: Effect,
    /// The grant that decided it (`None`: nothing matched, or another basis).
    pub grant: Option<GrantId>,
    /// What decided it.
    pub basis: Basis,
}

/// What a decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The process's grants: the deciding one, or none matching (deny).
    Grants,
    /// Kinship: a parent or own child needs no grant; a call only kinship
    /// can allow (a wait, a share) is refused for anyone else.
    Kinship,
    /// Confinement, before any grant was consulted: a path outside the
    /// process's workspace, or libos's own files. No grant can allow it.
    Confined,
    /// The process's memory view: the handle it holds on an object (and
    /// its rights), or that it holds none.
    View,
    /// The audit chain: a stored call is refused because it is not what
    /// the chain recorded when it parked.
    Binding,
}

impl Decision {
    /// The denial of something no grant can reach.
    pub fn confined() -> Decision {
        Decision::refused(Basis::Confined)
    }

    /// A denial on `basis`, no grant involved.
    pub fn refused(basis: Basis) -> Decision {
        Decision { effect: Effect::Deny, grant: None, basis }
    }

    /// Whether kinship allowed it.
    pub fn by_kinship(&self) -> bool {
        self.basis == Basis::Kinship && self.effect == Effect::Allow
    }
}

/// Decides one (resource, right) over `live` grants (not revoked, not
/// expired, uses left along their whole derivation chain).
pub fn decide<'g>(live: impl IntoIterator<Item = &'g Grant>, resource: &Resource, right: Right) -> Decision {
    let mut best: Option<(&Grant, (u8, usize))> = None;
    for g in live {
        if !g.rights.contains(right) || !g.resource.matches(resource) {
            continue;
        }
        let spec = g.resource.specificity();
        best = match best {
            None => Some((g, spec)),
            Some((b, bs)) if spec > bs || (spec == bs && g.effect > b.effect) => Some((g, spec)),
            keep => keep,
        };
    }
    match best {
        Some((g, _)) => Decision { effect: g.effect, grant: Some(g.id), basis: Basis::Grants },
        None => Decision::refused(Basis::Grants),
    }
}

/// Whether a delegable grant of the parent covers `wanted`: the covering
/// grant (the most specific) and the grant as kept (clamped to the parent's
/// expiry and uses), or why it is dropped.
pub fn covers(parent_grants: &[Grant], wanted: &GrantSpec, now: Timestamp) -> Result<(GrantId, GrantSpec), String> {
    let mut best: Option<(&Grant, GrantSpec)> = None;
    for g in parent_grants.iter().filter(|g| g.delegable) {
        if !wanted.resource.within(&g.resource) || !g.rights.is_superset(wanted.rights) || wanted.effect < g.effect {
            continue;
        }
        let mut kept = wanted.clone();
        // Clamp to the parent's expiry and uses: the child can never outlast
        // or outspend what it was derived from.
        if let Some(at) = g.expires_at {
            let left = at.since(now);
            kept.expires = Some(kept.expires.map_or(left, |d| d.min(left)));
        }
        if let Some(n) = g.uses_left {
            let n = n.max(0) as u32;
            kept.uses = Some(kept.uses.map_or(n, |u| u.min(n)));
        }
        let better = best.as_ref().is_none_or(|(b, _)| g.resource.specificity() > b.resource.specificity());
        if better {
            best = Some((g, kept));
        }
    }
    let Some((g, kept)) = best else {
        return Err(format!("`{wanted}` is not covered by any delegable grant of yours"));
    };
    if kept.effect != Effect::Deny
        && let Some(block) = parent_grants.iter().find(|q| {
            q.effect > kept.effect && q.rights.intersects(kept.rights) && q.resource.intersects(&kept.resource)
        })
    {
        return Err(format!(
            "`{wanted}` would bypass your `{} {} {}` (grant {})",
            block.rights, block.resource, block.effect, block.id
        ));
    }
    Ok((g.id, kept))
}

#[cfg(test)]
mod tests;
