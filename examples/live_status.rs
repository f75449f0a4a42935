//! A one-line live status for `btsx migrate --json`, as a script would build it from the event
//! stream (docs/events.md). Only documented fields are read.
//!
//! ```sh
//! btsx migrate SRC DST --json | cargo run -q --example live_status
//! # or, built once:
//! btsx migrate SRC DST --json | target/debug/examples/live_status
//! ```
//!
//! While the job runs, stderr shows one line that rewrites itself (`\r`):
//!
//! ```text
//! copying_messages  1234/5000  24.7%  INBOX  31.2 MiB
//! ```
//!
//! At the end, a final line from the `summary` event; the exit code is the summary's
//! `exit_code` (2 when the stream ended without a summary).

use std::io::{BufRead, IsTerminal, Write};

use serde_json::Value;

#[derive(Default)]
struct Status {
    phase: String,
    done: u64,
    total: u64,
    folder: String,
    bytes: u64,
    /// Width of the last line drawn, to blank it out when the next one is shorter.
    drawn: usize,
}

impl Status {
    fn line(&self) -> String {
        let percent = if self.total == 0 {
            if self.phase == "complete" { 100.0 } else { 0.0 }
        } else {
            self.done as f64 * 100.0 / self.total as f64
        };
        let mut s = format!(
            "{}  {}/{}  {:.1}%",
            if self.phase.is_empty() {
                "starting"
            } else {
                &self.phase
            },
            self.done,
            self.total,
            percent
        );
        if !self.folder.is_empty() {
            s.push_str("  ");
            s.push_str(&self.folder);
        }
        s.push_str("  ");
        s.push_str(&human_bytes(self.bytes));
        s
    }

    fn draw(&mut self, err: &mut impl Write) {
        let line = self.line();
        let width = line.chars().count();
        let pad = self.drawn.saturating_sub(width);
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
        self.drawn = width;
    }

    /// Blank the live line before printing a whole line.
    fn clear(&mut self, err: &mut impl Write) {
        if self.drawn > 0 {
            let _ = write!(err, "\r{}\r", " ".repeat(self.drawn));
            self.drawn = 0;
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The final line, from a `summary` event.
fn final_line(sum: &Value) -> String {
    let mut line = format!(
        "{}: {} of {} messages copied, {} skipped, {} failed, {} in {:.1} s",
        s(sum, "status"),
        u(sum, "messages_copied"),
        u(sum, "messages_total"),
        u(sum, "messages_skipped"),
        u(sum, "messages_failed"),
        human_bytes(u(sum, "bytes_copied")),
        u(sum, "duration_ms") as f64 / 1000.0
    );
    let deleted = u(sum, "messages_deleted_on_source");
    if deleted > 0 {
        line.push_str(&format!(", {deleted} deleted on the source"));
    }
    if let Some(e) = sum["error"].as_str() {
        line.push_str(&format!(" — {e}"));
    }
    line.push_str(&format!(" (exit {})", u(sum, "exit_code")));
    line
}

fn main() {
    let stdin = std::io::stdin();
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    // Off a terminal, `\r` updates would pile up in a log: draw only on phase changes there.
    let live = std::io::stderr().is_terminal();
    let mut st = Status::default();
    let mut summary: Option<Value> = None;

    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            st.clear(&mut err);
            let _ = writeln!(err, "live_status: not a JSON event: {line}");
            continue;
        };
        let mut redraw = live;
        match s(&ev, "type") {
            "phase" => {
                st.phase = s(&ev, "phase").to_string();
                redraw = true;
            }
            "folder_found" => {
                // Before copying starts, the total grows as folders are scanned.
                st.total += u(&ev, "messages");
            }
            "folder_started" => st.folder = s(&ev, "folder").to_string(),
            "progress" => {
                st.folder = s(&ev, "folder").to_string();
                st.done = u(&ev, "overall_done");
                st.total = u(&ev, "overall_total");
                st.bytes = u(&ev, "overall_bytes");
            }
            "warning" | "error" => {
                st.clear(&mut err);
                let folder = ev["folder"]
                    .as_str()
                    .map(|f| format!(" [{f}]"))
                    .unwrap_or_default();
                let _ = writeln!(err, "{}{folder}: {}", s(&ev, "type"), s(&ev, "message"));
            }
            "summary" => {
                summary = Some(ev);
                continue;
            }
            _ => {}
        }
        if redraw && summary.is_none() {
            if !live {
                let _ = writeln!(err, "{}", st.line());
            } else {
                st.draw(&mut err);
            }
        }
    }
    st.clear(&mut err);
    match summary {
        Some(sum) => {
            let _ = writeln!(err, "{}", final_line(&sum));
            let code = sum["exit_code"].as_i64().unwrap_or(1);
            std::process::exit(i32::try_from(code).unwrap_or(1));
        }
        None => {
            let _ = writeln!(
                err,
                "live_status: the stream ended without a summary (btsx killed?)"
            );
            std::process::exit(2);
        }
    }
}
