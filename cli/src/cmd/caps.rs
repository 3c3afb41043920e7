//! `libos caps`, `libos grant`, `libos revoke`.

use libos_console::wire;
use libos_kernel::caps::{Effect, GrantSpec, ResourcePattern, Rights};
use libos_kernel::time::parse_duration;
use libos_kernel::{Actor, GrantId, GrantStatus, KernelError, OpenMode};
use serde_json::json;

use crate::args::{CapsArgs, GrantArgs, RevokeArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::exit::UsageError;
use crate::render::{self, Cell, Tone, one_line, table_of};

/// Lists a process's grants with where each stands.
pub fn caps(ctx: &Ctx, args: &CapsArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let grants = kernel.caps(pid)?;
    if args.json {
        let out: Vec<_> = grants.iter().map(|(g, status)| wire::grant(g, *status)).collect();
        outln!("{}", render::json(&out)?);
        return Ok(());
    }
    let rows = grants
        .iter()
        .map(|(g, status)| {
            let tone = if *status == GrantStatus::Live { Tone::Good } else { Tone::Done };
            vec![
                g.id.to_string().into(),
                g.rights.to_string().into(),
                g.resource.to_string().into(),
                g.effect.to_string().into(),
                g.uses_left.map_or_else(|| "-".to_string(), |n| n.to_string()).into(),
                g.expires_at.map_or_else(|| "-".to_string(), |t| t.to_rfc3339()).into(),
                if g.delegable { "yes" } else { "no" }.into(),
                g.parent.map_or_else(|| "-".to_string(), |p| p.to_string()).into(),
                g.granted_by.to_string().into(),
                Cell::toned(status.as_str(), Some(tone)),
            ]
        })
        .collect();
    let header = ["GRANT", "RIGHTS", "RESOURCE", "EFFECT", "USES", "EXPIRES", "DELEGABLE", "FROM", "BY", "STATUS"];
    outln!("{}", table_of(&header, rows, None));
    Ok(())
}

/// Adds a grant; prints its id.
pub fn grant(ctx: &Ctx, args: &GrantArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let usage = |e: String| UsageError(e);
    let spec = match &args.resource {
        // One string, as in images, `spawn --grant` and the `spawn` tool.
        None => {
            if args.effect.is_some() || args.delegable || args.uses.is_some() || args.expires.is_some() {
                return Err(UsageError(
                    "give the grant as one string (\"read fs:src/** ask uses=3\") or as RIGHTS RESOURCE with \
                     --effect/--delegable/--uses/--expires, not both"
                        .to_string(),
                )
                .into());
            }
            GrantSpec::parse(&args.rights).map_err(usage)?
        }
        Some(resource) => {
            let mut spec = GrantSpec::allow(
                Rights::parse(&args.rights).map_err(usage)?,
                ResourcePattern::parse(resource).map_err(usage)?,
            );
            spec.effect = Effect::parse(args.effect.as_deref().unwrap_or("allow")).map_err(usage)?;
            spec.delegable = args.delegable;
            if args.uses == Some(0) {
                return Err(UsageError("--uses must be at least 1".to_string()).into());
            }
            spec.uses = args.uses;
            spec.expires = args.expires.as_deref().map(parse_duration).transpose().map_err(usage)?;
            spec
        }
    };
    let kernel = ctx.open(OpenMode::Existing)?;
    let id = kernel.grant(pid, &spec, &Actor::operator())?;
    if args.json {
        let caps = kernel.caps(pid)?;
        let (g, status) = caps.iter().find(|(g, _)| g.id == id).ok_or(KernelError::NoSuchGrant(id))?;
        outln!("{}", render::json(&wire::grant(g, *status))?);
        return Ok(());
    }
    outln!("grant {id}: {} to pid {pid}", one_line(&spec.to_string()));
    Ok(())
}

/// Revokes a grant and what derives from it.
pub fn revoke(ctx: &Ctx, args: &RevokeArgs) -> anyhow::Result<()> {
    let id: GrantId = args.grant.parse().map_err(UsageError)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let (g, derived) = kernel.revoke(id, &Actor::operator())?;
    if args.json {
        let out = json!({"revoked": wire::grant(&g, GrantStatus::Revoked), "derived": derived});
        outln!("{}", render::json(&out)?);
        return Ok(());
    }
    outln!(
        "revoked grant {id} ({} {} of pid {}) and {derived} grant{} derived from it",
        g.rights,
        one_line(&g.resource.to_string()),
        g.holder,
        if derived == 1 { "" } else { "s" }
    );
    Ok(())
}
