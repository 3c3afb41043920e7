//! `receive(filter)`: take the first matching message, parking until one
//! arrives. A kernel call on one's own inbox.

use libos_core::syscall::Syscall;

use crate::builtin::filter::FilterArgs;
use crate::dispatch::{Caller, Dispatch};
use crate::tool::Tool;

/// `receive`.
pub struct Receive;

impl Tool for Receive {
    type Args = FilterArgs;
    const NAME: &'static str = "receive";
    const DESCRIPTION: &'static str = "Take the first unread message matching the filter; if there is none, wait \
                                       (parked, at no cost) until one arrives. An interrupt wakes you whatever the \
                                       filter.";

    fn dispatch(a: &FilterArgs, _caller: Caller<'_>) -> Result<Dispatch, String> {
        Ok(Dispatch::Kernel(Syscall::Receive { filter: a.filter() }))
    }
}
