//! Memory: durable objects, private namespaces, views shared with children
//! with attenuated rights, pins materialised into the prompt.

use libos_kernel::{Kernel, ObjectId, OpenMode, Pid};
use pretty_assertions::assert_eq;
use serde_json::json;

use libos_kernel::testing::Backend;

use crate::world::{step, world_on};

async fn objects_are_shared_with_children_with_attenuated_rights_and_survive_a_reopen(backend: Backend) {
    let w = world_on(backend);
    let parent = w.spawn(
        "orchestrator",
        "plan and delegate",
        &[],
        vec![
            step("memory_write", json!({"name": "plan", "content": "1. read docs\n2. report", "kind": "note"})),
            step("memory_write", json!({"name": "plan", "content": "1. read docs\n2. report\n3. exit"})),
            step("spawn", json!({"image": "worker", "goal": "follow the plan"})),
            step("memory_share", json!({"oid": 1, "pid": 99, "rights": "read"})),
            step("memory_share", json!({"oid": 1, "pid": 2, "rights": "read"})),
            step("send", json!({"to": 2, "body": "the plan is shared"})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    // The child waits for word that the plan is shared.
    w.model.script(
        "follow the plan",
        vec![
            step("receive", json!({})),
            step("memory_list", json!({})),
            step("memory_read", json!({"object": 1})),
            step("memory_pin", json!({"oid": 1})),
            step("memory_read", json!({"object": "plan"})),
            step("memory_read", json!({"object": 2})),
            step("exit", json!({"result": "followed"})),
        ],
    );
    w.run().await;
    let child = Pid(parent.get() + 1);
    let t = w.transcript(parent);
    assert_eq!(t[0], "memory_write ok: wrote object 1 `plan` (note, 22 bytes, version 1)");
    assert_eq!(t[1], "memory_write ok: wrote object 1 `plan` (text, 30 bytes, version 2)");
    assert_eq!(t[3], "memory_share error: no process with pid 99: objects are shared only with your own children");
    let c = w.transcript(child);
    assert!(
        c.iter()
            .any(|l| l == "memory_read ok: object 1 `pid:1/plan` (text, version 2):\n1. read docs\n2. report\n3. exit"),
        "{c:?}"
    );
    assert!(c.contains(&"memory_read error: no object named `plan` in your namespace".to_string()), "{c:?}");
    assert!(c.contains(&"memory_read denied: permission denied: object 2 is not in your view".to_string()), "{c:?}");
    let view: Vec<String> = w
        .kernel
        .memory_view(child)
        .unwrap()
        .iter()
        .map(|h| format!("{} {}/{} {} pinned={}", h.oid, h.namespace, h.name, h.rights, h.pinned))
        .collect();
    assert_eq!(view, vec!["1 pid:1/plan read pinned=true"]);
    assert_eq!(w.kernel.pinned_objects(child).unwrap()[0].name, "plan");

    // Durable: a fresh kernel on the same store sees the same object.
    let reopened = Kernel::open(&w.location, OpenMode::Existing).unwrap();
    let o = reopened.memory_object(ObjectId(1)).unwrap();
    assert_eq!((o.version, o.content.as_str(), o.owner), (2, "1. read docs\n2. report\n3. exit", parent));
}

async fn a_child_cannot_share_more_than_it_holds(backend: Backend) {
    let w = world_on(backend);
    // Its child is an orchestrator too, so it needs spawn authority to hand down.
    let parent = w.spawn(
        "orchestrator",
        "delegate twice",
        &["spawn process:spawn delegable", "read image:* delegable"],
        vec![
            step("memory_write", json!({"name": "secret", "content": "s"})),
            step("spawn", json!({"image": "orchestrator", "goal": "middle manager"})),
            step("memory_share", json!({"oid": 1, "pid": 2, "rights": "read"})),
            step("send", json!({"to": 2, "body": "shared"})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.model.script(
        "middle manager",
        vec![
            step("receive", json!({})),
            step("spawn", json!({"image": "worker", "goal": "leaf"})),
            step("memory_share", json!({"oid": 1, "pid": 3, "rights": "read,write"})),
            step("memory_share", json!({"oid": 1, "pid": 3, "rights": "read"})),
            step("send", json!({"to": 3, "body": "shared"})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "managed"})),
        ],
    );
    w.model.script(
        "leaf",
        vec![
            step("receive", json!({})),
            step("memory_read", json!({"object": 1})),
            step("exit", json!({"result": "read"})),
        ],
    );
    w.run().await;
    let middle = Pid(parent.get() + 1);
    let t = w.transcript(middle);
    assert!(
        t.contains(
            &"memory_share denied: permission denied: you hold only read on object 1: you cannot share read,write"
                .to_string()
        ),
        "{t:?}"
    );
    assert!(t.contains(&"memory_share ok: shared object 1 `secret` with process 3 (read)".to_string()), "{t:?}");
    let leaf = w.transcript(Pid(middle.get() + 1));
    assert_eq!(leaf[1], "memory_read ok: object 1 `pid:1/secret` (text, version 1):\ns");
}

/// Recall by search: words an object contains find it, the object holding
/// the whole phrase ranks first, names weigh more than content, and
/// nothing outside the caller's view is ever returned (another process's
/// private object, however well it matches), while an object shared with
/// it is. A query is only words: engine syntax in it is read as words, and
/// one with no words, or a limit out of range, is rejected.
async fn memory_search_finds_objects_by_their_words_ranks_exact_matches_first_and_never_leaves_the_view(
    backend: Backend,
) {
    let w = world_on(backend);
    // First, another root process with a private object full of the same words (object 1).
    let other = w.spawn(
        "orchestrator",
        "keep a secret",
        &[],
        vec![
            step("memory_write", json!({"name": "launch window", "content": "launch window launch window apples"})),
            step("memory_search", json!({"query": "launch window"})),
            step("exit", json!({"result": "kept"})),
        ],
    );
    w.run().await;
    let parent = w.spawn(
        "orchestrator",
        "remember things",
        &[],
        vec![
            step("memory_write", json!({"name": "groceries", "content": "buy apples, pears and oat milk"})),
            step("memory_write", json!({"name": "recipe", "content": "an apple pie: apples, butter, flour"})),
            step("memory_write", json!({"name": "launch", "content": "the launch window opens at dawn"})),
            step("memory_write", json!({"name": "notes", "content": "the window cleaner comes on monday"})),
            step("spawn", json!({"image": "worker", "goal": "search what is shared"})),
            step("memory_share", json!({"oid": 4, "pid": 3, "rights": "read"})),
            step("send", json!({"to": 3, "body": "shared"})),
            step("memory_search", json!({"query": "launch window"})),
            step("memory_search", json!({"query": "apples"})),
            step("memory_search", json!({"query": "window", "limit": 1})),
            step("memory_search", json!({"query": "\"zebra\" OR NOT name:*"})),
            step("memory_search", json!({"query": "&&& ---"})),
            step("memory_search", json!({"query": "apples", "limit": 0})),
            step("wait", json!({"pid": "any"})),
            step("exit", json!({"result": "done"})),
        ],
    );
    w.model.script(
        "search what is shared",
        vec![
            step("receive", json!({})),
            step("memory_search", json!({"query": "launch window apples"})),
            step("exit", json!({"result": "searched"})),
        ],
    );
    w.run().await;
    // Each search's hits as `oid name score`; the snippets (each store
    // cuts its own) must mark the words found.
    let searches = |pid: Pid| -> Vec<Vec<String>> {
        let results: Vec<String> = w
            .transcript(pid)
            .into_iter()
            .filter_map(|l| l.strip_prefix("memory_search ok: ").map(str::to_string))
            .collect();
        results
            .iter()
            .map(|r| {
                r.lines()
                    .map(|hit| match hit.split_once(" (text, score ") {
                        Some((who, rest)) => {
                            let (score, snippet) = rest.split_once("): ").unwrap();
                            assert!(snippet.contains('[') && snippet.contains(']'), "{hit}");
                            format!("{who} {score}")
                        }
                        None => hit.to_string(),
                    })
                    .collect()
            })
            .collect()
    };
    let hits = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    // Its own object only: 4 for the phrase, 2 + 1 for each word in name and content.
    assert_eq!(searches(other), vec![hits(&["1 pid:1/launch window 10.00"])]);
    let child = Pid(parent.get() + 1);
    assert_eq!(
        searches(parent),
        vec![
            hits(&["4 pid:2/launch 8.00", "5 pid:2/notes 1.00"]),
            // Stemmed: `apple` matches `apples`; holding it twice ranks no higher.
            hits(&["2 pid:2/groceries 1.00", "3 pid:2/recipe 1.00"]),
            hits(&["4 pid:2/launch 1.00"]),
            hits(&["no object you may read matches `zebra or not name`"]),
        ]
    );
    // What was shared with it, and nothing else.
    assert_eq!(searches(child), vec![hits(&["4 pid:2/launch 4.00"])]);
    // The two bad queries were refused before anything ran, and said why.
    let rejected: Vec<String> = w
        .kernel
        .audit(&libos_kernel::AuditFilter { pid: Some(parent), ..Default::default() })
        .unwrap()
        .iter()
        .filter(|r| r.outcome == libos_kernel::Outcome::Rejected)
        .map(|r| r.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        rejected,
        vec![
            "invalid arguments for `memory_search`: the search query has no words (letters or digits) to look for",
            "invalid arguments for `memory_search`: limit must be between 1 and 50, not 0",
        ]
    );
}

libos_kernel::on_both_stores!(async:
    memory_search_finds_objects_by_their_words_ranks_exact_matches_first_and_never_leaves_the_view,
    objects_are_shared_with_children_with_attenuated_rights_and_survive_a_reopen,
    a_child_cannot_share_more_than_it_holds,
);
