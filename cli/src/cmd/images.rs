//! `libos images`, `libos images show NAME`.

use libos_console::wire;
use libos_images::Image;

use crate::args::ImagesArgs;
use crate::ctx::Ctx;
use crate::render::{self, Flex, block, clip, one_line, table, table_of};

/// Lists the images that can be spawned, or shows one whole. Showing an
/// image that names MCP servers lists them (they are started to ask), so
/// its tools are shown with their schemas' sources and the servers' hints.
pub async fn run(ctx: &Ctx, args: &ImagesArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let images = ctx.images(&config)?;
    if let Some(crate::args::ImagesAction::Show { name, json }) = &args.action {
        let lenient = images.get(name)?;
        let names = crate::mcp_run::named(std::iter::once(lenient));
        let (i, tools) = if names.is_empty() {
            (lenient.clone(), None)
        } else {
            let hub = crate::cmd::mcp::hub(ctx, &config)?;
            let tools =
                crate::mcp_run::list(hub, &names, &config.image_dirs, crate::mcp_run::offline(&config)?).await?;
            tools.stop().await;
            (tools.catalog.get(name)?.clone(), Some(tools))
        };
        if *json {
            let mut out = wire::image(&i);
            out["system_prompt"] = i.system_prompt.clone().into();
            out["mcp"] = i.mcp.iter().map(ToString::to_string).collect::<Vec<_>>().into();
            out["unavailable"] = i.unavailable.clone().into();
            out["source"] = i.source.clone().into();
            outln!("{}", render::json(&out)?);
        } else {
            show(&i, tools.as_ref().map(|t| &t.registry), &config);
        }
        return Ok(());
    }
    if args.json {
        outln!("{}", render::json(&images.iter().map(wire::image).collect::<Vec<_>>())?);
        return Ok(());
    }
    let rows = images
        .iter()
        .map(|i| {
            vec![
                i.name.clone().into(),
                i.version.clone().into(),
                i.model.clone().into(),
                i.tools.len().to_string().into(),
                i.grants.len().to_string().into(),
                i.description.clone().into(),
            ]
        })
        .collect();
    let flex = Flex { column: 5, piped: 70, wide: false };
    outln!("{}", table_of(&["NAME", "VERSION", "MODEL", "TOOLS", "GRANTS", "DESCRIPTION"], rows, Some(flex)));
    Ok(())
}

fn show(i: &Image, registry: Option<&libos_tools::Registry>, config: &libos_runtime::Config) {
    // Images come from directories anyone with write access filled: escaped like model text.
    outln!("{}", one_line(&format!("image {} {} · model profile `{}`", i.name, i.version, i.model)));
    outln!("{}", block(&i.description));
    outln!();
    outln!("tools:   {}", i.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "));
    if !i.mcp.is_empty() {
        let named: Vec<String> = i.mcp.iter().map(ToString::to_string).collect();
        outln!("mcp:     {}", one_line(&named.join(", ")));
    }
    for why in &i.unavailable {
        outln!("         {}", one_line(why));
    }
    let grants: Vec<String> = i.grants.iter().map(ToString::to_string).collect();
    let grants = if grants.is_empty() { "none".to_string() } else { grants.join("; ") };
    outln!("grants:  {}", one_line(&grants));
    outln!("budget:  {}", i.budget);
    outln!("context: token_budget={} transcript_window={}", i.context.token_budget, i.context.transcript_window);
    outln!("model:   {}", one_line(&describe_profile(config, &i.model)));
    if let Some(registry) = registry {
        let rows: Vec<Vec<String>> = i
            .tools
            .iter()
            .filter_map(|t| registry.get(t.as_str()))
            .filter_map(|e| e.dynamic().map(|d| (e, d)))
            .map(|(e, d)| {
                let needs: Vec<String> = d.needs().iter().map(|(r, right)| format!("{right} {r}")).collect();
                vec![d.name().to_string(), needs.join(", "), d.annotations().label(), clip(&e.spec().description, 60)]
            })
            .collect();
        if !rows.is_empty() {
            outln!();
            outln!("MCP tools (HINTS are the server's own claims, shown for people; grants decide):");
            outln!("{}", table(&["TOOL", "NEEDS", "HINTS (server's claims)", "DESCRIPTION"], rows));
        }
    }
    outln!();
    outln!("{}", block(i.source.trim_end()));
}

/// What a profile sends, as `images show` prints it.
fn describe_profile(config: &libos_runtime::Config, name: &str) -> String {
    match config.profiles.get(name) {
        None => format!("`{name}` is not configured (define [models.{name}] in libos.toml, or run with --script FILE)"),
        Some(libos_runtime::Profile::Scripted { script, .. }) => format!("`{name}`: scripted, {}", script.display()),
        Some(libos_runtime::Profile::Http(c)) => format!(
            "`{name}`: {} at {} ({}) · call_mode {} · {} · context_window {} · timeout_s {} · max_failures {}{}",
            c.model,
            c.base_url,
            c.protocol.api(),
            c.call_mode.map_or("asked of the server", |m| m.as_str()),
            c.sampling.describe(),
            c.context_window.map_or_else(|| "asked of the server".to_string(), |w| w.to_string()),
            c.timeout.as_secs(),
            c.max_failures,
            config.fallbacks.get(name).map_or_else(String::new, |f| format!(" · fallback {}", f.join(", ")))
        ),
    }
}
