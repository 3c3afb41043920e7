//! Usage errors in libos's own form: one line, `libos: error: ...`, with
//! clap's suggestion when it has one, and exit code 2. Help and the version
//! are printed as clap prints them.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use crate::args::Cli;

/// The command line, parsed without colour: an error's text is then exactly
/// what was typed (escape sequences included), for [`one_line`] to escape.
pub fn parse() -> Result<Cli, clap::Error> {
    let plain = Cli::command().color(clap::ColorChoice::Never).styles(clap::builder::Styles::plain());
    let matches = plain.try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// Prints what `err` says and returns the exit code for it.
pub fn report(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Help on standard output, coloured as clap colours it (on a
            // terminal, unless NO_COLOR): parsed again for that. A reader
            // that went away is not an error.
            let _ = Cli::command().try_get_matches().map_err(|e| e.print());
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = Cli::command().try_get_matches().map_err(|e| e.print());
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
    // `ansi()`: the text as it is (there is no styling to strip, see [`parse`]);
    // Display would strip what looks like styling from what was typed too.
    let rendered = err.render().ansi().to_string();
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
