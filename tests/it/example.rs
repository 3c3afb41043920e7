//! The embedding example (`examples/hundred_agents.rs`) runs in the test
//! suite, so it cannot rot: on its scripted model, and on a configured
//! profile (a mock OpenAI-compatible server standing in for a real one).

#[path = "../../examples/hundred_agents.rs"]
mod hundred_agents;

use hundred_agents::{Model, SCRIPTED_RESULT};
use libos_kernel::ProcState;
use libos_tests::{MockServer, Reply};
use pretty_assertions::assert_eq;

async fn the_hundred_agents_example_collects_every_agents_result() {
    let s = hundred_agents::run(100, Model::Scripted).await.unwrap();
    assert_eq!(s.agents.len(), 100);
    for a in &s.agents {
        assert_eq!((&a.end, a.quanta), (&ProcState::Exited { code: 0, result: SCRIPTED_RESULT.into() }, 4), "{a:?}");
        assert_eq!(a.result(), Some(SCRIPTED_RESULT));
        assert_eq!(
            a.goal,
            format!(
                "agent {}: list the workspace with list_dir, then exit with one line saying what is there",
                a.pid.get() - 1
            )
        );
    }
    assert_eq!((s.exited(), s.quanta, s.model_calls, s.tool_calls), (100, 400, 400, 400));
    assert!(s.audit_intact);
    // Per agent: spawn, then per quantum a lease, a tool record and a state change.
    assert_eq!(s.audit_records, 100 * (1 + 4 * 3));
}

async fn the_example_runs_on_a_configured_model_profile() {
    let mock = MockServer::start(Vec::new()).await;
    mock.always(Reply::tool_call("exit", serde_json::json!({"result": "notes.txt is there"})));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("libos.toml");
    let toml = format!(
        "[models.local]\nbase_url = \"{}\"\nmodel = \"mock-1\"\ncall_mode = \"native\"\nmax_retries = 0\n",
        mock.base_url()
    );
    std::fs::write(&config, toml).unwrap();
    let s = hundred_agents::run(3, Model::Profile { config, profile: "local".into() }).await.unwrap();
    let results: Vec<Option<&str>> = s.agents.iter().map(|a| a.result()).collect();
    assert_eq!(results, [Some("notes.txt is there"); 3]);
    assert_eq!(s.agents.iter().map(|a| a.tokens).collect::<Vec<_>>(), [120, 120, 120], "the server's usage");
    // One request per agent, each carrying that agent's goal.
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    for i in 0..3 {
        let goal = format!("agent {i}: list the workspace");
        assert!(requests.iter().any(|r| r.body.to_string().contains(&goal)), "no request for {goal:?}");
    }
    let unknown =
        hundred_agents::run(1, Model::Profile { config: dir.path().join("libos.toml"), profile: "nope".into() })
            .await
            .unwrap_err();
    assert!(unknown.to_string().starts_with("no model profile `nope`"), "{unknown}");
}

libos_kernel::tests!(async_multi_thread:
    the_hundred_agents_example_collects_every_agents_result,
    the_example_runs_on_a_configured_model_profile,
);
