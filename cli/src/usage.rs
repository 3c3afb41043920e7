//! Usage errors in libos's own form: one line, `libos: error: ...`, with
//! clap's suggestion when it has one, and exit code 2. Help and the version
//! are printed as clap prints them.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Prints what `err` says and returns the exit code for it.
pub fn report(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Help on standard output; a reader that went away is not an error.
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(crate::exit::USAGE)
        }
        _ => {
            eprintln!("libos: error: {}", one_line(err));
            ExitCode::from(crate::exit::USAGE)
        }
    }
}

/// clap's message on one line: the message itself, what clap suggests
/// (`did you mean 'ps'?`, or its tip), and where the help is.
pub fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let paragraphs: Vec<String> = rendered
        .split("\n\n")
        .map(|p| p.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let mut message =
        paragraphs.first().map(|p| p.strip_prefix("error: ").unwrap_or(p).to_string()).unwrap_or_default();
    let suggested: Vec<String> =
        [ContextKind::SuggestedSubcommand, ContextKind::SuggestedArg, ContextKind::SuggestedValue]
            .into_iter()
            .filter_map(|kind| err.get(kind))
            .flat_map(|v| match v {
                ContextValue::String(s) => vec![s.clone()],
                ContextValue::Strings(list) => list.clone(),
                _ => Vec::new(),
            })
            .collect();
    if !suggested.is_empty() {
        let quoted: Vec<String> = suggested.iter().map(|s| format!("'{s}'")).collect();
        message.push_str(&format!(" (did you mean {}?)", quoted.join(" or ")));
    } else if let Some(tip) = paragraphs.iter().find_map(|p| p.strip_prefix("tip: ")) {
        message.push_str(&format!(" ({tip})"));
    }
    // "Usage: libos spawn --goal <GOAL> <IMAGE>" names the command whose help to see.
    let command: Vec<&str> = paragraphs
        .iter()
        .find_map(|p| p.strip_prefix("Usage: "))
        .map(|u| u.split_whitespace().take_while(|w| !w.starts_with(['-', '<', '['])).collect())
        .unwrap_or_default();
    if !command.is_empty() {
        message.push_str(&format!("; see '{} --help'", command.join(" ")));
    }
    crate::render::one_line(&message).into_owned()
}
