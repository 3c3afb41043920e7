//! `libos send`, `libos inbox`.

use libos_console::wire;
use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{Actor, OpenMode};

use crate::args::{InboxArgs, SendArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, age, clip, table};

/// Sends a message as the operator; prints its id.
pub fn send(ctx: &Ctx, args: &SendArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let m = NewMessage {
        to: pid,
        body: args.text.clone(),
        kind: if args.interrupt { MessageKind::Interrupt } else { MessageKind::Normal },
        channel: args.channel.clone(),
        correlation_id: None,
        reply_to: None,
    };
    let id = kernel.send(&m, &Actor::operator())?;
    outln!("sent message {id} to pid {pid}");
    Ok(())
}

/// Lists a process's messages, oldest first.
pub fn inbox(ctx: &Ctx, args: &InboxArgs) -> anyhow::Result<()> {
    let pid = parse_pid(&args.pid)?;
    let kernel = ctx.open(OpenMode::Existing)?;
    let messages = kernel.inbox(pid)?;
    if args.json {
        let out: Vec<_> = messages.iter().map(wire::message).collect();
        outln!("{}", render::json(&out)?);
        return Ok(());
    }
    if messages.is_empty() {
        outln!("no messages for pid {pid}");
        return Ok(());
    }
    let rows = messages
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.from.to_string(),
                m.kind.as_str().to_string(),
                m.channel.clone().unwrap_or_else(|| "-".to_string()),
                if m.read_at.is_some() { "read" } else { "unread" }.to_string(),
                age(m.sent_at),
                clip(&m.body, 60),
            ]
        })
        .collect();
    outln!("{}", table(&["ID", "FROM", "KIND", "CHANNEL", "STATUS", "AGE", "BODY"], rows));
    Ok(())
}
