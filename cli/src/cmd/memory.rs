//! `libos memory PID`, `libos memory show OID`.

use libos_kernel::{ObjectId, OpenMode};
use serde_json::json;

use crate::args::{MemoryAction, MemoryArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::exit::UsageError;
use crate::render::table;

/// Lists a process's view, or shows one object.
pub fn run(ctx: &Ctx, args: &MemoryArgs) -> anyhow::Result<()> {
    if let Some(MemoryAction::Show { oid, json }) = &args.action {
        let oid: ObjectId = oid.parse().map_err(UsageError)?;
        let kernel = ctx.open(OpenMode::Existing)?;
        let o = kernel.memory_object(oid)?;
        if *json {
            let out = json!({
                "oid": o.oid.get(), "namespace": o.namespace, "name": o.name, "kind": o.kind,
                "version": o.version, "owner": o.owner.get(), "content": o.content,
                "created_at": o.created_at.to_rfc3339(), "updated_at": o.updated_at.to_rfc3339(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "object {} · {}/{} · {} · version {} · owner pid {} · updated {}",
                o.oid,
                o.namespace,
                o.name,
                o.kind,
                o.version,
                o.owner,
                o.updated_at.to_rfc3339()
            );
            println!();
            println!("{}", o.content);
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
        let out: Vec<_> = view
            .iter()
            .map(|h| {
                json!({
                    "oid": h.oid.get(), "namespace": h.namespace, "name": h.name, "kind": h.kind,
                    "version": h.version, "bytes": h.bytes, "rights": h.rights.to_string(),
                    "pinned": h.pinned, "granted_by": h.granted_by.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if view.is_empty() {
        println!("pid {pid} has no objects in its view");
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
    println!("{}", table(&["OID", "OBJECT", "KIND", "VERSION", "BYTES", "RIGHTS", "PINNED", "FROM"], rows));
    Ok(())
}
