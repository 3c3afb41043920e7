//! `libos audit`: list, follow, verify, head.

use std::time::Duration;

use libos_kernel::{AuditFilter, AuditRecord, Kernel, OpenMode, Outcome, Timestamp};

use libos_console::wire;

use crate::args::{AuditAction, AuditArgs};
use crate::ctx::{self, Ctx, parse_pid};
use crate::exit::{AuditBroken, UsageError};
use crate::render::{self, Cell, Flex, Tone, one_line, table_of};

const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Dispatches `audit`, `audit verify` and `audit head`.
pub async fn run(ctx: &Ctx, args: &AuditArgs) -> anyhow::Result<()> {
    let kernel = ctx.open(OpenMode::Existing)?;
    match &args.action {
        Some(AuditAction::Verify { expect_head, json }) => verify(&kernel, expect_head.as_deref(), *json),
        Some(AuditAction::Head { json }) => {
            let (seq, hash) = kernel.audit_head()?;
            if *json {
                outln!("{}", render::json_line(&serde_json::json!({"seq": seq.get(), "hash": hash}))?);
            } else {
                outln!("{hash}");
            }
            Ok(())
        }
        None => list(&kernel, args).await,
    }
}

fn filter(args: &AuditArgs) -> anyhow::Result<AuditFilter> {
    let outcome = match &args.outcome {
        Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
            let all: Vec<_> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            UsageError(format!("invalid outcome `{o}` (expected one of {})", all.join(", ")))
        })?),
        None => None,
    };
    Ok(AuditFilter {
        pid: args.pid.as_deref().map(parse_pid).transpose()?,
        action: args.tool.clone(),
        outcome,
        since: args
            .since
            .as_deref()
            .map(|s| Timestamp::parse_since(s, libos_kernel::clock::system_now()).map_err(UsageError))
            .transpose()?,
        limit: args.limit,
        ..AuditFilter::default()
    })
}

async fn list(kernel: &Kernel, args: &AuditArgs) -> anyhow::Result<()> {
    let mut f = filter(args)?;
    let records = kernel.audit(&f)?;
    print_records(&records, args, true)?;
    if !args.follow {
        return Ok(());
    }
    let mut last = records.last().map_or(kernel.audit_head()?.0, |r| r.seq);
    f.limit = None;
    let stop = ctx::interrupted();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        f.after = Some(last);
        let new = kernel.audit(&f)?;
        if let Some(r) = new.last() {
            last = r.seq;
            print_records(&new, args, false)?;
        }
    }
}

fn print_records(records: &[AuditRecord], args: &AuditArgs, header: bool) -> anyhow::Result<()> {
    if args.json {
        for r in records {
            outln!("{}", render::json_line(&wire::audit(r))?);
        }
        return Ok(());
    }
    if records.is_empty() && !header {
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string().into(),
                r.at.to_rfc3339().into(),
                r.actor.to_string().into(),
                r.kind.as_str().into(),
                r.action.to_string().into(),
                Cell::toned(r.outcome.as_str(), Some(outcome_tone(r.outcome))),
                r.detail.clone().unwrap_or_else(|| render::json_args(&r.args)).into(),
            ]
        })
        .collect();
    let flex = Flex { column: 6, piped: 60, wide: args.wide };
    let text = table_of(&["SEQ", "TIME", "ACTOR", "KIND", "ACTION", "OUTCOME", "DETAIL"], rows, Some(flex));
    if header {
        outln!("{text}");
    } else {
        // Following: no repeated header.
        for line in text.lines().skip(1) {
            outln!("{line}");
        }
    }
    Ok(())
}

/// How an outcome is coloured on a terminal.
fn outcome_tone(o: Outcome) -> Tone {
    match o {
        Outcome::Ok => Tone::Good,
        Outcome::Parked | Outcome::Rejected => Tone::Wait,
        Outcome::Pending => Tone::Held,
        Outcome::Error | Outcome::Denied | Outcome::Unknown => Tone::Bad,
    }
}

fn verify(kernel: &Kernel, expect_head: Option<&str>, json: bool) -> anyhow::Result<()> {
    // A malformed head is the operator's typo, not a broken chain.
    let expect_head = match expect_head {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
        Some(h) => {
            return Err(UsageError(format!(
                "--expect-head `{}` is not an audit head: give the 64 hexadecimal digits `libos audit head` printed",
                one_line(h)
            ))
            .into());
        }
        None => None,
    };
    let report = kernel.audit_verify(expect_head.as_deref())?;
    if json {
        outln!("{}", render::json_line(&wire::verify(&report))?);
    }
    match report.broken {
        None => {
            if !json {
                // PostgreSQL chains records after commit: say what is not chained yet.
                let waiting = match report.unsealed {
                    0 => String::new(),
                    1 => ", 1 record waiting for sealing".to_string(),
                    n => format!(", {n} records waiting for sealing"),
                };
                outln!("audit chain intact: {} records, head {}{waiting}", report.records, report.head);
            }
            Ok(())
        }
        Some(b) => Err(AuditBroken(format!("audit chain broken at {b}")).into()),
    }
}
