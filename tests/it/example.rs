//! The embedding example (`examples/hundred_agents.rs`) runs in the test
//! suite, so it cannot rot.

#[path = "../../examples/hundred_agents.rs"]
mod hundred_agents;

async fn the_hundred_agents_example_runs_every_agent_to_its_end() {
    let s = hundred_agents::run(100).await.unwrap();
    assert_eq!((s.processes, s.exited, s.quanta, s.model_calls, s.tool_calls), (100, 100, 400, 400, 400));
    assert!(s.audit_intact);
    // Per agent: spawn, then per quantum a lease, a tool record and a state change.
    assert_eq!(s.audit_records, 100 * (1 + 4 * 3));
}

libos_kernel::tests!(async_multi_thread:
    the_hundred_agents_example_runs_every_agent_to_its_end,
);
