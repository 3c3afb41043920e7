//! One module per command.

pub mod approvals;
pub mod audit;
pub mod caps;
pub mod demo;
pub mod demo_mcp;
pub mod docs;
pub mod images;
pub mod init;
pub mod kill;
pub mod logs;
mod logs_follow;
pub mod mcp;
pub mod memory;
pub mod msg;
pub mod ps;
pub mod replay;
pub mod run;
pub mod serve;
pub mod spawn;
