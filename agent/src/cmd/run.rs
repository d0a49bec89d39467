//! `tally run`: sync in a loop (or once), woken by file changes, and upload
//! at the team's interval (`/v1/agent/config`), at once when a batch is full,
//! on a stop and with `--once`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tally_core::event::PrivacyMode;

use tally::config::Config;
use tally::error::AgentError;
use tally::home::Home;
use tally::now_ms;
use tally::ship::{self, RunStatus};
use tally::source::{self, Source};

fn print_sync(s: &ship::Sync) {
    let st = &s.scan.stats;
    let mut msg = format!(
        "read {} of {} files ({} MiB, {} lines, {} malformed); {} new requests, {} duplicate lines",
        st.files_read,
        st.files,
        st.bytes_read >> 20,
        st.lines,
        st.malformed,
        st.new_requests,
        st.duplicates
    );
    if let Some(e) = &s.enqueued {
        msg.push_str(&format!(
            "; queued {} events in {} batches",
            e.events, e.batches
        ));
        if e.held > 0 {
            msg.push_str(&format!(
                " ({} held until their response is complete)",
                e.held
            ));
        }
    }
    eprintln!("{msg}");
    for u in &st.unreadable {
        eprintln!("warning: cannot read {u}");
    }
    if let Some(o) = &s.ollama_error {
        eprintln!("warning: no categories: {o}");
    }
}

/// When `tally run` uploads: one request per interval carries minutes of
/// work (the server's cost is per request, message and transaction, hardly
/// per event); a full batch, a stop, `--once` and the first cycle do not wait.
struct Pace {
    interval: Option<Duration>,
    next: Option<Instant>,
}

/// The wait before the second upload of a run: a random part (1/8 to all)
/// of the interval, `r` a uniform random number. Agents started together (a
/// login wave, a fleet update, a server back after an outage) would
/// otherwise upload in lockstep for ever, and in lockstep every upload
/// window crosses a quarter-hour boundary together or none does, so the
/// server writes its usage rows in bursts. Shorter than the interval, so no
/// event waits longer than the interval plus the settle window.
fn first_wait(interval: Duration, r: u32) -> Duration {
    let min = interval / 8;
    min + (interval - min).mul_f64(f64::from(r) / f64::from(u32::MAX))
}

impl Pace {
    /// When the next upload falls due, after the one just made.
    fn schedule(&mut self, first: bool) {
        self.next = self.interval.map(|d| {
            let wait = if first {
                let mut b = [0u8; 4];
                let _ = getrandom::getrandom(&mut b);
                first_wait(d, u32::from_le_bytes(b))
            } else {
                d
            };
            Instant::now() + wait
        });
    }

    fn due(&self) -> bool {
        match (self.interval, self.next) {
            (Some(_), Some(next)) => Instant::now() >= next,
            _ => true,
        }
    }
    /// How long a wait for changes may last before an upload falls due.
    fn wait(&self, rescan: Duration) -> Duration {
        match (self.interval, self.next) {
            (Some(_), Some(next)) => rescan.min(next.saturating_duration_since(Instant::now())),
            _ => rescan,
        }
    }
}

/// One cycle, recorded for `tally status`. Between uploads it only counts
/// what is ready (nothing is queued, so the batches of one interval are
/// packed together); when an upload is due (or `force`, or a batch's worth
/// is ready) it syncs, queues and uploads.
fn cycle(
    home: &Home,
    cfg: &mut Config,
    sources: &[Box<dyn Source>],
    progress: bool,
    pace: &mut Pace,
    force: bool,
) -> Result<(), AgentError> {
    pace.interval = cfg.ship_interval();
    let mut st = RunStatus::load(home);
    st.ship_interval_s = pace.interval.map(|d| d.as_secs());
    if !force && !pace.due() {
        let ready = ship::peek(home, sources, cfg, now_ms()).map_err(AgentError::retry_later)?;
        st.last_sync_ms = Some(now_ms());
        st.ready_to_ship = ready;
        if ready < cfg.batch_events() {
            st.save(home);
            return Ok(());
        }
        eprintln!("{ready} events ready: a full batch ships now");
    }
    let synced = ship::sync(home, sources, Some(cfg), now_ms(), progress)
        .map_err(AgentError::retry_later)?;
    print_sync(&synced);
    st.last_sync_ms = Some(now_ms());
    st.ready_to_ship = 0;
    if cfg.effective_mode() == PrivacyMode::CategorizeLocal {
        if synced.ollama_error.is_some() || synced.ollama_categorized > 0 {
            st.ollama_error = synced.ollama_error.clone();
        }
        st.ollama_categorized += synced.ollama_categorized;
    } else {
        st.ollama_error = None;
    }
    if let Some(e) = &synced.enqueued {
        st.outbox_full = e.outbox_full;
        st.held_unsettled = e.held;
    }
    st.save(home);
    let res = ship::upload(home, cfg);
    // A failed upload waits for the next interval too: the outbox keeps it.
    pace.schedule(pace.next.is_none());
    st.next_upload_ms = pace
        .next
        .map(|n| now_ms() + n.saturating_duration_since(Instant::now()).as_millis() as i64);
    match &res {
        Ok(u) => {
            if u.batches > 0 || u.quarantined > 0 || u.gave_up > 0 {
                eprintln!("uploaded {} events in {} batches", u.events, u.batches);
            }
            if u.restricted > 0 {
                eprintln!(
                    "note: {} queued events were built under a looser privacy mode and were restricted to {} before upload",
                    u.restricted,
                    cfg.effective_mode().as_str()
                );
            }
            if u.quarantined > 0 || u.gave_up > 0 {
                eprintln!(
                    "WARNING: {} events quarantined and {} batches given up in this run; see `tally status`",
                    u.quarantined, u.gave_up
                );
            }
            st.last_upload_ms = Some(now_ms());
            st.last_upload_error = None;
            st.events_uploaded += u.events as u64;
            st.batches_uploaded += u.batches as u64;
        }
        Err(e) => st.last_upload_error = Some(e.to_string()),
    }
    st.save(home);
    res.map(|_| ())
}

/// Fetches the team's privacy mode; only refused credentials stop the agent,
/// any other failure keeps the mode it has.
fn refresh(home: &Home, cfg: &mut Config) -> Result<(), AgentError> {
    match ship::refresh_mode(home, cfg) {
        Err(
            e @ (AgentError::Auth { .. }
            | AgentError::TeamDeleted { .. }
            | AgentError::InsecureServer { .. }),
        ) => Err(e),
        Err(e) => {
            eprintln!(
                "warning: could not fetch the team's privacy mode ({e}); using {}",
                cfg.privacy_mode.as_str()
            );
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// What ends a wait between cycles.
enum Wake {
    /// Something under a watched root changed.
    Change,
    /// SIGTERM or SIGINT: the service manager (or Ctrl-C) asks us to stop.
    Stop,
}

/// Turns SIGTERM and SIGINT into a `Wake::Stop`, so the loop finishes the
/// cycle in hand and flushes before exiting instead of dying mid-upload.
/// A second signal while that flush runs exits at once (exit status 130 for
/// SIGINT, 143 for SIGTERM): the outbox is crash-safe, so nothing is lost
/// either way, only delayed to the next start.
#[cfg(unix)]
fn on_stop_signals(tx: std::sync::mpsc::Sender<Wake>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        // Registered before the flag handler below, so the first signal
        // sees `false` and only the second one exits.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, stopping.clone());
        let _ = signal_hook::flag::register(sig, stopping.clone());
    }
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                    eprintln!("{name}: shipping what is settled, then stopping");
                    let _ = tx.send(Wake::Stop);
                }
            });
        }
        Err(e) => eprintln!(
            "warning: cannot handle SIGTERM ({e}); a stop will wait for the next start to ship"
        ),
    }
}

#[cfg(not(unix))]
fn on_stop_signals(_tx: std::sync::mpsc::Sender<Wake>) {}

pub fn run(once: bool, interval: Duration, log_file: Option<PathBuf>) -> Result<(), AgentError> {
    let log = log_file
        .map(|p| tally::logfile::LogFile::redirect_std(&p))
        .transpose()?;
    let home = Home::from_env();
    let mut cfg = Config::load(&home)?;
    // An enrolment from an older agent may name a plain-http server.
    tally::config::check_server_url(&cfg.server)?;
    let sources = source::all_from_env();
    refresh(&home, &mut cfg)?;
    let mut pace = Pace {
        interval: cfg.ship_interval(),
        next: None,
    };
    if once {
        return cycle(&home, &mut cfg, &sources, true, &mut pace, true);
    }
    let (tx, rx) = std::sync::mpsc::channel::<Wake>();
    on_stop_signals(tx.clone());
    let mut watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.send(Wake::Change);
    })
    .map_err(AgentError::Watch);
    if let Err(e) = &watcher {
        eprintln!(
            "warning: {e}; rescanning every {} s instead",
            interval.as_secs()
        );
    }
    let mut watched: Vec<PathBuf> = Vec::new();
    let mut last_refresh = Instant::now();
    let mut first = true;
    let mut stop = false;
    loop {
        if let Ok(w) = watcher.as_mut() {
            use notify::Watcher;
            for root in sources.iter().flat_map(|s| s.roots()) {
                if !watched.contains(&root)
                    && root.is_dir()
                    && w.watch(&root, notify::RecursiveMode::Recursive).is_ok()
                {
                    watched.push(root);
                }
            }
        }
        if last_refresh.elapsed() > Duration::from_secs(300) {
            refresh(&home, &mut cfg)?;
            last_refresh = Instant::now();
        }
        // A stop flushes: what is settled leaves now, not at the next interval.
        match cycle(&home, &mut cfg, &sources, first, &mut pace, stop) {
            Ok(()) => {}
            Err(e @ (AgentError::Auth { .. } | AgentError::TeamDeleted { .. })) => return Err(e),
            Err(e) => eprintln!("{e}"),
        }
        first = false;
        if let Some(l) = &log {
            if let Err(e) = l.maintain() {
                eprintln!("warning: {e}");
            }
        }
        if stop {
            eprintln!("stopped");
            return Ok(());
        }
        // Wait for a change, the next upload, or the periodic rescan that
        // catches what watching misses (network filesystems, new roots,
        // lost events).
        match rx.recv_timeout(pace.wait(interval)) {
            Ok(Wake::Stop) => stop = true,
            Ok(Wake::Change) => {
                // Let a burst of writes (one streamed response) finish,
                // unless a stop arrives meanwhile.
                let until = Instant::now() + Duration::from_secs(2);
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(Wake::Stop) => {
                            stop = true;
                            break;
                        }
                        Ok(Wake::Change) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod pace_tests {
    use super::first_wait;
    use std::time::Duration;

    #[test]
    fn the_first_wait_is_a_random_part_of_the_interval_never_longer() {
        let d = Duration::from_secs(300);
        assert_eq!(first_wait(d, 0), Duration::from_millis(37_500));
        assert_eq!(first_wait(d, u32::MAX), d);
        assert_eq!(first_wait(d, u32::MAX / 2).as_secs(), 168);
        let one_hour = Duration::from_secs(3600);
        assert_eq!(first_wait(one_hour, 0), Duration::from_secs(450));
    }
}
