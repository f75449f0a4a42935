//! The display for `btsx batch`: one line per account event that matters, a periodic overall
//! line at most every 10 s (accounts done/total, messages, percent, bytes, rate, ETA), and a
//! per-account table at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use console::Style;

use super::{Sink, bytes, rate};
use crate::event::{Event, RunStatus};

#[derive(Default)]
struct Account {
    done: u64,
    total: u64,
    bytes: u64,
}

struct State {
    accounts_total: usize,
    finished: usize,
    running: BTreeMap<String, Account>,
    finished_messages: u64,
    finished_bytes: u64,
    started: Instant,
    last_line: Instant,
}

pub struct BatchView {
    quiet: bool,
    state: Mutex<State>,
    out: Mutex<Box<dyn Write + Send>>,
    /// The command that continues an unfinished batch, for its summary.
    resume: Option<String>,
    ok: Style,
    bad: Style,
    warn: Style,
    arrow: Style,
}

impl BatchView {
    /// The display on stderr.
    pub fn new(accounts_total: usize, color: bool, quiet: bool) -> Arc<BatchView> {
        BatchView::with_writer(accounts_total, color, quiet, std::io::stderr())
    }

    /// The display on any writer.
    pub fn with_writer(
        accounts_total: usize,
        color: bool,
        quiet: bool,
        out: impl Write + Send + 'static,
    ) -> Arc<BatchView> {
        let style = |s: Style| {
            if color {
                s.force_styling(true)
            } else {
                Style::new()
            }
        };
        Arc::new(BatchView {
            quiet,
            out: Mutex::new(Box::new(out)),
            resume: None,
            state: Mutex::new(State {
                accounts_total,
                finished: 0,
                running: BTreeMap::new(),
                finished_messages: 0,
                finished_bytes: 0,
                started: Instant::now(),
                last_line: Instant::now(),
            }),
            ok: style(Style::new().green()),
            bad: style(Style::new().red()),
            warn: style(Style::new().yellow()),
            arrow: style(Style::new().blue()),
        })
    }

    /// Ends an unfinished batch's summary with `command` (set before the run starts).
    pub fn with_resume(self: Arc<Self>, command: String) -> Arc<BatchView> {
        match Arc::try_unwrap(self) {
            Ok(mut v) => {
                v.resume = Some(command);
                Arc::new(v)
            }
            Err(shared) => shared,
        }
    }

    /// The sink one account's engine reports to.
    pub fn sink_for(self: &Arc<Self>, job: &str) -> Arc<dyn Sink> {
        Arc::new(JobSink {
            view: self.clone(),
            job: job.to_string(),
        })
    }

    /// A closed or broken stderr must not stop the batch: write errors are ignored.
    fn line(&self, text: String) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }

    fn overall(&self, st: &State) -> String {
        let done: u64 = st.finished_messages + st.running.values().map(|a| a.done).sum::<u64>();
        let total: u64 = st.finished_messages + st.running.values().map(|a| a.total).sum::<u64>();
        let size: u64 = st.finished_bytes + st.running.values().map(|a| a.bytes).sum::<u64>();
        let secs = st.started.elapsed().as_secs_f64().max(0.1);
        let per_second = done as f64 / secs;
        let eta = if per_second > 0.0 && total > done {
            let left = Duration::from_secs(((total - done) as f64 / per_second) as u64);
            format!(", ETA {}", humantime::format_duration(left))
        } else {
            String::new()
        };
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        format!(
            "Accounts {}/{} done, {} running; messages {done}/{total} ({percent}%); {}, {}; {:.1} msg/s{eta}",
            st.finished,
            st.accounts_total,
            st.running.len(),
            bytes(size),
            rate(size as f64 / secs),
            per_second
        )
    }

    fn on(&self, job: &str, event: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Start { .. } => {
                st.running.insert(job.to_string(), Account::default());
                if !self.quiet {
                    self.line(format!("{} [{job}] started", self.arrow.apply_to("→")));
                }
            }
            Event::FolderFound { messages, .. } => {
                st.running.entry(job.to_string()).or_default().total += messages;
            }
            Event::Progress {
                overall_done,
                overall_bytes,
                ..
            } => {
                let a = st.running.entry(job.to_string()).or_default();
                a.done = *overall_done;
                a.bytes = *overall_bytes;
                if !self.quiet && st.last_line.elapsed() >= Duration::from_secs(10) {
                    st.last_line = Instant::now();
                    let text = self.overall(&st);
                    self.line(format!("{} {text}", self.arrow.apply_to("→")));
                }
            }
            Event::Warning { message, .. } if !self.quiet => {
                self.line(format!(
                    "{} [{job}] Warning: {message}",
                    self.warn.apply_to("⚠")
                ));
            }
            Event::ConnectionsReduced {
                side,
                host,
                from,
                to,
                reason,
            } if !self.quiet => {
                self.line(format!(
                    "{} [{job}] Warning: {}",
                    self.warn.apply_to("⚠"),
                    super::human::fewer_connections(*side, host, *from, *to, reason)
                ));
            }
            // Fatal errors repeat in the account's summary line; folder errors do not.
            Event::Error {
                message,
                folder: Some(_),
                ..
            } => {
                self.line(format!(
                    "{} [{job}] Error: {message}",
                    self.bad.apply_to("✗")
                ));
            }
            Event::MessageFailed {
                folder,
                uid,
                reason,
                ..
            } => {
                self.line(format!(
                    "{} [{job}] Error copying message: {folder} UID {uid}: {reason}",
                    self.bad.apply_to("✗")
                ));
            }
            Event::MessageAltered {
                folder,
                uid,
                reason,
                ..
            } => {
                self.line(format!(
                    "{} [{job}] Altered copy: {folder} UID {uid}: {reason}",
                    self.warn.apply_to("⚠")
                ));
            }
            Event::Summary(s) => {
                st.running.remove(job);
                st.finished += 1;
                st.finished_messages += s.messages_total;
                st.finished_bytes += s.bytes_copied;
                let text = match s.status {
                    RunStatus::Complete => format!(
                        "{} [{job}] complete: {} messages copied ({}) in {}",
                        self.ok.apply_to("✓"),
                        s.messages_copied,
                        bytes(s.bytes_copied),
                        humantime::format_duration(Duration::from_secs(s.duration_ms / 1000))
                    ),
                    RunStatus::Partial => format!(
                        "{} [{job}] finished with {} failed messages{}",
                        self.warn.apply_to("⚠"),
                        s.messages_failed,
                        if s.messages_altered > 0 {
                            format!(
                                ", {} kept on the source (the destination's copy differs)",
                                s.messages_altered
                            )
                        } else {
                            String::new()
                        }
                    ),
                    RunStatus::Interrupted => {
                        format!("{} [{job}] interrupted", self.warn.apply_to("⚠"))
                    }
                    RunStatus::Error => format!(
                        "{} [{job}] failed: {}",
                        self.bad.apply_to("✗"),
                        s.error.as_deref().unwrap_or("error")
                    ),
                };
                self.line(text);
            }
            _ => {}
        }
    }
}

struct JobSink {
    view: Arc<BatchView>,
    job: String,
}

impl Sink for JobSink {
    fn emit(&self, event: &Event) {
        self.view.on(&self.job, event);
    }
}

/// Events of the batch itself (bad rows, the final summary).
impl Sink for BatchView {
    fn emit(&self, event: &Event) {
        match event {
            Event::Error { message, .. } => {
                self.line(format!("{} {message}", self.bad.apply_to("✗")));
            }
            Event::Warning { message, .. } if !self.quiet => {
                self.line(format!("{} Warning: {message}", self.warn.apply_to("⚠")));
            }
            Event::BatchSummary(b) => {
                let mut out = String::new();
                let title = match b.status {
                    RunStatus::Complete => self.ok.apply_to("Batch complete".to_string()),
                    RunStatus::Interrupted => self.warn.apply_to("Batch interrupted".to_string()),
                    _ => self
                        .bad
                        .apply_to("Batch finished with failed accounts".to_string()),
                };
                out.push_str(&format!("\n{title}\n"));
                out.push_str(&format!(
                    "  Accounts: {} complete, {} failed (of {}){}\n",
                    b.complete,
                    b.failed,
                    b.accounts,
                    if b.bad_rows.is_empty() {
                        String::new()
                    } else {
                        format!(", {} unusable rows", b.bad_rows.len())
                    }
                ));
                out.push_str(&format!(
                    "  Messages: {} copied, {}; duration {}\n",
                    b.messages_copied,
                    bytes(b.bytes_copied),
                    humantime::format_duration(Duration::from_secs(b.duration_ms / 1000))
                ));
                let w = b
                    .per_account
                    .iter()
                    .map(|a| console::measure_text_width(&a.job))
                    .max()
                    .unwrap_or(7)
                    .max(7);
                out.push_str(&format!(
                    "\n  {:<w$}  {:<11}  {:>8}  {:>10}  {:>8}  Failures\n",
                    "Account", "Status", "Messages", "Size", "Duration"
                ));
                for a in &b.per_account {
                    let status = serde_json::to_value(a.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let pad = w.saturating_sub(console::measure_text_width(&a.job));
                    out.push_str(&format!(
                        "  {}{}  {:<11}  {:>8}  {:>10}  {:>8}  {}\n",
                        a.job,
                        " ".repeat(pad),
                        status,
                        a.messages_copied,
                        bytes(a.bytes_copied),
                        humantime::format_duration(Duration::from_secs(a.duration_ms / 1000))
                            .to_string(),
                        match (&a.error, a.messages_failed) {
                            (Some(e), _) => e.clone(),
                            (None, 0) => String::new(),
                            (None, n) => format!("{n} messages"),
                        }
                    ));
                }
                for r in &b.bad_rows {
                    out.push_str(&format!("  line {}: {}\n", r.line, r.message));
                }
                if b.status != RunStatus::Complete
                    && let Some(cmd) = &self.resume
                {
                    out.push_str(&format!(
                        "\nResume with: {cmd}\n  (or one account: btsx migrate --resume STATE_FILE)\n"
                    ));
                }
                self.line(out.trim_end().to_string());
            }
            _ => {}
        }
    }
}
