//! `spawn(image, goal, grants, budget)`: start a child process. A kernel
//! call whose image the runtime resolves first; the grants it asks for are
//! attenuated by the kernel against the caller's delegable grants.

use libos_core::caps::{Resource, ResourceKind, Right};
use libos_core::syscall::Need;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::builtin::args::{BudgetArg, GrantArg};
use crate::dispatch::{Caller, Dispatch, Refusal};
use crate::tool::Tool;

/// Arguments of `spawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnArgs {
    /// Image name, e.g. `worker`.
    pub image: String,
    /// What the child should do.
    pub goal: String,
    /// Grants for the child, e.g. "read fs:data/**".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantArg>,
    /// Limits for the child, e.g. "quanta=10,tool_calls=10"; carved out of yours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetArg>,
}

/// `spawn`.
pub struct Spawn;

impl Tool for Spawn {
    type Args = SpawnArgs;
    const NAME: &'static str = "spawn";
    const DESCRIPTION: &'static str = "Start a child process from an image with a goal. Grants you ask for are kept \
                                       only where a delegable grant of yours covers them; the result says which were \
                                       kept and which dropped. Returns the child's pid.";

    fn check(a: &SpawnArgs) -> Result<(), String> {
        if a.goal.trim().is_empty() {
            return Err("goal is empty".to_string());
        }
        Ok(())
    }

    fn needs(a: &SpawnArgs, _caller: Caller<'_>) -> Result<Vec<Need>, Refusal> {
        Ok(vec![
            Need::grant(Resource::new(ResourceKind::Spawn, ""), Right::Spawn),
            Need::grant(Resource::new(ResourceKind::Image, a.image.clone()), Right::Read),
        ])
    }

    fn dispatch(a: &SpawnArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Spawn {
            image: a.image.clone(),
            goal: a.goal.clone(),
            grants: a.grants.iter().map(|g| g.spec.clone()).collect(),
            budget: a.budget.as_ref().map(|b| b.budget),
        })
    }
}
