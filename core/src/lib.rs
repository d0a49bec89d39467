//! Platform-free rules shared by the `tally` agent and the edge Worker.
//!
//! Nothing in this crate performs I/O or reads a clock: time, randomness and
//! secrets are passed in as values, so every rule can be pinned by a native
//! test with exact numbers and both sides of the wire are guaranteed to agree.

pub mod bucket;
pub mod categorize;
pub mod claude;
pub mod codex;
pub mod event;
pub mod hash;
pub mod money;
pub mod pricing;
pub mod privacy;
pub mod redact;
pub mod rollup;
pub mod seal;
pub mod time;
pub mod usage;
