//! `libos init`: create the store.

use libos_kernel::{OpenMode, schema_version};

use crate::ctx::Ctx;

/// Creates (or opens and migrates) the store.
pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    ctx.open(OpenMode::Create)?;
    outln!("store ready at {} (schema version {})", ctx.store_name(), schema_version());
    Ok(())
}
