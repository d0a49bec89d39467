//! A one-line progress bar on stderr for long backfills; silent when stderr
//! is not a terminal, so logs and tests see no control characters.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Bar {
    total: u64,
    done: u64,
    last: Instant,
    shown: bool,
    tty: bool,
}

impl Bar {
    pub fn new(total: u64) -> Bar {
        // SAFETY: isatty only inspects a descriptor number.
        let tty = unsafe { libc::isatty(2) } == 1;
        Bar {
            total: total.max(1),
            done: 0,
            last: Instant::now(),
            shown: false,
            tty,
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        // Small scans finish before a bar would help.
        if self.tty && self.last.elapsed() > Duration::from_millis(200) && self.total > 64 << 20 {
            self.last = Instant::now();
            self.shown = true;
            let pct = (self.done.min(self.total) * 100 / self.total) as usize;
            let filled = pct / 4;
            eprint!(
                "\rreading logs [{}{}] {pct:3}% {} / {} MiB",
                "#".repeat(filled),
                " ".repeat(25 - filled),
                self.done >> 20,
                self.total >> 20
            );
            let _ = std::io::stderr().flush();
        }
    }

    pub fn finish(&mut self) {
        if self.shown {
            eprintln!();
        }
    }
}
