//! Budgets: running out of any dimension ends the process `failed` with
//! `budget_exhausted` (its work so far kept); a child's budget is carved out
//! of its parent's and settled when the child ends.

use libos_kernel::budget::{Budget, Dimension};
use libos_kernel::{FailureKind, Pid, ProcState};
use libos_runtime::config::Price;
use pretty_assertions::assert_eq;
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{Step, step, world_on};

fn budget(text: &str) -> Budget {
    Budget::parse([text]).unwrap()
}

fn nows(n: usize) -> Vec<Step> {
    let mut steps: Vec<Step> = (0..n).map(|_| step("now", json!({}))).collect();
    steps.push(step("exit", json!({"result": "done"})));
    steps
}

/// Numbers vary with prompt sizes; the wording must not.
fn digits(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn failure(state: &ProcState) -> (FailureKind, String) {
    match state {
        ProcState::Failed { kind, error } => (*kind, error.clone()),
        other => panic!("expected a failure, found {other}"),
    }
}

async fn running_out_of_any_dimension_ends_the_process_with_budget_exhausted(backend: Backend) {
    let mut w = world_on(backend);
    // Every token costs a micro-dollar.
    w.router.set_price("default", Price { input: 1.0, output: 1.0 });
    let cases: Vec<(&str, Budget, usize)> = vec![
        ("quanta", budget("quanta=2"), 2),
        ("model calls", budget("model_calls=1"), 1),
        ("output tokens", budget("tokens_out=1"), 1),
        ("cost", budget("cost_usd=0.0001"), 1),
        ("tool calls", budget("tool_calls=3"), 3),
        ("wall time", budget("wall_time=0s"), 0),
    ];
    let pids: Vec<(&str, Pid, usize)> = cases
        .iter()
        .map(|(name, b, done)| (*name, w.spawn_with_budget("assistant", name, &[], nows(5), *b), *done))
        .collect();
    let tokens = w.spawn_with_budget("assistant", "input tokens", &[], nows(5), budget("tokens_in=100"));
    w.run().await;
    let mut reasons = Vec::new();
    for (name, pid, done) in pids {
        let (kind, why) = failure(&w.state(pid));
        assert_eq!(kind, FailureKind::BudgetExhausted, "{name}");
        // What it did before is kept.
        assert_eq!(w.transcript(pid).len(), done, "{name}");
        reasons.push(digits(&why));
    }
    let (kind, why) = failure(&w.state(tokens));
    assert_eq!((kind, w.model_calls(tokens)), (FailureKind::BudgetExhausted, 0), "the call was never made");
    reasons.push(digits(&why));
    assert_eq!(
        reasons,
        vec![
            "quanta budget exhausted: # of # used",
            "model_calls budget exhausted: # of # used",
            "tokens_out budget exhausted: # of # used",
            "cost_usd budget exhausted: $#.# of $#.# used",
            "tool_calls budget exhausted: # of # used",
            "wall_time budget exhausted: #s of #s used",
            "tokens_in budget exhausted: the next prompt needs ~# tokens, # are left",
        ]
    );
}

async fn a_childs_budget_is_carved_out_of_its_parents_and_settled_when_it_ends(backend: Backend) {
    let w = world_on(backend);
    let parent = w.spawn_with_budget(
        "orchestrator",
        "delegate",
        &[],
        vec![
            step("spawn", json!({"image": "worker", "goal": "small job", "budget": "quanta=3,tool_calls=3"})),
            step("spawn", json!({"image": "worker", "goal": "second job"})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "done"})),
        ],
        budget("quanta=20,tool_calls=20,children=1"),
    );
    w.model.script("small job", nows(1));
    w.model.script("second job", nows(1));
    // Stop the parent after its first spawn to look at the books.
    let owner = libos_kernel::SchedulerId("t".into());
    let env = libos_runtime::quantum::env(w.kernel.clone(), w.router.clone(), Default::default());
    let lease = w.kernel.lease(&owner, std::time::Duration::from_secs(60), 1, &[]).unwrap().pop().unwrap();
    libos_runtime::quantum::run(env, lease).await.unwrap();
    let child = Pid(parent.get() + 1);
    let p = w.kernel.process(parent).unwrap();
    let c = w.kernel.process(child).unwrap();
    assert_eq!(c.budget.to_string(), "quanta=3 tool_calls=3 children=0 wall_time=1800s");
    assert_eq!(p.reserved[Dimension::Quanta as usize], 3);
    assert_eq!(p.usage.children, 1);

    w.run().await;
    let t = w.transcript(parent);
    assert_eq!(t[1], "spawn error: children budget exhausted: 1 of 1 spawned");
    assert!(t[2].starts_with(&format!("wait ok: child {child} (worker) exited(0)")), "{t:?}");
    let p = w.kernel.process(parent).unwrap();
    // The reservation is released; what the child used is charged instead.
    assert_eq!((p.reserved, p.children_spent[Dimension::Quanta as usize]), ([0; 8], 2));
    assert_eq!(w.state(parent), ProcState::Exited { code: 0, result: "done".into() });
}

/// Issue 17, defect 1: a `spawn` without a budget gave the child all its
/// parent had left, so the parent failed `budget_exhausted` at its next
/// quantum, unable even to `wait` ("10 of 10 used (9 held for children)");
/// and the child's `children` allotment did not count the child itself.
/// Now a child without a budget gets its image's, capped at half of what
/// the parent can spare, and the parent keeps enough to wait and exit.
async fn a_child_without_a_budget_leaves_its_parent_enough_to_wait_and_exit(backend: Backend) {
    let w = world_on(backend);
    let delegate = |job: &str, asked: Option<&str>| {
        let mut spawn = json!({"image": "worker", "goal": job});
        if let Some(b) = asked {
            spawn["budget"] = json!(b);
        }
        vec![step("spawn", spawn), step("wait", json!({"pid": "any"})), step("exit", json!({"result": "done"}))]
    };
    let plain = w.spawn_with_budget(
        "orchestrator",
        "delegate a",
        &[],
        delegate("job a", None),
        budget("quanta=10,tool_calls=10,children=3"),
    );
    // Asking for more than can be spared is capped: the parent keeps two.
    let greedy = w.spawn_with_budget(
        "orchestrator",
        "delegate b",
        &[],
        delegate("job b", Some("quanta=10,tool_calls=10")),
        budget("quanta=10,tool_calls=10,children=1"),
    );
    w.model.script("job a", nows(1));
    w.model.script("job b", nows(1));
    w.run().await;
    let done = ProcState::Exited { code: 0, result: "done".into() };
    let child_budget = |parent: Pid| {
        let child = w
            .kernel
            .processes(libos_kernel::ProcessFilter::All)
            .unwrap()
            .into_iter()
            .find(|p| p.ppid == Some(parent))
            .unwrap();
        child.budget.to_string()
    };
    assert_eq!(
        [(w.state(plain), child_budget(plain)), (w.state(greedy), child_budget(greedy))],
        [
            (done.clone(), "quanta=4 tool_calls=4 children=0 wall_time=1800s".to_string()),
            (done, "quanta=7 tool_calls=7 children=0 wall_time=1800s".to_string()),
        ],
        "{:?} {:?}",
        w.transcript(plain),
        w.transcript(greedy)
    );
}

libos_kernel::on_both_stores!(async:
    running_out_of_any_dimension_ends_the_process_with_budget_exhausted,
    a_childs_budget_is_carved_out_of_its_parents_and_settled_when_it_ends,
    a_child_without_a_budget_leaves_its_parent_enough_to_wait_and_exit,
);
