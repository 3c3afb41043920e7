//! `libos images`.

use crate::ctx::Ctx;
use crate::render::{clip, table};

/// Lists the images that can be spawned.
pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let images = ctx.images(&config)?;
    let rows = images
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.version.clone(),
                i.model.clone(),
                i.tools.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
                clip(&i.description, 60),
            ]
        })
        .collect();
    println!("{}", table(&["NAME", "VERSION", "MODEL", "TOOLS", "DESCRIPTION"], rows));
    Ok(())
}
