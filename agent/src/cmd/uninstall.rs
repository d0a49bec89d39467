//! `tally uninstall`: removes the service, the credentials, the outbox,
//! the quarantine and their key; keeps the local index so reports still work.

use serde_json::json;

use tally::error::AgentError;
use tally::home::Home;
use tally::quarantine::Quarantine;
use tally::{keystore, service, ship};

pub fn uninstall(json_out: bool) -> Result<(), AgentError> {
    let home = Home::from_env();
    let mut removed: Vec<String> = Vec::new();
    if let Some(p) = service::uninstall()? {
        removed.push(p);
    }
    let (pending, events, _) = ship::pending_summary(&home).unwrap_or((0, 0, 0));
    if pending > 0 {
        eprintln!(
            "warning: {events} queued events were never sent and are discarded with the outbox"
        );
    }
    if let Ok(Some(k)) = keystore::load(&home) {
        let held = Quarantine::load(&home, &k.bytes)
            .map(|q| q.count())
            .unwrap_or(0);
        if held > 0 {
            eprintln!(
                "warning: {held} quarantined or given-up events are discarded with the quarantine"
            );
        }
    }
    removed.extend(keystore::delete(&home));
    for p in [home.config(), home.status(), home.quarantine()] {
        if std::fs::remove_file(&p).is_ok() {
            removed.push(p.display().to_string());
        }
    }
    let ob = home.outbox_dir();
    if std::fs::remove_dir_all(&ob).is_ok() {
        removed.push(ob.display().to_string());
    }
    if json_out {
        println!("{}", json!({"removed": removed}));
    } else {
        for r in &removed {
            println!("removed {r}");
        }
        println!("The local index ({}) is kept so `tally report` still works; delete it by hand if you like.", home.index().display());
    }
    Ok(())
}
