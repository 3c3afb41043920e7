//! The embedding example (`examples/hundred_agents.rs`) runs in the test
//! suite, so it cannot rot.

#[path = "../../examples/hundred_agents.rs"]
mod hundred_agents;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hundred_agents_example_runs_every_agent_to_its_end() {
    let s = hundred_agents::run(100).await.unwrap();
    assert_eq!((s.processes, s.exited, s.quanta, s.model_calls, s.tool_calls), (100, 100, 400, 400, 400));
    assert!(s.audit_intact);
    // Per agent: spawn, then per quantum a lease, a tool record and a state change.
    assert_eq!(s.audit_records, 100 * (1 + 4 * 3));
}
