//! Fuzzes what a model's answer goes through before anything runs: finding
//! exactly one call (native or in text) and parsing its arguments against
//! the tool's schema. Any input must end as a typed call or a rejection
//! whose message is one line; a typed call's canonical arguments must parse
//! back to the same call.
//!
//! The first byte picks the shape: a native call (name and arguments split
//! at the first NUL), several native calls, or free text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use libos_runtime::extract::one_call;
use libos_runtime::{ChatResponse, RawToolCall};
use libos_tools::{ToolCall, ToolSet};

fn response(data: &[u8]) -> Option<ChatResponse> {
    let (&shape, rest) = data.split_first()?;
    let text = String::from_utf8_lossy(rest).into_owned();
    let call = |part: &str| {
        let (name, args) = part.split_once('\0').unwrap_or((part, ""));
        RawToolCall { id: String::new(), name: name.to_string(), arguments: args.to_string() }
    };
    let mut resp =
        ChatResponse { model: String::new(), content: None, tool_calls: Vec::new(), usage: None, raw: String::new(), info: Default::default() };
    match shape % 3 {
        0 => resp.tool_calls.push(call(&text)),
        1 => resp.tool_calls = text.split('\u{1}').map(call).collect(),
        _ => resp.content = Some(text),
    }
    Some(resp)
}

fuzz_target!(|data: &[u8]| {
    let Some(resp) = response(data) else { return };
    let found = match one_call(&resp, ToolSet::builtins().names(), "call_1") {
        Ok(found) => found,
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            return;
        }
    };
    match ToolCall::parse(&found.call.name, &found.call.arguments, &ToolSet::builtins()) {
        Ok(call) => {
            let again = ToolCall::parse(call.name().as_str(), &call.canonical_args(), &ToolSet::builtins());
            assert_eq!(again.as_ref(), Ok(&call));
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
