//! Model text is text: a goal, an image name, arguments, a rationale and a
//! result written as markup render inert, controls shown escaped. And the
//! audit table: denied and failed rows stand out, and it pages.

use libos_kernel::caps::{Resource, Right};
use libos_kernel::quantum::{Action, Next, ToolResultRecord};
use libos_kernel::{Actor, Outcome, QuantumEnd, SpawnSpec};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::Browser;
use crate::support::{Call, Server, TOKEN};

const IMG: &str = "<img src=x onerror=\"window.pwned=(window.pwned||0)+1\">";
/// The same without spaces, for a path a grant names.
const PATH: &str = "<img/src=x/onerror=window.pwned=2>";

async fn markup_from_a_model_renders_as_inert_text_everywhere_it_is_shown() {
    let s = Server::start().await;
    let images = libos_images::ImageSet::shipped().unwrap();
    let image = images.get("coder").unwrap();
    let name = format!("coder{IMG}");
    let digest = s.kernel.register_image(&name, &image.version, &image.source).unwrap();
    let spec = SpawnSpec {
        image: digest,
        goal: format!("{IMG}\u{1b}[2J<script>window.pwned=9</script> gpj.\u{202e}exe"),
        workspace: s.workspace.clone(),
        parent: None,
        priority: 0,
        actor: Actor::operator(),
        budget: libos_kernel::budget::Budget::unlimited(),
    };
    let pid = s.kernel.spawn_with_grants(&spec, &image.grants).unwrap();
    let lease = s.lease(Some(pid));
    let result = ToolResultRecord { outcome: Outcome::Ok, content: format!("</pre>{IMG}") };
    let call = Call {
        tool: "read_file",
        args: &json!({"path": format!("{IMG}.txt")}).to_string(),
        rationale: &format!("<b>trust me</b>{IMG}"),
        checks: Vec::new(),
        action: Action::Done { result, next: Next::Continue },
    };
    s.commit(&lease, call);
    let args = json!({"path": format!("x{PATH}.md"), "content": format!("<script>window.pwned=7</script>{IMG}")});
    let said = format!("<b>trust me</b>{IMG}");
    s.ask_saying(pid, &said, "write_file", &args.to_string(), Resource::fs(&format!("x{PATH}.md")), Right::Write);
    s.kernel
        .send(
            &libos_kernel::ipc::NewMessage {
                to: pid,
                body: IMG.into(),
                kind: libos_kernel::ipc::MessageKind::Normal,
                channel: None,
                correlation_id: None,
                reply_to: None,
            },
            &Actor::operator(),
        )
        .unwrap();

    let Some(b) = Browser::open(&format!("{}/#token={TOKEN}", s.base)).await else { return };
    let card = b.text_until("the card", "[data-request]", |t| t.contains("trust me")).await;
    b.click(&format!("#tree .proc[data-pid='{pid}']")).await;
    let view = b.text_until("the process view", "#timeline", |t| t.contains("waits for approval")).await;
    b.text_until("the inbox", "#inbox", |t| t.contains("onerror")).await;
    b.click("[data-request] details summary").await;
    let page = b.js("return document.body.innerText;").await;
    let page = page.as_str().unwrap();
    // Shown as the text it is, in the tree, the card, the timeline, the inbox:
    for (where_, text) in [("the card", card.as_str()), ("the timeline", view.as_str())] {
        assert!(
            text.contains("<b>trust me</b><img src=x onerror="),
            "{where_} does not show the markup as text:\n{text}"
        );
    }
    assert!(page.contains(&format!("coder{IMG}")), "the image name is not shown as text");
    assert!(
        page.contains("\\u{1b}[2J<script>window.pwned=9</script> gpj.\\u{202e}exe"),
        "controls are not shown escaped"
    );
    assert!(page.contains(&format!("</pre>{IMG}")), "the result is not shown as text");
    // ... and never parsed: no element, no handler ran.
    let parsed = b
        .js("return [document.querySelectorAll('img, b').length, document.scripts.length, window.pwned === undefined];")
        .await;
    assert_eq!(parsed, json!([0, 1, true]));
    b.fits("hostile text").await;
    b.screenshot("hostile-text", "#procview").await;
}

const OUTCOMES: &str = "return [...document.querySelectorAll('#audit tr')].map(r => r.dataset.seq);";

fn seqs(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().parse().unwrap()).collect()
}

async fn the_audit_table_pages_and_denied_and_failed_rows_stand_out() {
    let s = Server::start().await;
    for n in 0..14 {
        s.busy(&format!("chore {n}"));
    }
    let denied = s.spawn("reach for the secret");
    let lease = s.lease(Some(denied));
    let result = ToolResultRecord { outcome: Outcome::Denied, content: "denied: read fs:../secret".into() };
    let call = Call {
        tool: "read_file",
        args: r#"{"path":"../secret"}"#,
        rationale: "Looking around.",
        checks: Vec::new(),
        action: Action::Done { result, next: Next::Continue },
    };
    s.commit(&lease, call);
    let failed = s.lease(Some(denied));
    let fail = QuantumEnd::Fail { kind: libos_kernel::FailureKind::InvalidOutput, error: "rejected 3 times".into() };
    s.kernel.end_quantum(&failed, None, fail).unwrap();
    let all: Vec<i64> = s.kernel.audit(&Default::default()).unwrap().iter().map(|r| r.seq.get()).collect();
    assert!(all.len() > 60, "{} records", all.len());
    let newest: Vec<i64> = all.iter().rev().take(50).copied().collect();

    let Some(b) = Browser::open(&format!("{}/#token={TOKEN}", s.base)).await else { return };
    let first = b.until("the newest page", OUTCOMES, |v| v.as_array().is_some_and(|a| a.len() == 50)).await;
    assert_eq!(seqs(&first), newest);
    let info = b.text_until("the page info", "#pageinfo", |t| t.starts_with("page 1")).await;
    assert_eq!(info, format!("page 1 · seq {} to {} · live", newest[0], newest[49]));
    // Denied and failed rows stand out from the rest.
    let colours = b
        .js("const bg = (css) => getComputedStyle(document.querySelector(css)).backgroundColor; \
             return [bg('#audit tr[data-outcome=denied]'), bg('#audit tr.s-bad'), bg('#audit tr[data-outcome=ok]:not(.s-bad)')];")
        .await;
    let plain = &colours[2];
    assert!(colours[0] != *plain && colours[1] != *plain, "denied and failed rows look like the others: {colours}");
    b.fits("the audit log").await;
    b.screenshot("audit-table", "#auditsec").await;

    b.click("#polder").await;
    let second = b.until("the older page", OUTCOMES, |v| seqs(v).first() == Some(&newest[49].saturating_sub(1))).await;
    let older: Vec<i64> = all.iter().rev().skip(50).take(50).copied().collect();
    assert_eq!(seqs(&second), older);
    let newer =
        b.js("return [document.getElementById('pnewer').disabled, document.getElementById('polder').disabled];").await;
    assert_eq!(newer, json!([false, all.len() <= 100]));
    b.click("#pnewer").await;
    let back = b.until("the newest page again", OUTCOMES, |v| seqs(v).first() == Some(&newest[0])).await;
    assert_eq!(seqs(&back), newest);
    // Filters page too.
    b.js("document.getElementById('f-outcome').value = 'denied'; return null;").await;
    b.click("#f-apply").await;
    let only = b.until("the denied records", OUTCOMES, |v| v.as_array().is_some_and(|a| a.len() == 1)).await;
    let record = s.kernel.audit(&libos_kernel::AuditFilter { outcome: Some(Outcome::Denied), ..Default::default() });
    assert_eq!(seqs(&only), [record.unwrap()[0].seq.get()]);
}

libos_kernel::tests!(async_multi_thread:
    markup_from_a_model_renders_as_inert_text_everywhere_it_is_shown,
    the_audit_table_pages_and_denied_and_failed_rows_stand_out,
);
