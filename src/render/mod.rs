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

/// What the human display may use on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    pub bars: bool,
    pub color: bool,
}

/// The color rules: `--color always|never` decide; `auto` colors a terminal unless NO_COLOR
/// is set (not empty) or TERM=dumb. Bars need a terminal that is not TERM=dumb; NO_COLOR
/// keeps them, uncolored.
pub fn display(choice: crate::cli::ColorChoice, stderr_is_terminal: bool) -> Display {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    display_for(choice, stderr_is_terminal, no_color, dumb)
}

fn display_for(
    choice: crate::cli::ColorChoice,
    terminal: bool,
    no_color: bool,
    dumb: bool,
) -> Display {
    use crate::cli::ColorChoice;
    Display {
        bars: terminal && !dumb,
        color: match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color && !dumb,
        },
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;
    use crate::cli::ColorChoice::{Always, Auto, Never};

    #[test]
    fn color_rules() {
        let d = |c, t, n, dumb| {
            let d = display_for(c, t, n, dumb);
            (d.bars, d.color)
        };
        assert_eq!(d(Auto, true, false, false), (true, true));
        assert_eq!(d(Never, true, false, false), (true, false));
        assert_eq!(
            d(Auto, true, true, false),
            (true, false),
            "NO_COLOR keeps bars"
        );
        assert_eq!(
            d(Auto, true, false, true),
            (false, false),
            "TERM=dumb: plain"
        );
        assert_eq!(d(Auto, false, false, false), (false, false));
        assert_eq!(d(Always, false, true, false), (false, true));
    }
}
#[cfg(test)]
mod golden;
