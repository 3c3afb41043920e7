//! `libos send`, `libos inbox`.

use libos_console::wire;
use libos_kernel::ipc::{MessageKind, NewMessage};
use libos_kernel::{Actor, OpenMode};

use crate::args::{InboxArgs, SendArgs};
use crate::ctx::{Ctx, parse_pid};
use crate::render::{self, Flex, age, table_of};

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
    if args.json {
        outln!("{}", render::json(&wire::sent(id, pid))?);
        return Ok(());
    }
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
    let rows = messages
        .iter()
        .map(|m| {
            vec![
                m.id.to_string().into(),
                m.from.to_string().into(),
                m.kind.as_str().into(),
                m.channel.clone().unwrap_or_else(|| "-".to_string()).into(),
                if m.read_at.is_some() { "read" } else { "unread" }.into(),
                age(m.sent_at).into(),
                m.body.clone().into(),
            ]
        })
        .collect();
    let flex = Flex { column: 6, piped: 60, wide: false };
    outln!("{}", table_of(&["ID", "FROM", "KIND", "CHANNEL", "STATUS", "AGE", "BODY"], rows, Some(flex)));
    Ok(())
}
