//! Text from models, made safe to show: control characters escaped.
//!
//! Goals, questions, paths, messages, results and rationales are written by
//! models, and people read them in terminals. A terminal obeys the control
//! characters it prints: ESC starts sequences that move the cursor, erase
//! lines, clear the screen or write the clipboard (OSC 52); CR returns to the
//! start of the line and BEL rings; a newline in a one-line field draws a
//! line the operator takes for libos's own; Unicode bidi controls reorder
//! what is shown. Every renderer of text for people passes such text through
//! here; machine output (JSON) keeps it exact.
//!
//! Escaped are: C0 controls, DEL and C1 controls (`char::is_control`), and the
//! bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
//! Each is shown as Rust writes it in a string literal: `\n`, `\r`, `\t`, and
//! `\u{1b}` for the rest. The backslash itself is not escaped: text that
//! already reads `\u{1b}` shows as it is, which keeps escaping idempotent and
//! paths readable; it cannot make the terminal do anything.

use std::borrow::Cow;

/// Whether `c` is shown escaped: a control character or a bidi control.
pub fn must_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The bidi embeddings, overrides and isolates, which reorder what follows them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `c` to `out`, escaped if [`must_escape`] says so.
pub fn push_escaped(out: &mut String, c: char) {
    if must_escape(c) {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// How many characters `c` takes once escaped.
pub fn escaped_len(c: char) -> usize {
    if must_escape(c) { c.escape_default().count() } else { 1 }
}

/// `text` for a one-line field: every control character escaped, newlines
/// and tabs included, so the text stays on the line it was given.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_where(text, must_escape)
}

/// `text` shown as a block of lines (a tool result, a file, a rationale):
/// newlines and tabs stay as they are, every other control character is
/// escaped (CR included, so a line cannot be overwritten).
pub fn escape_block(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && c != '\t' && must_escape(c))
}

fn escape_where(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn a_line_escapes_every_control_and_bidi_character_and_keeps_the_rest() {
        let text = "a\u{1b}[2J\nb\r\tc\u{7}\u{7f}\u{85}\u{9b}\u{202e}\u{2066}é·✓\\u{1b}";
        assert_eq!(escape_line(text), "a\\u{1b}[2J\\nb\\r\\tc\\u{7}\\u{7f}\\u{85}\\u{9b}\\u{202e}\\u{2066}é·✓\\u{1b}");
    }

    #[test]
    fn a_block_keeps_newlines_and_tabs_only() {
        assert_eq!(escape_block("one\r\n\ttwo\u{1b}]52;c;eA==\u{7}\n"), "one\\r\n\ttwo\\u{1b}]52;c;eA==\\u{7}\n");
    }

    #[test]
    fn clean_text_is_borrowed_and_escaping_twice_changes_nothing() {
        assert!(matches!(escape_line("plain text · ok"), Cow::Borrowed(_)));
        let once = escape_line("x\u{1b}[1A\u{9b}\n").into_owned();
        assert_eq!(escape_line(&once), once);
        assert_eq!((escaped_len('\u{1b}'), escaped_len('\n'), escaped_len('é')), (6, 2, 1));
    }
}
