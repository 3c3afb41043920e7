//! Image specs: errors name the file and the field.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libos_images::{Image, ImageSet};
use pretty_assertions::assert_eq;

const GOOD: &str = r#"
name = "mini"
version = "0.1"
system_prompt = "Be brief."
tools = ["read_file", "exit"]
"#;

fn check(text: &str, expect: &str) {
    assert_eq!(Image::parse("mini.toml", text).unwrap_err().to_string(), expect);
}

#[test]
fn a_minimal_image_gets_defaults() {
    let image = Image::parse("mini.toml", GOOD).unwrap();
    assert_eq!(
        (image.model.as_str(), image.context.transcript_window, image.context.token_budget),
        ("default", 24, 16_000)
    );
}

#[test]
fn limits_bound_the_programs_a_process_runs() {
    let image = Image::parse(
        "mini.toml",
        &format!("{GOOD}\n[limits]\ncpu = \"1m\"\nmemory = \"512MiB\"\nprocesses = 16\nfile_size = 1000000\n"),
    )
    .unwrap();
    let l = image.limits;
    assert_eq!(
        (l.cpu_s, l.memory_bytes, l.processes, l.file_bytes, l.open_files),
        (60, 512 << 20, 16, 1_000_000, libos_sandbox::Limits::default().open_files)
    );
    assert_eq!(Image::parse("mini.toml", GOOD).unwrap().limits, libos_sandbox::Limits::default());
    check(
        &format!("{GOOD}\n[limits]\nmemory = \"lots\"\n"),
        "image mini.toml: field `limits.memory`: `lots` is not a size (e.g. \"512MiB\")",
    );
    check(
        &format!("{GOOD}\n[limits]\nfile_size = \"2TB!\"\n"),
        "image mini.toml: field `limits.file_size`: unknown unit `TB!` in `2TB!` (KiB, MiB, GiB, KB, MB, GB)",
    );
    check(
        &format!("{GOOD}\n[limits]\nprocesses = 0\n"),
        "image mini.toml: field `limits.processes`: must be at least 1",
    );
}

#[test]
fn bad_specs_point_at_the_field() {
    check(
        &GOOD.replace("\"exit\"]", "\"exit\", \"teleport\"]"),
        "image mini.toml: field `tools[2]`: unknown tool `teleport` (known: exit, now, read_file, list_dir, write_file, \
         delete_file, spawn, wait, children, signal, send, read, receive, sleep, ask_human, memory_write, \
         memory_read, memory_list, memory_search, memory_share, memory_pin, memory_unpin, shell, \
         http_request)",
    );
    check(
        &GOOD.replace(", \"exit\"", ""),
        "image mini.toml: field `tools`: must include `exit`, or its processes could never finish",
    );
    check(
        &GOOD.replace("[\"read_file\", \"exit\"]", "[\"exit\", \"exit\"]"),
        "image mini.toml: field `tools[1]`: `exit` is listed twice",
    );
    check(
        &GOOD.replace("mini", "Mini Image"),
        "image mini.toml: field `name`: `Mini Image` is not a valid image name (use a-z, 0-9, - and _)",
    );
    check(
        &format!("{GOOD}\n[context]\ntoken_budget = 10\n"),
        "image mini.toml: field `context.token_budget`: 10 is too small (at least 1000)",
    );
    check(
        &format!("{GOOD}colour = \"red\"\n"),
        "image mini.toml: line 6, column 1: unknown field `colour`, expected one of `name`, `version`, `description`, `system_prompt`, `tools`, `mcp`, `mcp_tools`, `grants`, `budget`, `model`, `repair_model`, `context`, `limits`",
    );
    check(
        &format!("{GOOD}grants = [\"read fs:**\", \"read fs:../up\"]\n"),
        "image mini.toml: field `grants[1]`: `../up` contains `..`: file grants stay inside the workspace",
    );
    check(
        &format!("{GOOD}\n[budget]\nquanta = 10\nwall_time = \"soon\"\n"),
        "image mini.toml: field `budget.wall_time`: budget `wall_time=soon`: invalid duration `soon`: expected e.g. 30s, 15m, 2h, 7d",
    );
    check(
        &format!("{GOOD}grants = [\"exec shell:*\"]\n"),
        "image mini.toml: field `grants[0]`: `shell:*` may not be allowed by an image",
    );
    check(
        &GOOD.replace("version = \"0.1\"", "version = 3"),
        "image mini.toml: line 3, column 11: invalid type: integer `3`, expected a string",
    );
}

#[test]
fn the_shipped_images_load_and_a_user_directory_can_override_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("assistant.toml"), GOOD.replace("mini", "assistant")).unwrap();
    let mut set = ImageSet::shipped().unwrap();
    assert_eq!(set.get("assistant").unwrap().version, "1.0.0");
    set.add_dir(dir.path()).unwrap();
    assert_eq!(set.get("assistant").unwrap().version, "0.1");
    assert_eq!(
        set.get("ghost").unwrap_err().to_string(),
        "no image named `ghost` (available: assistant, coder, orchestrator, reviewer, worker)"
    );
}

/// A registry declaring `time` (listed: `get_current_time`) and `git` (unavailable).
fn mcp_registry() -> libos_tools::Registry {
    use libos_tools::{ServerTools, ToolName};
    let mut r = libos_tools::Registry::default();
    r.declare_server(
        "time",
        ServerTools::Listed(vec![("get_current_time".into(), ToolName::new("time__get_current_time").unwrap())]),
    );
    r.declare_server("git", ServerTools::Unavailable("it could not be listed at start: no git".into()));
    r
}

fn check_mcp(extra: &str, expect: &str) {
    let text = format!("{GOOD}{extra}\n");
    assert_eq!(Image::parse_with("mini.toml", &text, &mcp_registry()).unwrap_err().to_string(), expect);
}

#[test]
fn images_name_mcp_servers_the_configuration_declares() {
    check_mcp(
        "mcp = [\"weather\"]",
        "image mini.toml: field `mcp[0]`: image `mini` names mcp server `weather`, which the configuration does not \
         declare (declared: git, time; add [mcp.weather] to libos.toml)",
    );
    check_mcp(
        "mcp_tools = [\"time/now\"]",
        "image mini.toml: field `mcp_tools[0]`: mcp server `time` has no tool `now` (it has: get_current_time)",
    );
    check_mcp(
        "mcp_tools = [\"time\"]",
        "image mini.toml: field `mcp_tools[0]`: `time` is not SERVER/TOOL (e.g. `everything/echo`)",
    );
    check_mcp("mcp = [\"time\", \"time\"]", "image mini.toml: field `mcp[1]`: `time` is listed twice");
    // Without a configuration, any server is undeclared.
    assert_eq!(
        Image::parse("mini.toml", &format!("{GOOD}mcp = [\"time\"]\n")).unwrap_err().to_string(),
        "image mini.toml: field `mcp[0]`: image `mini` names mcp server `time`, which the configuration does not \
         declare (declared: none; add [mcp.time] to libos.toml)"
    );
    // A listed server's tools join the table; an unavailable one's say why.
    let image = Image::parse_with("mini.toml", &format!("{GOOD}mcp = [\"time\", \"git\"]\n"), &mcp_registry()).unwrap();
    let tools: Vec<&str> = image.tools.iter().map(|t| t.as_str()).collect();
    assert_eq!(tools, ["read_file", "exit", "time__get_current_time"]);
    assert_eq!(image.unavailable, ["mcp server `git` has no tools this run: it could not be listed at start: no git"]);
}
