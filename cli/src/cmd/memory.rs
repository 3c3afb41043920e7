//! `libos memory PID`, `libos memory show OID`, `libos memory search PID WORDS...`.

use libos_kernel::memory::SearchQuery;
use libos_kernel::{ObjectId, OpenMode};

use libos_console::wire;

use crate::args::{MemoryAction, MemoryArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::exit::UsageError;
use crate::render::{self, block, one_line, table};

/// Lists a process's view, shows one object, or searches a view.
pub fn run(ctx: &Ctx, args: &MemoryArgs) -> anyhow::Result<()> {
    if let Some(MemoryAction::Search { pid, words, namespace, limit, json }) = &args.action {
        let pid = parse_pid(pid)?;
        let query = SearchQuery::parse(&words.join(" ")).map_err(UsageError)?;
        let kernel = ctx.open(OpenMode::Existing)?;
        let hits = kernel.memory_search(pid, &query, namespace.as_deref(), usize::from(*limit))?;
        if *json {
            let out: Vec<_> = hits.iter().map(wire::search_hit).collect();
            outln!("{}", render::json(&out)?);
            return Ok(());
        }
        let rows = hits
            .iter()
            .map(|h| {
                let snippet = h.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
                vec![h.oid.to_string(), format!("{}/{}", h.namespace, h.name), format!("{:.2}", h.score), snippet]
            })
            .collect();
        outln!("{}", table(&["OID", "OBJECT", "SCORE", "SNIPPET"], rows));
        return Ok(());
    }
    if let Some(MemoryAction::Show { oid, json }) = &args.action {
        let oid: ObjectId = oid.parse().map_err(UsageError)?;
        let kernel = ctx.open(OpenMode::Existing)?;
        let o = kernel.memory_object(oid)?;
        if *json {
            outln!("{}", render::json(&wire::object(&o))?);
        } else {
            let head = format!(
                "object {} · {}/{} · {} · version {} · owner pid {} · updated {}",
                o.oid,
                o.namespace,
                o.name,
                o.kind,
                o.version,
                o.owner,
                o.updated_at.to_rfc3339()
            );
            outln!("{}", one_line(&head));
            outln!();
            // The object whole, as a block: its lines stay lines.
            outln!("{}", block(&o.content));
        }
        return Ok(());
    }
    let Some(pid) = &args.pid else {
        return Err(UsageError("`libos memory` needs a PID, or `show OID`".to_string()).into());
    };
    let pid = parse_pid(pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let view = kernel.memory_view(pid)?;
    if args.json {
        let out: Vec<_> = view.iter().map(wire::handle).collect();
        outln!("{}", render::json(&out)?);
        return Ok(());
    }
    let rows = view
        .iter()
        .map(|h| {
            vec![
                h.oid.to_string(),
                format!("{}/{}", h.namespace, h.name),
                h.kind.clone(),
                h.version.to_string(),
                h.bytes.to_string(),
                h.rights.to_string(),
                if h.pinned { "yes" } else { "no" }.to_string(),
                h.granted_by.to_string(),
            ]
        })
        .collect();
    outln!("{}", table(&["OID", "OBJECT", "KIND", "VERSION", "BYTES", "RIGHTS", "PINNED", "FROM"], rows));
    Ok(())
}
