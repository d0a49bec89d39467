//! `tally demo-data`: generated Claude Code transcripts, small for demos or
//! large for benchmarks.

use std::path::Path;

use tally::error::AgentError;
use tally::{demo, now_ms};

/// The fixed seed makes two runs write the same data.
const SEED: u64 = 42;

pub fn corpus(out: &Path, mib: u64) -> Result<(), AgentError> {
    let (bytes, requests) =
        demo::generate_corpus(out, mib << 20, SEED).map_err(|source| AgentError::Generate {
            what: "the corpus",
            source,
        })?;
    eprintln!(
        "wrote {} MiB ({requests} requests) under {}",
        bytes >> 20,
        out.display()
    );
    Ok(())
}

pub fn transcripts(out: &Path, sessions: u32, requests: u32) -> Result<(), AgentError> {
    let bytes = demo::generate(out, sessions, requests, now_ms(), SEED).map_err(|source| {
        AgentError::Generate {
            what: "demo data",
            source,
        }
    })?;
    eprintln!(
        "wrote {bytes} bytes of demo transcripts under {}",
        out.display()
    );
    Ok(())
}
