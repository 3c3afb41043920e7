//! Tables and short forms for people.

use comfy_table::{ContentArrangement, Table, presets};
use libos_kernel::budget::Dimension;
use libos_kernel::{ProcessInfo, Timestamp, time::human_age};

/// A borderless table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    // comfy-table pads every cell by one space; trim the line ends.
    t.to_string().lines().map(|l| l.trim_end().strip_prefix(' ').unwrap_or(l.trim_end())).collect::<Vec<_>>().join("\n")
}

/// `text` on one line, at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        return one;
    }
    let mut out: String = one.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
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
    human_age(Timestamp::now().since(t))
}
