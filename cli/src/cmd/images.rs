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
        outln!("{}", one_line(&format!("image {} {} · model profile `{}`", i.name, i.version, i.model)));
        outln!("{}", block(&i.description));
        outln!();
        outln!("tools:   {}", i.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "));
        let grants: Vec<String> = i.grants.iter().map(ToString::to_string).collect();
        let grants = if grants.is_empty() { "none".to_string() } else { grants.join("; ") };
        outln!("grants:  {}", one_line(&grants));
        outln!("budget:  {}", i.budget);
        outln!("context: token_budget={} transcript_window={}", i.context.token_budget, i.context.transcript_window);
        outln!();
        outln!("{}", block(i.source.trim_end()));
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
    outln!("{}", table(&["NAME", "VERSION", "MODEL", "TOOLS", "GRANTS", "DESCRIPTION"], rows));
    Ok(())
}
