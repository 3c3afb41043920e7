//! One module per command.

pub mod audit;
pub mod demo;
pub mod images;
pub mod init;
pub mod kill;
pub mod logs;
pub mod ps;
pub mod run;
pub mod spawn;
