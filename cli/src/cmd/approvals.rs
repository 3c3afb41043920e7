//! `libos pending`, `libos approve`, `libos deny`, `libos answer`.

use libos_kernel::ipc::{Request, RequestKind};
use libos_kernel::{Actor, OpenMode, RequestId, Verdict};
use serde_json::{Value, json};

use crate::args::{AnswerArgs, ApproveArgs, DenyArgs, JsonArg};
use crate::ctx::Ctx;
use crate::exit::UsageError;
use crate::render::{age, clip, table};

fn request_id(text: &str) -> Result<RequestId, UsageError> {
    text.parse().map_err(UsageError)
}

/// The parked call's arguments, pretty.
fn pretty_args(args: &str) -> String {
    serde_json::from_str::<Value>(args)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| args.to_string())
}

fn what(r: &Request) -> String {
    match &r.kind {
        RequestKind::Approval { resource, right } => format!("{right} {resource}"),
        RequestKind::Question { text } => format!("question: {text}"),
    }
}

fn request_json(r: &Request) -> Value {
    json!({
        "id": r.id.get(),
        "pid": r.pid.get(),
        "image": r.image,
        "goal": r.goal,
        "kind": match r.kind { RequestKind::Approval { .. } => "approval", RequestKind::Question { .. } => "question" },
        "tool": r.tool,
        "args": serde_json::from_str::<Value>(&r.args).unwrap_or(Value::String(r.args.clone())),
        "args_sha256": r.args_sha256,
        "resource": match &r.kind { RequestKind::Approval { resource, .. } => Some(resource.to_string()), RequestKind::Question { .. } => None },
        "right": match &r.kind { RequestKind::Approval { right, .. } => Some(right.as_str()), RequestKind::Question { .. } => None },
        "question": match &r.kind { RequestKind::Question { text } => Some(text.clone()), RequestKind::Approval { .. } => None },
        "status": r.status.name(),
        "created_at": r.created_at.to_rfc3339(),
    })
}

/// Lists open requests: a table of one line each, then every request's
/// exact call, so the operator approves what they have read.
pub fn pending(ctx: &Ctx, args: &JsonArg) -> anyhow::Result<()> {
    let kernel = ctx.open(OpenMode::Existing)?;
    let open = kernel.pending()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&open.iter().map(request_json).collect::<Vec<_>>())?);
        return Ok(());
    }
    if open.is_empty() {
        println!("no pending requests");
        return Ok(());
    }
    let rows = open
        .iter()
        .map(|r| vec![r.id.to_string(), r.pid.to_string(), r.image.clone(), r.tool.clone(), what(r), age(r.created_at)])
        .collect();
    println!("{}", table(&["ID", "PID", "IMAGE", "TOOL", "ASKS", "AGE"], rows));
    for r in &open {
        println!("\nrequest {} · pid {} ({}) · {}", r.id, r.pid, r.image, r.created_at.to_rfc3339());
        println!("  goal: {}", clip(&r.goal, 200));
        println!("  asks: {}", what(r));
        println!("  call: {}", r.tool);
        for line in pretty_args(&r.args).lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// Approves a parked call.
pub fn approve(ctx: &Ctx, args: &ApproveArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let d = kernel.decide(id, &Verdict::Approve { always: args.always }, &Actor::operator())?;
    println!("approved request {id}: pid {} will run {} as parked", d.request.pid, d.request.tool);
    if let Some(g) = d.grant {
        println!("grant {g}: {} from now on", what(&d.request));
    }
    Ok(())
}

/// Denies a parked call or refuses a question.
pub fn deny(ctx: &Ctx, args: &DenyArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let verdict = Verdict::Deny { always: args.always, reason: args.reason.clone() };
    let d = kernel.decide(id, &verdict, &Actor::operator())?;
    println!("denied request {id}: pid {} is told so and goes on", d.request.pid);
    if let Some(g) = d.grant {
        println!("grant {g}: {} is denied from now on", what(&d.request));
    }
    Ok(())
}

/// Answers a question.
pub fn answer(ctx: &Ctx, args: &AnswerArgs) -> anyhow::Result<()> {
    let id = request_id(&args.id)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let d = kernel.decide(id, &Verdict::Answer { text: args.text.clone() }, &Actor::operator())?;
    println!("answered request {id}: pid {} goes on", d.request.pid);
    Ok(())
}
