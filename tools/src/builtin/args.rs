//! Argument types several built-ins share, typed when they are
//! deserialised: a pid is a positive [`Pid`], a grant a [`GrantSpec`], a
//! budget a [`Budget`]. Each keeps the form the model wrote where the
//! canonical arguments (what audits and approvals hold) must show it, and
//! has the schema the model sees.

use std::borrow::Cow;
use std::time::Duration;

use libos_core::budget::Budget;
use libos_core::caps::{Effect, GrantSpec, ResourcePattern, Rights};
use libos_core::ipc::MessageKind;
use libos_core::syscall::SignalAction;
use libos_core::{ObjectId, Pid, time::parse_duration};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A plain `{"type": "string", "enum": [...]}` schema for an enum of
/// words (the derive would make a `oneOf` of described constants).
macro_rules! word_schema {
    ($ty:ty, $name:literal, [$($word:literal),+]) => {
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "enum": [$($word),+]})
            }
        }
    };
}

/// A positive integer id from the model.
fn positive<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    if n > 0 { Ok(n) } else { Err(D::Error::custom(format!("{what} must be a positive integer, not {n}"))) }
}

/// A process id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidArg(pub Pid);

impl Serialize for PidArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0.get())
    }
}

impl<'de> Deserialize<'de> for PidArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        positive(d, "a pid").map(|n| PidArg(Pid(n)))
    }
}

impl JsonSchema for PidArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Pid".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1})
    }
}

/// A memory object id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectIdArg(pub ObjectId);

impl Serialize for ObjectIdArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0.get())
    }
}

impl<'de> Deserialize<'de> for ObjectIdArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        positive(d, "an object id").map(|n| ObjectIdArg(ObjectId(n)))
    }
}

impl JsonSchema for ObjectIdArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ObjectId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1})
    }
}

/// An integer or a string, as a model may write a pid or a keyword.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrText {
    Int(i64),
    Text(String),
}

/// Reads a pid, or `keyword`, from an integer or a string.
fn pid_or<'de, D: Deserializer<'de>>(d: D, keyword: &str, field: &str) -> Result<Option<Pid>, D::Error> {
    let expected = || format!("`{field}` must be a pid or \"{keyword}\"");
    match IntOrText::deserialize(d).map_err(|_| D::Error::custom(expected()))? {
        IntOrText::Int(n) if n > 0 => Ok(Some(Pid(n))),
        IntOrText::Int(n) => Err(D::Error::custom(format!("{}, not {n}", expected()))),
        IntOrText::Text(s) if s == keyword => Ok(None),
        IntOrText::Text(s) => {
            s.parse::<Pid>().map(Some).map_err(|_| D::Error::custom(format!("{}, not `{s}`", expected())))
        }
    }
}

/// A message's recipient: a pid, or the caller's parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// By pid.
    Pid(Pid),
    /// `"parent"`.
    Parent,
}

impl Recipient {
    /// The pid, given the caller's parent.
    pub fn resolve(self, parent: Option<Pid>) -> Result<Pid, String> {
        match self {
            Recipient::Pid(p) => Ok(p),
            Recipient::Parent => parent.ok_or_else(|| "you have no parent to send to".to_string()),
        }
    }
}

impl Serialize for Recipient {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Recipient::Pid(p) => s.serialize_i64(p.get()),
            Recipient::Parent => s.serialize_str("parent"),
        }
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(pid_or(d, "parent", "to")?.map_or(Recipient::Parent, Recipient::Pid))
    }
}

impl JsonSchema for Recipient {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Recipient".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["parent"]}]})
    }
}

/// What `wait` waits for: one child, or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTarget {
    /// One child.
    Pid(Pid),
    /// `"any"`.
    Any,
}

impl Serialize for WaitTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WaitTarget::Pid(p) => s.serialize_i64(p.get()),
            WaitTarget::Any => s.serialize_str("any"),
        }
    }
}

impl<'de> Deserialize<'de> for WaitTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(pid_or(d, "any", "pid")?.map_or(WaitTarget::Any, WaitTarget::Pid))
    }
}

impl JsonSchema for WaitTarget {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "WaitTarget".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["any"]}]})
    }
}

/// A message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindArg {
    /// An ordinary message.
    Normal,
    /// Shown first; wakes a receiving or sleeping process.
    Interrupt,
}

word_schema!(KindArg, "MessageKind", ["normal", "interrupt"]);

impl From<KindArg> for MessageKind {
    fn from(k: KindArg) -> MessageKind {
        match k {
            KindArg::Normal => MessageKind::Normal,
            KindArg::Interrupt => MessageKind::Interrupt,
        }
    }
}

/// What `signal` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionArg {
    /// Stop it where it is.
    Pause,
    /// Return it to where it was paused.
    Resume,
    /// End it.
    Kill,
}

word_schema!(ActionArg, "SignalAction", ["pause", "resume", "kill"]);

impl From<ActionArg> for SignalAction {
    fn from(a: ActionArg) -> SignalAction {
        match a {
            ActionArg::Pause => SignalAction::Pause,
            ActionArg::Resume => SignalAction::Resume,
            ActionArg::Kill => SignalAction::Kill,
        }
    }
}

/// A child's budget as `dimension=limit` pairs, parsed when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetArg {
    /// As written (what the canonical arguments show).
    pub text: String,
    /// Parsed.
    pub budget: Budget,
}

impl Serialize for BudgetArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for BudgetArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let budget = Budget::parse([text.as_str()]).map_err(D::Error::custom)?;
        Ok(BudgetArg { text, budget })
    }
}

impl JsonSchema for BudgetArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Budget".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

/// A grant effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectArg {
    /// Allowed.
    Allow,
    /// Parked for a human's approval.
    Ask,
    /// Refused.
    Deny,
}

word_schema!(EffectArg, "Effect", ["allow", "ask", "deny"]);

impl From<EffectArg> for Effect {
    fn from(e: EffectArg) -> Effect {
        match e {
            EffectArg::Allow => Effect::Allow,
            EffectArg::Ask => Effect::Ask,
            EffectArg::Deny => Effect::Deny,
        }
    }
}

/// Rights as `"read,write"` or `["read", "write"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RightsArg {
    /// Comma-separated.
    Text(String),
    /// A list.
    List(Vec<String>),
}

/// The object form of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantObject {
    /// `fs:src/**`, `image:worker`, ...
    pub resource: String,
    /// `read,write` or a list.
    pub rights: RightsArg,
    /// `allow` (default), `ask` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<EffectArg>,
    /// Whether the child may delegate it further.
    #[serde(default)]
    pub delegable: bool,
    /// A use count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub uses: Option<u32>,
    /// A lifetime such as `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A grant as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GrantForm {
    /// `"read fs:data/** delegable uses=3"`.
    Text(String),
    /// `{resource, rights, effect, delegable, uses, expires}`.
    Object(GrantObject),
}

impl GrantForm {
    fn to_spec(&self) -> Result<GrantSpec, String> {
        match self {
            GrantForm::Text(t) => GrantSpec::parse(t),
            GrantForm::Object(o) => {
                let rights = match &o.rights {
                    RightsArg::Text(t) => Rights::parse(t)?,
                    RightsArg::List(l) => Rights::parse(&l.join(","))?,
                };
                let mut spec = GrantSpec::allow(rights, ResourcePattern::parse(&o.resource)?);
                if let Some(e) = o.effect {
                    spec.effect = e.into();
                }
                spec.delegable = o.delegable;
                if o.uses == Some(0) {
                    return Err(format!("grant `{}`: `uses` must be at least 1", o.resource));
                }
                spec.uses = o.uses;
                spec.expires = o.expires.as_deref().map(parse_duration).transpose()?;
                Ok(spec)
            }
        }
    }
}

/// A grant in a `spawn` call, parsed when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantArg {
    /// As written (what the canonical arguments show).
    pub form: GrantForm,
    /// Parsed.
    pub spec: GrantSpec,
}

impl Serialize for GrantArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.form.serialize(s)
    }
}

impl<'de> Deserialize<'de> for GrantArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = GrantForm::deserialize(d).map_err(|_| {
            D::Error::custom("a grant is a string like \"read fs:data/**\" or an object {resource, rights, ...}")
        })?;
        let spec = form.to_spec().map_err(D::Error::custom)?;
        Ok(GrantArg { form, spec })
    }
}

impl JsonSchema for GrantArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Grant".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        GrantForm::json_schema(generator)
    }
}

/// Longest sleep, in seconds (a week).
pub const MAX_SLEEP_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A sleep's length in seconds: finite, from 0 to a week.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(f64);

impl Seconds {
    /// As a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = f64::deserialize(d)?;
        if !n.is_finite() || n < 0.0 {
            return Err(D::Error::custom(format!("seconds must be a non-negative number, not {n}")));
        }
        if n > MAX_SLEEP_SECONDS {
            return Err(D::Error::custom(format!("seconds must be at most {MAX_SLEEP_SECONDS} (a week)")));
        }
        Ok(Seconds(n))
    }
}

impl JsonSchema for Seconds {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Seconds".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "number", "minimum": 0, "maximum": MAX_SLEEP_SECONDS})
    }
}

/// Rights on a memory object: `read` or `read,write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRights {
    /// As written.
    pub text: String,
    /// Parsed: read and write only.
    pub rights: Rights,
}

impl Serialize for ObjectRights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ObjectRights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let rights = Rights::parse(&text).map_err(D::Error::custom)?;
        if !Rights::parse("read,write").unwrap_or_default().is_superset(rights) {
            return Err(D::Error::custom(format!("objects take read and write rights, not `{text}`")));
        }
        Ok(ObjectRights { text, rights })
    }
}

impl JsonSchema for ObjectRights {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "ObjectRights".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "enum": ["read", "read,write"]})
    }
}
