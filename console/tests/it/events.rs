//! The live event stream: typed events as records commit, and resuming
//! with `Last-Event-ID`.

use libos_kernel::testing::Backend;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::Server;

/// Reads SSE events (`event`, parsed `data`, `id`) until `until` says stop.
async fn read_events(
    mut r: reqwest::Response,
    until: impl Fn(&[(String, Value, Option<String>)]) -> bool,
) -> Vec<(String, Value, Option<String>)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let read = async {
        while !until(&out) {
            let Some(chunk) = r.chunk().await.unwrap() else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut event, mut data, mut id) = (String::new(), String::new(), None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    }
                }
                if !data.is_empty() {
                    out.push((event, serde_json::from_str(&data).unwrap(), id));
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("events arrived in time");
    out
}

fn audits(events: &[(String, Value, Option<String>)]) -> usize {
    events.iter().filter(|(e, _, _)| e == "audit").count()
}

async fn state_changes_approvals_and_records_stream_live_with_ids(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let stream = s.client.get(format!("{}/api/events", s.base)).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // Committed after the stream opened: spawn, lease, the parked call, its request, park.
    let pid = s.parked_on_approval("write the report");
    let events = read_events(stream, |e| audits(e) >= 5).await;
    let shape: Vec<(String, String, Option<String>)> = events
        .iter()
        .map(|(e, v, id)| {
            let what = match e.as_str() {
                "audit" => format!("{} {}", v["action"].as_str().unwrap(), v["outcome"].as_str().unwrap()),
                "process" => format!("pid {} {}", v["pid"], v["state"].as_str().unwrap()),
                "approval" => format!("request {} {}", v["id"], v["status"].as_str().unwrap()),
                other => other.to_string(),
            };
            (e.clone(), what, id.clone())
        })
        .collect();
    let p = pid.get();
    let ev = |e: &str, what: String, id: Option<&str>| (e.to_string(), what, id.map(str::to_string));
    assert_eq!(
        shape,
        [
            ev("process", format!("pid {p} waiting"), None),
            ev("audit", "spawn ok".into(), Some("1")),
            ev("process", format!("pid {p} waiting"), None),
            ev("audit", "lease ok".into(), Some("2")),
            ev("process", format!("pid {p} waiting"), None),
            ev("approval", "request 1 open".into(), None),
            ev("audit", "write_file parked".into(), Some("3")),
            ev("audit", "request ok".into(), Some("4")),
            ev("process", format!("pid {p} waiting"), None),
            ev("audit", "park ok".into(), Some("5")),
        ]
    );
}

async fn a_reconnecting_client_resumes_after_its_last_event_id(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    s.busy("one");
    s.busy("two");
    let head = s.kernel.audit_head().unwrap().0.get();
    assert!(head >= 6, "{head}");
    // Everything from the start.
    let all = s.client.get(format!("{}/api/events?after=0", s.base)).send().await.unwrap();
    let all = read_events(all, |e| audits(e) as i64 >= head).await;
    let ids: Vec<i64> = all.iter().filter_map(|(_, _, id)| id.as_ref()).map(|id| id.parse().unwrap()).collect();
    assert_eq!(ids, (1..=head).collect::<Vec<_>>());
    // Resuming after record 3: the next is 4, nothing before it again.
    let resumed = s.client.get(format!("{}/api/events", s.base)).header("last-event-id", "3").send().await.unwrap();
    let resumed = read_events(resumed, |e| audits(e) as i64 >= head - 3).await;
    let ids: Vec<i64> = resumed.iter().filter_map(|(_, _, id)| id.as_ref()).map(|id| id.parse().unwrap()).collect();
    assert_eq!(ids, (4..=head).collect::<Vec<_>>());
    // A bad id is a clear error.
    let (code, body) = {
        let r = s.client.get(format!("{}/api/events", s.base)).header("last-event-id", "x").send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!((code, &body["error"]["code"]), (400, &Value::from("bad_request")));
}

async fn commits_by_another_process_reach_the_stream(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let stream = s.client.get(format!("{}/api/events", s.base)).send().await.unwrap();
    // A second handle on the same store, as a CLI in another shell would be.
    let other = libos_kernel::Kernel::open(&s.location, libos_kernel::OpenMode::Existing).unwrap();
    let images = libos_images::ImageSet::shipped().unwrap();
    let image = images.get("worker").unwrap();
    let digest = other.register_image(&image.name, &image.version, &image.source).unwrap();
    other
        .spawn(&libos_kernel::SpawnSpec {
            image: digest,
            goal: "from elsewhere".into(),
            workspace: "/tmp".into(),
            parent: None,
            priority: 0,
            actor: libos_kernel::Actor::operator(),
            budget: libos_kernel::budget::Budget::unlimited(),
        })
        .unwrap();
    let events = read_events(stream, |e| audits(e) >= 1).await;
    assert_eq!(events.last().unwrap().1["detail"], "spawned worker as pid 1");
}

async fn a_refused_decision_on_a_missing_request_does_not_stall_the_stream(backend: Backend) {
    let s = Server::start_on(backend, true).await;
    let stream = s.client.get(format!("{}/api/events", s.base)).send().await.unwrap();
    let (code, _) = s.post("/api/requests/999/approve", serde_json::json!({})).await;
    assert_eq!(code, 404);
    s.spawn("after the refusal");
    let events = read_events(stream, |e| audits(e) >= 2).await;
    let shape: Vec<(String, String)> = events
        .iter()
        .map(|(e, v, _)| {
            (e.clone(), format!("{} {}", v["action"].as_str().unwrap_or(""), v["outcome"].as_str().unwrap_or("")))
        })
        .filter(|(e, _)| e != "process")
        .collect();
    let ev = |e: &str, what: &str| (e.to_string(), what.to_string());
    assert_eq!(shape, [ev("audit", "approve error"), ev("audit", "spawn ok")]);
}

libos_kernel::on_both_stores!(async:
    state_changes_approvals_and_records_stream_live_with_ids,
    a_refused_decision_on_a_missing_request_does_not_stall_the_stream,
    a_reconnecting_client_resumes_after_its_last_event_id,
    commits_by_another_process_reach_the_stream,
);
