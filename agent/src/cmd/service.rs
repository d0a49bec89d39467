//! `tally service install|uninstall`: the background service.

use tally::error::AgentError;
use tally::service;

pub fn install(start: bool) -> Result<(), AgentError> {
    println!("{}", service::install(start)?);
    Ok(())
}

pub fn uninstall() -> Result<(), AgentError> {
    match service::uninstall()? {
        Some(p) => println!("removed {p}"),
        None => println!("no service installed"),
    }
    Ok(())
}
