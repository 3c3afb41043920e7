//! `read(filter)`: take matching unread messages without waiting. A kernel call on one's own inbox.

use libos_core::syscall::Syscall;

use crate::builtin::filter::FilterArgs;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// `read`.
pub struct Read;

impl Tool for Read {
    type Args = FilterArgs;
    const NAME: &'static str = "read";
    const DESCRIPTION: &'static str =
        "Take your unread messages that match the filter (all, if none given), without waiting.";

    fn dispatch(a: &FilterArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Read { filter: a.filter() }))
    }
}
