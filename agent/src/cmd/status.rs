//! `tally status`: enrolment, privacy mode, key storage, the outbox and the
//! local index, as text or JSON.

use serde_json::json;
use tally_core::event::PrivacyMode;

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::index::{roots_signature, Index};
use tally::outbox::Outbox;
use tally::quarantine::Quarantine;
use tally::ship::{self, RunStatus};
use tally::{keystore, source};

pub fn status(json_out: bool) -> Result<(), AgentError> {
    let home = Home::from_env();
    let cfg = Config::load(&home)?;
    let st = RunStatus::load(&home);
    let key = keystore::load(&home)?;
    let key_desc = key
        .as_ref()
        .map(|k| k.storage.describe())
        .unwrap_or_else(|| "no key yet (created on first run)".into());
    let (pending_batches, pending_events, outbox_bytes) = ship::pending_summary(&home)?;
    let (rejected, quarantine) = match &key {
        Some(k) => (
            Outbox::open_reader(&home, k.bytes)?.done().rejected,
            Quarantine::load(&home, &k.bytes)?,
        ),
        None => (Vec::new(), Quarantine::default()),
    };
    let mode = cfg.effective_mode();
    let insecure = tally::config::check_server_url(&cfg.server)
        .err()
        .map(|e| e.to_string());
    let sources = source::all_from_env();
    let ix = Index::load(&home, &roots_signature(&sources))?;
    let (malformed, malformed_files) = ix.malformed_summary();
    let ollama = if mode == PrivacyMode::CategorizeLocal {
        let (url, model) = cfg.ollama();
        Some(match &st.ollama_error {
            Some(e) => format!("unavailable: {e}; events ship without a category"),
            None => format!(
                "ok ({model} at {url}; {} prompts categorized)",
                st.ollama_categorized
            ),
        })
    } else {
        None
    };
    let version = tally::upload::AGENT_VERSION;
    let outdated = cfg
        .min_agent_version
        .as_deref()
        .filter(|m| !tally_core::release::version_at_least(version, m));
    let v = json!({
        "agent_version": version, "min_agent_version": cfg.min_agent_version, "update_needed": outdated.is_some(),
        "server": cfg.server, "team_id": cfg.team_id, "agent_id": cfg.agent_id,
        "privacy_mode": mode, "team_privacy_mode": cfg.privacy_mode, "max_mode": cfg.max_mode,
        "what_leaves": tally_core::privacy::describe(mode),
        "hostname_sent": cfg.hostname_sent, "rate_capacity": cfg.rate_capacity, "batch_events": cfg.batch_events(),
        "server_error": insecure,
        "key_storage": key_desc, "key_degraded": key.as_ref().is_some_and(|k| k.storage.is_degraded()),
        "outbox": {"pending_batches": pending_batches, "pending_events": pending_events, "bytes": outbox_bytes,
                   "max_bytes": cfg.outbox_max_bytes, "full": st.outbox_full,
                   "rejected_batches": rejected.iter().map(|r| json!({"seq": r.seq, "error": r.error})).collect::<Vec<_>>()},
        "quarantine": {"events": quarantine.quarantined(), "given_up_events": quarantine.given_up(),
                       "given_up_batches": quarantine.gave_up.len(), "held_back": quarantine.count(),
                       "first_error": quarantine.first_error(), "file": home.quarantine()},
        "events_shipped": st.events_uploaded, "batches_shipped": st.batches_uploaded,
        "last_sync_ms": st.last_sync_ms, "last_upload_ms": st.last_upload_ms, "last_upload_error": st.last_upload_error,
        "held_until_complete": st.held_unsettled,
        "ship_interval_s": cfg.ship_interval().map(|d| d.as_secs()), "next_upload_ms": st.next_upload_ms,
        "ready_to_ship": st.ready_to_ship,
        "ollama": ollama,
        "index": {"requests": ix.records.len(), "files": ix.files.len(), "malformed_lines": malformed,
                  "files_with_malformed_lines": malformed_files, "late_updates": ix.late_updates},
    });
    if json_out {
        println!("{v}");
        return Ok(());
    }
    let ceiling = match cfg.max_mode {
        Some(m) => m.as_str(),
        None => "none",
    };
    let mut out = format!(
        "server:          {}\nteam:            {}\nagent:           {}\nprivacy mode:    {} (team: {}, this machine's ceiling: {ceiling})\n                 {}\noutbox key:      {}\noutbox:          {} batches ({} events) waiting, {} KiB of {} MiB\nevents shipped:  {}\n",
        cfg.server, cfg.team_id, cfg.agent_id, mode.as_str(), cfg.privacy_mode.as_str(),
        tally_core::privacy::describe(mode), key_desc, pending_batches, pending_events,
        outbox_bytes >> 10, cfg.outbox_max_bytes >> 20, st.events_uploaded
    );
    if let Some(e) = &insecure {
        out.push_str(&format!("ERROR:           {e}\n"));
    }
    if let Some(m) = outdated {
        out.push_str(&format!(
            "UPDATE NEEDED:   this agent is {version}, the server supports {m} and newer: run `tally update`\n"
        ));
    }
    if quarantine.count() > 0 {
        out.push_str(&format!(
            "QUARANTINED:     {} events rejected by the server, {} events in {} batches given up after {} days; kept encrypted in {}; first error: {}\n",
            quarantine.quarantined(),
            quarantine.given_up(),
            quarantine.gave_up.len(),
            tally_core::wire::RESEND_GIVE_UP_DAYS,
            home.quarantine().display(),
            quarantine.first_error().unwrap_or_default()
        ));
    }
    if let Some(o) = &ollama {
        out.push_str(&format!("ollama:          {o}\n"));
    }
    out.push_str(&format!("uploads:         {}\n", upload_pace(&cfg, &st)));
    if let Some(e) = &st.last_upload_error {
        out.push_str(&format!("last upload:     FAILED: {e}\n"));
    }
    if st.outbox_full {
        out.push_str(
            "WARNING:         the outbox is full; new events wait in the logs until it drains\n",
        );
    }
    for r in &rejected {
        out.push_str(&format!("rejected batch:  #{}: {}\n", r.seq, r.error));
    }
    out.push_str(&format!(
        "local index:     {} requests from {} files; {malformed} malformed lines in {malformed_files} files\n",
        ix.records.len(),
        ix.files.len()
    ));
    print!("{out}");
    Ok(())
}

/// The upload interval and when `tally run` last said it uploads next.
fn upload_pace(cfg: &tally::config::Config, st: &tally::ship::RunStatus) -> String {
    let Some(every) = cfg.ship_interval() else {
        return "after every change (the server sets no interval)".into();
    };
    let mut s = format!(
        "every {} s, at once when a batch of {} events is full or the agent stops; {} events ready",
        every.as_secs(),
        cfg.batch_events(),
        st.ready_to_ship
    );
    if let Some(next) = st.next_upload_ms {
        let left = (next - tally::now_ms()).max(0) / 1000;
        s.push_str(&format!("; next in {left} s"));
    }
    s
}
