//! `ask_human(question)`: ask the operator and park for the answer. A
//! kernel call needing `human:operator` send.

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::syscall::{Need, Syscall};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dispatch::{Caller, Dispatch, Refusal};
use crate::tool::Tool;

/// Arguments of `ask_human`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskHumanArgs {
    /// The question.
    pub question: String,
}

/// `ask_human`.
pub struct AskHuman;

impl Tool for AskHuman {
    type Args = AskHumanArgs;
    const NAME: &'static str = "ask_human";
    const DESCRIPTION: &'static str = "Ask the operator a question and wait (parked) for the answer.";

    fn check(a: &AskHumanArgs) -> Result<(), String> {
        if a.question.trim().is_empty() {
            return Err("question is empty".to_string());
        }
        Ok(())
    }

    fn needs(_: &AskHumanArgs, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        Ok(vec![Need::grant(Resource::new(ResourceKind::Human, "operator"), Right::Send)])
    }

    fn dispatch(a: &AskHumanArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::AskHuman { question: a.question.clone() }))
    }
}
