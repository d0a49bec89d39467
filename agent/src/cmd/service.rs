//! `tally service install|uninstall|status`: the background service.

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

pub fn status(json: bool) -> Result<(), AgentError> {
    let s = service::status()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("plain struct serializes")
        );
        return Ok(());
    }
    if !s.installed {
        println!(
            "no service installed ({} absent); `tally service install` adds it",
            s.unit
        );
        return Ok(());
    }
    println!("unit: {}", s.unit);
    println!("state: {}", s.state);
    println!("logs: {}", s.log);
    if !s.runs_this_binary {
        println!("WARNING: the unit starts another binary than this one; run `tally service install` again");
    }
    Ok(())
}
