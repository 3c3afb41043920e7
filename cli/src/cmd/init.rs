//! `libos init`: create the store.

use libos_kernel::{OpenMode, schema_version};

use crate::args::JsonArg;
use crate::ctx::Ctx;
use crate::render;

/// Creates (or opens and migrates) the store.
pub fn run(ctx: &Ctx, args: &JsonArg) -> anyhow::Result<()> {
    ctx.open(OpenMode::Create)?;
    if args.json {
        let out = serde_json::json!({"store": ctx.store_name(), "schema_version": schema_version()});
        outln!("{}", render::json(&out)?);
    } else {
        outln!("store ready at {} (schema version {})", ctx.store_name(), schema_version());
    }
    Ok(())
}
