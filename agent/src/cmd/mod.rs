//! One module per command (or per close family of commands). Each returns
//! `Err` for what `main` prints as `tally: <error>` with a failing exit code.

pub mod dashboard;
pub mod demo_data;
pub mod doctor;
pub mod install;
pub mod preview;
pub mod report;
pub mod run;
pub mod service;
pub mod status;
pub mod uninstall;
pub mod update;
