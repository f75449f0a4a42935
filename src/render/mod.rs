//! Renderers: everything that turns [`Event`]s into output. The engine only knows [`Sink`].

pub mod batch;
pub mod human;
pub mod json;

use crate::event::Event;

/// Where events go. Called from several worker threads at once.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// Sends every event to several sinks (human display plus `--events-file`).
pub struct Tee(pub Vec<Box<dyn Sink>>);

impl Sink for Tee {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// Keeps every event in memory; for tests and for callers that want the stream as data.
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl Sink for Collect {
    fn emit(&self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

/// Writes `bytes` to stdout for commands whose output is the product (`man`, `completions`).
pub fn write_stdout(bytes: &[u8]) -> i32 {
    print_then(bytes, crate::exit::OK)
}

/// Writes `bytes` to stdout, then ends with `code`. A reader that went away (`| head -1`)
/// ends the command quietly with 0; any other write error is reported on stderr.
pub fn print_then(bytes: &[u8], code: i32) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            crate::exit::PARTIAL
        }
    }
}

/// A size for people, in one unit family: B, KiB, MiB, GiB, TiB (one decimal above bytes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    // Round first, so 1023.96 KiB shows as 1.0 MiB rather than 1024.0 KiB.
    while (v * 10.0).round() / 10.0 >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A transfer rate in the same family: `12.3 KiB/s`, `4.5 MiB/s` (a slow link never shows 0.0).
pub fn rate(bytes_per_second: f64) -> String {
    let b = if bytes_per_second.is_finite() && bytes_per_second > 0.0 {
        bytes_per_second.round() as u64
    } else {
        0
    };
    format!("{}/s", bytes(b))
}

/// `s` as one shell word (POSIX sh), so a printed command can be pasted as it is.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./@:,+=-%~".contains(c);
    if !s.is_empty() && s.chars().all(safe) && !s.starts_with('~') {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that continues a migration saved in `state_file`.
pub fn resume_command(state_file: &str) -> String {
    format!("btsx migrate --resume {}", shell_quote(state_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(bytes(25 * 1024 * 1024), "25.0 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(2048.0), "2.0 KiB/s");
        assert_eq!(rate(300.0), "300 B/s");
        assert_eq!(rate(f64::NAN), "0 B/s");
    }

    #[test]
    fn commands_quote_what_the_shell_would_split() {
        assert_eq!(
            resume_command("/srv/state/a@b.json"),
            "btsx migrate --resume /srv/state/a@b.json"
        );
        assert_eq!(
            resume_command("/tmp/my jobs/it's.json"),
            "btsx migrate --resume '/tmp/my jobs/it'\\''s.json'"
        );
    }
}
