//! `libos images`, `libos images show NAME`.

use crate::args::ImagesArgs;
use crate::ctx::Ctx;
use crate::render::{block, clip, one_line, table};

/// Lists the images that can be spawned, or shows one whole.
pub fn run(ctx: &Ctx, args: &ImagesArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let images = ctx.images(&config)?;
    if let Some(crate::args::ImagesAction::Show { name }) = &args.action {
        let i = images.get(name)?;
        // Images come from directories anyone with write access filled: escaped like model text.
        println!("{}", one_line(&format!("image {} {} · model profile `{}`", i.name, i.version, i.model)));
        println!("{}", block(&i.description));
        println!();
        println!("tools:   {}", i.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "));
        let grants: Vec<String> = i.grants.iter().map(ToString::to_string).collect();
        let grants = if grants.is_empty() { "none".to_string() } else { grants.join("; ") };
        println!("grants:  {}", one_line(&grants));
        println!("budget:  {}", i.budget);
        println!("context: token_budget={} transcript_window={}", i.context.token_budget, i.context.transcript_window);
        println!("model:   {}", one_line(&describe_profile(&config, &i.model)));
        println!();
        println!("{}", block(i.source.trim_end()));
        return Ok(());
    }
    let rows = images
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.version.clone(),
                i.model.clone(),
                i.tools.len().to_string(),
                i.grants.len().to_string(),
                clip(&i.description, 70),
            ]
        })
        .collect();
    println!("{}", table(&["NAME", "VERSION", "MODEL", "TOOLS", "GRANTS", "DESCRIPTION"], rows));
    Ok(())
}

/// What a profile sends, as `images show` prints it.
fn describe_profile(config: &libos_runtime::Config, name: &str) -> String {
    match config.profiles.get(name) {
        None => format!("`{name}` is not configured (define [models.{name}] in libos.toml, or run with --script FILE)"),
        Some(libos_runtime::Profile::Scripted { script, .. }) => format!("`{name}`: scripted, {}", script.display()),
        Some(libos_runtime::Profile::OpenAi(c)) => format!(
            "`{name}`: {} at {} · call_mode {} · {} · context_window {} · timeout_s {} · max_failures {}",
            c.model,
            c.base_url,
            c.call_mode.map_or("asked of the server", |m| m.as_str()),
            c.sampling.describe(),
            c.context_window.map_or_else(|| "asked of the server".to_string(), |w| w.to_string()),
            c.timeout.as_secs(),
            c.max_failures
        ),
    }
}
