//! Tables, short forms and JSON for people's terminals.
//!
//! Much of what libos shows was written by models, and a terminal obeys the
//! control characters it is given. Every text renderer escapes model text
//! with `libos_kernel::text`, choosing per field:
//! - one-line fields (table cells, goals, questions, paths, call arguments,
//!   error messages): [`one_line`], newlines included, or [`clip`] for summary
//!   cells, which folds whitespace runs into one space first;
//! - blocks shown whole (tool results, rationales, memory objects, results,
//!   image sources): [`block`], where newlines and tabs stay;
//! - JSON, for `--json` and for call arguments shown in text: [`json`],
//!   [`json_line`] and [`json_args`], exact (a parser gets the original
//!   strings back) and still safe to print.

use std::borrow::Cow;
use std::fmt::Write as _;

use comfy_table::{ContentArrangement, Table, presets};
use libos_kernel::budget::Dimension;
use libos_kernel::text;
use libos_kernel::{ProcessInfo, Timestamp, time::human_age};
use serde::Serialize;

/// A one-line field: every control character escaped, newlines included.
pub fn one_line(text: &str) -> Cow<'_, str> {
    text::escape_line(text)
}

/// A block of lines: newlines and tabs kept, every other control character escaped.
pub fn block(text: &str) -> Cow<'_, str> {
    text::escape_block(text)
}

/// How a cell is coloured on a terminal (never in files and pipes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Going well: running, ok, a live grant.
    Good,
    /// Waiting on something: waiting, parked, rejected.
    Wait,
    /// Stopped by someone: paused, pending.
    Held,
    /// Gone wrong: failed, killed, denied, error.
    Bad,
    /// Over and done: exited, revoked, expired.
    Done,
}

impl Tone {
    fn color(self) -> comfy_table::Color {
        match self {
            // The "dark" colours are the terminal's own eight (`38;5;1` to `6`).
            Tone::Good => comfy_table::Color::DarkGreen,
            Tone::Wait => comfy_table::Color::DarkYellow,
            Tone::Held => comfy_table::Color::DarkCyan,
            Tone::Bad => comfy_table::Color::DarkRed,
            Tone::Done => comfy_table::Color::DarkGrey,
        }
    }
}

/// A table cell: its text (escaped when shown) and its colour on a terminal.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl Cell {
    /// A cell coloured `tone` on a terminal.
    pub fn toned(text: impl Into<String>, tone: Option<Tone>) -> Cell {
        Cell { text: text.into(), tone }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, tone: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

/// The one column of a table that gives way: on a terminal it takes the
/// width the others leave, into a pipe it is cut at `piped` characters,
/// and with `wide` it is never cut.
#[derive(Debug, Clone, Copy)]
pub struct Flex {
    /// Which column.
    pub column: usize,
    /// Its width when standard output is not a terminal.
    pub piped: usize,
    /// `--wide`: whole.
    pub wide: bool,
}

/// The narrowest a flexible column gets on a narrow terminal.
const MIN_FLEX: usize = 12;

/// A borderless table with a header row; every cell is escaped as one line,
/// so no cell can add a row or move the cursor.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    table_of(header, rows.into_iter().map(|r| r.into_iter().map(Cell::from).collect()).collect(), None)
}

/// [`table`] with coloured cells and a flexible column (its cells clipped
/// as [`clip`] clips them).
pub fn table_of(header: &[&str], rows: Vec<Vec<Cell>>, flex: Option<Flex>) -> String {
    let flex_column = flex.map(|f| f.column);
    let mut rows: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .map(
                    |(i, c)| {
                        if Some(i) == flex_column { c } else { Cell { text: one_line(&c.text).into_owned(), ..c } }
                    },
                )
                .collect()
        })
        .collect();
    if let Some(f) = flex {
        let width = flex_width(header, &rows, f);
        for row in &mut rows {
            if let Some(cell) = row.get_mut(f.column) {
                cell.text = clip(&cell.text, width);
            }
        }
    }
    let color = crate::term::color_stdout();
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(header.iter().copied());
    for row in rows {
        t.add_row(row.into_iter().map(|c| {
            let cell = comfy_table::Cell::new(c.text);
            match c.tone {
                Some(tone) if color => cell.fg(tone.color()),
                _ => cell,
            }
        }));
    }
    // comfy-table pads every cell by one space; trim the line ends.
    t.to_string().lines().map(|l| l.trim_end().strip_prefix(' ').unwrap_or(l.trim_end())).collect::<Vec<_>>().join("\n")
}

/// How wide the flexible column may be.
fn flex_width(header: &[&str], rows: &[Vec<Cell>], f: Flex) -> usize {
    if f.wide {
        return usize::MAX;
    }
    let Some(term) = crate::term::stdout_width() else { return f.piped };
    let columns = header.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let others: usize = (0..columns)
        .filter(|c| *c != f.column)
        .map(|c| {
            let head = header.get(c).map_or(0, |h| h.chars().count());
            rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.text.chars().count()).max().unwrap_or(0).max(head)
        })
        .sum();
    // Two spaces between columns.
    term.saturating_sub(others + 2 * columns.saturating_sub(1)).max(MIN_FLEX)
}

/// `text` on one line, escaped, at most `max` characters as shown, with `…`
/// when cut. Whitespace runs (newlines too) fold into one space: a summary
/// cell shows the words; the full text is one `--json` away. An escape is
/// never cut in half.
pub fn clip(text: &str, max: usize) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = one_line(&one);
    if shown.chars().count() <= max {
        return shown.into_owned();
    }
    let room = max.saturating_sub(1);
    let mut out = String::with_capacity(room + 3);
    let mut used = 0;
    for c in one.chars() {
        used += text::escaped_len(c);
        if used > room {
            break;
        }
        text::push_escaped(&mut out, c);
    }
    out.push('…');
    out
}

/// `value` as pretty JSON that is safe on a terminal and exact for a parser.
///
/// serde_json escapes C0 controls in strings but writes DEL, C1 controls and
/// bidi controls as they are. Outside strings its output holds only ASCII
/// structure and whitespace, so every such character is inside a string,
/// where `\uXXXX` means the same character.
pub fn json(value: &impl Serialize) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(safe_json)
}

/// `value` as compact JSON on one line (for JSON Lines), as [`json`].
pub fn json_line(value: &impl Serialize) -> serde_json::Result<String> {
    serde_json::to_string(value).map(safe_json)
}

/// Stored call arguments (JSON text) on one line: compact JSON escaped as
/// [`json_line`] escapes it, so it still reads as JSON; text that is not
/// JSON is escaped as [`one_line`].
pub fn json_args(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| json_line(&v).ok())
        .unwrap_or_else(|| one_line(text).into_owned())
}

fn safe_json(json: String) -> String {
    // Raw C0 characters in serde_json's output are its own newlines and indentation.
    let escape = |c: char| u32::from(c) >= 0x7f && text::must_escape(c);
    if !json.chars().any(escape) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            // Every character escaped here is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Tokens used, `~` marking an estimate.
pub fn tokens(p: &ProcessInfo) -> String {
    let total = p.usage.tokens_in + p.usage.tokens_out;
    let used = if p.usage.tokens_estimated { format!("~{total}") } else { total.to_string() };
    let limit = match (p.budget.get(Dimension::TokensIn), p.budget.get(Dimension::TokensOut)) {
        (None, None) => return used,
        (a, b) => a.unwrap_or(0) + b.unwrap_or(0),
    };
    format!("{used}/{limit}")
}

/// Quanta run, against the budget when there is one.
pub fn quanta(p: &ProcessInfo) -> String {
    match p.budget.get(Dimension::Quanta) {
        Some(limit) => format!("{}/{limit}", p.usage.quanta),
        None => p.usage.quanta.to_string(),
    }
}

/// Age since `t`.
pub fn age(t: Timestamp) -> String {
    human_age(libos_kernel::clock::system_now().since(t))
}
