//! `libos pending`, `libos approve`, `libos deny`, `libos answer`.

use libos_kernel::ipc::{Request, RequestKind};
use libos_kernel::{Actor, Decided, OpenMode, RequestId, Verdict};
use serde_json::Value;

use libos_console::wire;

use crate::args::{AnswerArgs, ApproveArgs, DenyArgs, JsonArg};
use crate::ctx::Ctx;
use crate::exit::UsageError;
use crate::render::{self, Flex, age, clip, one_line, table_of};

fn request_id(text: &str) -> Result<RequestId, UsageError> {
    text.parse().map_err(UsageError)
}

/// The parked call's arguments, pretty JSON whose strings are escaped
/// (text that is not JSON is one escaped line).
fn pretty_args(args: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(args).ok().and_then(|v| render::json(&v).ok()) {
        Some(pretty) => pretty.lines().map(str::to_string).collect(),
        None => vec![one_line(args).into_owned()],
    }
}

/// How a parked tool's own hints are introduced wherever a request is shown.
pub const HINTS_LABEL: &str = "hints (the server's claims, not authority)";

/// What a request asks, on one line, escaped: a question's newlines show as `\n`.
fn what(r: &Request) -> String {
    let text = match &r.kind {
        RequestKind::Approval { resource, right } => format!("{right} {resource}"),
        RequestKind::Question { text } => format!("question: {text}"),
    };
    one_line(&text).into_owned()
}

/// Lists open requests: a table of one line each, then every request's
/// exact call, so the operator approves what they have read.
pub fn pending(ctx: &Ctx, args: &JsonArg) -> anyhow::Result<()> {
    let kernel = ctx.open(OpenMode::Existing)?;
    let open = kernel.pending()?;
    if args.json {
        outln!("{}", render::json(&open.iter().map(wire::request).collect::<Vec<_>>())?);
        return Ok(());
    }
    let rows = open
        .iter()
        .map(|r| {
            vec![
                r.id.to_string().into(),
                r.pid.to_string().into(),
                r.image.clone().into(),
                r.tool.clone().into(),
                what(r).into(),
                age(r.created_at).into(),
            ]
        })
        .collect();
    let flex = Flex { column: 4, piped: 60, wide: false };
    outln!("{}", table_of(&["ID", "PID", "IMAGE", "TOOL", "ASKS", "AGE"], rows, Some(flex)));
    for r in &open {
        outln!("\nrequest {} · pid {} ({}) · {}", r.id, r.pid, one_line(&r.image), r.created_at.to_rfc3339());
        outln!("  goal: {}", clip(&r.goal, 200));
        outln!("  asks: {}", what(r));
        if let Some(h) = &r.hints {
            outln!("  {HINTS_LABEL}: {}", one_line(&h.label()));
        }
        outln!("  call: {}", one_line(&r.tool));
        for line in pretty_args(&r.args) {
            outln!("    {line}");
        }
    }
    Ok(())
}

/// Approves a parked call.
pub fn approve(ctx: &Ctx, args: &ApproveArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let d = kernel.decide(id, &Verdict::Approve { always: args.always }, &Actor::operator())?;
    if args.json {
        return print_decided(&d);
    }
    outln!("approved request {id}: pid {} will run {} as parked", d.request.pid, one_line(&d.request.tool));
    if let Some(g) = d.grant {
        outln!("grant {g}: {} from now on", what(&d.request));
    }
    Ok(())
}

/// Denies a parked call or refuses a question.
pub fn deny(ctx: &Ctx, args: &DenyArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let verdict = Verdict::Deny { always: args.always, reason: args.reason.clone() };
    let d = kernel.decide(id, &verdict, &Actor::operator())?;
    if args.json {
        return print_decided(&d);
    }
    outln!("denied request {id}: pid {} is told so and goes on", d.request.pid);
    if let Some(g) = d.grant {
        outln!("grant {g}: {} is denied from now on", what(&d.request));
    }
    Ok(())
}

/// Answers a question.
pub fn answer(ctx: &Ctx, args: &AnswerArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let d = kernel.decide(id, &Verdict::Answer { text: args.text.clone() }, &Actor::operator())?;
    if args.json {
        return print_decided(&d);
    }
    outln!("answered request {id}: pid {} goes on", d.request.pid);
    Ok(())
}

/// A decided request as the API answers a decision: the request, and the
/// grant `--always` installed.
fn print_decided(d: &Decided) -> anyhow::Result<()> {
    outln!("{}", render::json(&wire::decided(d))?);
    Ok(())
}
