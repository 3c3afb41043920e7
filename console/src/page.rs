//! The console page: `assets/console.html` with its styles
//! (`console.css`) and script (`console.js`) put inline, once, so the page
//! is one response and needs nothing else from the server or the network.

use std::sync::LazyLock;

const HTML: &str = include_str!("../assets/console.html");
const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

static PAGE: LazyLock<String> =
    LazyLock::new(|| HTML.replacen("/* console.css */", CSS, 1).replacen("// console.js", JS, 1));

/// The whole page.
pub(crate) fn console() -> &'static str {
    &PAGE
}
