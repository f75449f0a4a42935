//! The display for people, on stderr: live lines (`✓ → ✗ ⚠`), progress bars on a terminal,
//! and a summary table at the end. Off a terminal (or with NO_COLOR) it prints the same
//! lines plainly, with no bars and no color, and never drops a line.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use bytesize::ByteSize;
use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Sink;
use crate::event::{ConnState, Event, FolderStatus, Phase, RunStatus, Side, SkipReason, Summary};

#[derive(Debug, Clone, Copy)]
pub struct HumanOptions {
    /// Draw progress bars (stderr is a terminal and NO_COLOR is unset).
    pub bars: bool,
    pub color: bool,
    /// Only errors and the summary.
    pub quiet: bool,
    /// Show `detail` events.
    pub verbose: bool,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    folders: HashMap<String, ProgressBar>,
}

struct State {
    live: Option<Live>,
    found: u64,
    found_messages: u64,
    found_bytes: u64,
    /// Plain mode: last `done` printed per folder, to print every ~10 %.
    last_line: HashMap<String, u64>,
    skipped_present: HashMap<String, u64>,
    dry_run: bool,
}

pub struct HumanSink {
    opts: HumanOptions,
    state: Mutex<State>,
    ok: Style,
    arrow: Style,
    bad: Style,
    warn: Style,
    dim: Style,
    bold: Style,
}

impl HumanSink {
    pub fn new(opts: HumanOptions) -> HumanSink {
        let style = |s: Style| {
            if opts.color {
                s.force_styling(true)
            } else {
                Style::new()
            }
        };
        HumanSink {
            opts,
            state: Mutex::new(State {
                live: None,
                found: 0,
                found_messages: 0,
                found_bytes: 0,
                last_line: HashMap::new(),
                skipped_present: HashMap::new(),
                dry_run: false,
            }),
            ok: style(Style::new().green()),
            arrow: style(Style::new().blue()),
            bad: style(Style::new().red()),
            warn: style(Style::new().yellow()),
            dim: style(Style::new().dim()),
            bold: style(Style::new().bold()),
        }
    }

    fn line(&self, st: &State, text: String) {
        match &st.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    fn ok_line(&self, st: &State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(st, format!("{} {}", self.ok.apply_to("✓"), text.as_ref()));
        }
    }

    fn step_line(&self, st: &State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(
                st,
                format!("{} {}", self.arrow.apply_to("→"), text.as_ref()),
            );
        }
    }

    fn warn_line(&self, st: &State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(
                st,
                format!("{} Warning: {}", self.warn.apply_to("⚠"), text.as_ref()),
            );
        }
    }

    fn err_line(&self, st: &State, text: impl AsRef<str>) {
        self.line(st, format!("{} {}", self.bad.apply_to("✗"), text.as_ref()));
    }

    fn start_bars(&self, st: &mut State, total: u64) {
        if !self.opts.bars || self.opts.quiet || st.live.is_some() {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(overall_style("blue"));
        overall.enable_steady_tick(Duration::from_millis(200));
        overall.set_prefix("Total");
        st.live = Some(Live {
            multi,
            overall,
            folders: HashMap::new(),
        });
    }

    fn finish_bars(&self, st: &mut State, status: RunStatus) {
        if let Some(live) = st.live.take() {
            for (_, b) in live.folders {
                b.finish_and_clear();
            }
            let color = match status {
                RunStatus::Complete => "green",
                _ => "red",
            };
            live.overall.set_style(overall_style(color));
            live.overall.finish();
        }
    }

    fn summary(&self, st: &State, s: &Summary) {
        let mut out = String::new();
        let title = match s.status {
            RunStatus::Complete => self.ok.apply_to("Migration complete".to_string()),
            RunStatus::Partial => self
                .warn
                .apply_to("Migration finished with failures".to_string()),
            RunStatus::Interrupted => self.warn.apply_to("Migration interrupted".to_string()),
            RunStatus::Error => self
                .bad
                .apply_to("Migration stopped by an error".to_string()),
        };
        let secs = s.duration_ms as f64 / 1000.0;
        let mb_s = s.bytes_per_second / 1_000_000.0;
        out.push_str(&format!("\n{}\n", self.bold.apply_to(title)));
        out.push_str(&format!(
            "  Folders:        {}{}\n",
            s.folders,
            if s.folders_failed > 0 {
                format!(" ({} failed)", s.folders_failed)
            } else {
                String::new()
            }
        ));
        out.push_str(&format!(
            "  Messages:       {} copied, {} already present or skipped, {} failed (of {})\n",
            s.messages_copied, s.messages_skipped, s.messages_failed, s.messages_total
        ));
        if s.messages_altered > 0 {
            out.push_str(&format!(
                "  Kept on source: {} (the destination's copy differs; see above)\n",
                s.messages_altered
            ));
        }
        out.push_str(&format!("  Size:           {}\n", ByteSize(s.bytes_copied)));
        out.push_str(&format!(
            "  Duration:       {}\n",
            humantime::format_duration(Duration::from_millis(s.duration_ms - s.duration_ms % 100))
        ));
        out.push_str(&format!(
            "  Average speed:  {:.0} messages/min, {:.1} MB/s\n",
            s.messages_per_minute,
            if secs > 0.0 { mb_s } else { 0.0 }
        ));
        if s.reconnects_source + s.reconnects_destination > 0 {
            out.push_str(&format!(
                "  Reconnections:  {} source, {} destination\n",
                s.reconnects_source, s.reconnects_destination
            ));
        }
        if let Some(p) = &s.state_file {
            out.push_str(&format!("  State file:     {p}\n"));
        }
        if !s.per_folder.is_empty() {
            let w = s
                .per_folder
                .iter()
                .map(|f| console::measure_text_width(&f.folder))
                .max()
                .unwrap_or(6)
                .max(6);
            out.push_str(&format!(
                "\n  {:<w$}  {:>8}  {:>10}  Status\n",
                "Folder", "Messages", "Size"
            ));
            let mut rows = s.per_folder.clone();
            rows.sort_by(|a, b| a.folder.cmp(&b.folder));
            for f in rows {
                let status = match f.status {
                    FolderStatus::Complete => self.ok.apply_to("✓ complete".to_string()),
                    FolderStatus::Partial if f.altered > 0 => self.warn.apply_to(format!(
                        "⚠ partial ({} failed, {} kept: altered copy)",
                        f.failed, f.altered
                    )),
                    FolderStatus::Partial => self
                        .warn
                        .apply_to(format!("⚠ partial ({} failed)", f.failed)),
                    FolderStatus::Failed => self.bad.apply_to("✗ failed".to_string()),
                    FolderStatus::Interrupted => self.warn.apply_to("⚠ interrupted".to_string()),
                    FolderStatus::Pending => self.dim.apply_to("not started".to_string()),
                };
                let pad = w.saturating_sub(console::measure_text_width(&f.folder));
                out.push_str(&format!(
                    "  {}{}  {:>8}  {:>10}  {}\n",
                    f.folder,
                    " ".repeat(pad),
                    f.messages,
                    ByteSize(f.bytes).to_string(),
                    status
                ));
            }
        }
        if !s.failures.is_empty() {
            out.push_str("\n  Failed messages:\n");
            for f in s.failures.iter().take(50) {
                out.push_str(&format!(
                    "    {} UID {}{}: {}\n",
                    f.folder,
                    f.uid,
                    f.message_id
                        .as_ref()
                        .map(|m| format!(" {m}"))
                        .unwrap_or_default(),
                    f.reason
                ));
            }
            if s.failures.len() > 50 {
                out.push_str(&format!("    … and {} more\n", s.failures.len() - 50));
            }
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("\n  {} {e}\n", self.bad.apply_to("Error:")));
        }
        self.line(st, out.trim_end().to_string());
    }
}

fn overall_style(color: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{prefix:>12.bold}} [{{bar:40.{color}/white}}] {{percent:>3}}% {{pos}}/{{len}} msgs  {{msg}}  ETA {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn folder_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12.dim} [{bar:40.cyan/white}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "destination",
    }
}

impl Sink for HumanSink {
    fn emit(&self, event: &Event) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        match event {
            Event::Start {
                source,
                destination,
                jobs,
                state_file,
                dry_run,
                ..
            } => {
                st.dry_run = *dry_run;
                if !self.opts.quiet
                    && let (Some(source), Some(destination)) = (source, destination)
                {
                    self.line(
                        st,
                        format!(
                            "{} {}@{} → {}@{} ({jobs} parallel connection pairs{})",
                            self.bold.apply_to("btsx"),
                            source.user,
                            source.host,
                            destination.user,
                            destination.host,
                            if *dry_run { ", dry run" } else { "" }
                        ),
                    );
                }
                if !self.opts.quiet
                    && let Some(p) = state_file
                {
                    self.line(st, format!("  State file: {p}"));
                }
            }
            Event::Phase { phase } => match phase {
                Phase::ScanningFolders => {
                    // A scan redone after a reconnect counts afresh.
                    st.found = 0;
                    st.found_messages = 0;
                    st.found_bytes = 0;
                    self.step_line(st, "Scanning folders...")
                }
                Phase::CreatingFolders => {
                    let text = format!(
                        "Found {} folders ({} messages, {})",
                        st.found,
                        st.found_messages,
                        ByteSize(st.found_bytes)
                    );
                    self.ok_line(st, text);
                }
                Phase::CopyingMessages => {
                    let total = st.found_messages;
                    self.step_line(st, "Copying messages...");
                    self.start_bars(st, total);
                }
                Phase::Finalizing => self.step_line(st, "Finalizing..."),
                _ => {}
            },
            Event::Connection {
                side,
                state,
                host,
                reason,
            } => {
                let who = side_name(*side);
                match state {
                    ConnState::Connecting => {
                        self.step_line(st, format!("Connecting to {who} server: {host}"))
                    }
                    ConnState::Connected => {
                        self.ok_line(st, format!("Connected to {who} server: {host}"))
                    }
                    ConnState::Authenticated => {
                        self.ok_line(st, format!("Authenticated on {who} server: {host}"))
                    }
                    ConnState::Authenticating => {}
                    ConnState::Reconnecting => self.warn_line(
                        st,
                        format!(
                            "Connection to {who} server {host} lost ({}); reconnecting",
                            reason.as_deref().unwrap_or("unknown reason")
                        ),
                    ),
                    ConnState::Reconnected => {
                        self.ok_line(st, format!("Reconnected to {who} server: {host}"))
                    }
                    ConnState::Failed => self.err_line(
                        st,
                        format!(
                            "Connection to {who} server {host} failed: {}",
                            reason.as_deref().unwrap_or("unknown reason")
                        ),
                    ),
                }
            }
            Event::FolderFound {
                folder,
                destination,
                create,
                messages,
                bytes,
                ..
            } => {
                st.found += 1;
                st.found_messages += messages;
                st.found_bytes += bytes;
                if st.dry_run {
                    let what = if *create {
                        format!("Would create folder: {destination}")
                    } else {
                        format!("Folder exists: {destination}")
                    };
                    self.step_line(
                        st,
                        format!(
                            "{what} ← {folder}: {messages} messages ({}) to copy",
                            ByteSize(*bytes)
                        ),
                    );
                }
            }
            Event::FolderCreated { destination, .. } => {
                self.step_line(st, format!("Creating folder: {destination}"))
            }
            Event::FolderStarted {
                folder, messages, ..
            } => {
                if let Some(live) = &mut st.live {
                    let b = live.multi.add(ProgressBar::new(*messages));
                    b.set_style(folder_style());
                    b.set_prefix(truncate_name(folder, 12));
                    live.folders.insert(folder.clone(), b);
                } else {
                    st.last_line.insert(folder.clone(), 0);
                    self.step_line(st, format!("Copying messages from {folder} (0/{messages})"));
                }
            }
            Event::Progress {
                folder,
                done,
                total,
                overall_done,
                overall_bytes,
                ..
            } => {
                if let Some(live) = &st.live {
                    if let Some(b) = live.folders.get(folder) {
                        b.set_position(*done);
                    }
                    live.overall.set_position(*overall_done);
                    live.overall
                        .set_message(ByteSize(*overall_bytes).to_string());
                } else {
                    let last = st.last_line.get(folder).copied().unwrap_or(0);
                    let step = (total / 10).max(100);
                    if done - last.min(*done) >= step && done < total {
                        st.last_line.insert(folder.clone(), *done);
                        self.step_line(
                            st,
                            format!("Copying messages from {folder} ({done}/{total})"),
                        );
                    }
                }
            }
            Event::MessageSkipped {
                folder,
                uid,
                size,
                reason,
                ..
            } => match reason {
                SkipReason::SizeLimit => self.warn_line(
                    st,
                    format!(
                        "Message skipped due to size limit: {folder} UID {uid} ({})",
                        ByteSize(*size)
                    ),
                ),
                SkipReason::AlreadyPresent => {
                    *st.skipped_present.entry(folder.clone()).or_insert(0) += 1;
                }
            },
            Event::MessageFailed {
                folder,
                uid,
                message_id,
                reason,
            } => {
                let id = message_id
                    .as_ref()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default();
                self.err_line(
                    st,
                    format!("Error copying message: {folder} UID {uid}{id}: {reason}"),
                );
            }
            Event::MessageAltered {
                folder,
                uid,
                message_id,
                reason,
                ..
            } => {
                let id = message_id
                    .as_ref()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default();
                self.warn_line(
                    st,
                    format!("Altered copy: {folder} UID {uid}{id}: {reason}"),
                );
            }
            Event::FolderFinished {
                folder,
                status,
                copied,
                messages,
                failed,
                bytes,
                reason,
                altered,
                ..
            } => {
                if let Some(live) = &mut st.live
                    && let Some(b) = live.folders.remove(folder)
                {
                    b.finish_and_clear();
                }
                let present = st.skipped_present.remove(folder).unwrap_or(0);
                let mut extra = if present > 0 {
                    format!(", {present} already present")
                } else {
                    String::new()
                };
                if *altered > 0 {
                    extra.push_str(&format!(
                        ", {altered} kept on the source (the destination's copy differs)"
                    ));
                }
                match status {
                    FolderStatus::Complete if *messages > 0 => self.ok_line(
                        st,
                        format!(
                            "{folder}: {copied} messages copied ({}){extra}",
                            ByteSize(*bytes)
                        ),
                    ),
                    FolderStatus::Complete => {}
                    FolderStatus::Partial => self.warn_line(
                        st,
                        format!("{folder}: {copied} copied, {failed} failed{extra}"),
                    ),
                    FolderStatus::Failed => self.err_line(
                        st,
                        format!(
                            "Error copying folder {folder}: {}",
                            reason.as_deref().unwrap_or("failed")
                        ),
                    ),
                    FolderStatus::Interrupted | FolderStatus::Pending => self.warn_line(
                        st,
                        format!("{folder}: interrupted after {copied} of {messages} messages"),
                    ),
                }
            }
            Event::Warning { message, .. } => self.warn_line(st, message),
            Event::Error { message, .. } => self.err_line(st, format!("Error: {message}")),
            Event::Summary(s) => {
                self.finish_bars(st, s.status);
                if st.dry_run && s.status == RunStatus::Complete {
                    self.line(
                        st,
                        format!(
                            "\nDry run: nothing was changed. {} folders, {} messages, {} would be copied.",
                            s.folders,
                            s.messages_total,
                            ByteSize(s.per_folder.iter().map(|f| f.bytes).sum::<u64>())
                        ),
                    );
                } else {
                    self.summary(st, s);
                }
            }
            Event::BatchSummary(_) => {}
            Event::Detail { side, message } => {
                if self.opts.verbose {
                    let who = side
                        .map(|s| format!("{}: ", side_name(s)))
                        .unwrap_or_default();
                    self.line(
                        st,
                        format!("  {}", self.dim.apply_to(format!("{who}{message}"))),
                    );
                }
            }
            Event::VerifyFolder {
                folder,
                destination,
                source_messages,
                missing,
                extra,
                missing_messages,
                altered,
                ..
            } => {
                if *altered > 0 {
                    self.err_line(
                        st,
                        format!("{folder} → {destination}: the destination altered {altered} of its copies (listed above)"),
                    );
                }
                if *missing == 0 {
                    self.ok_line(
                        st,
                        format!(
                            "{folder} → {destination}: all {source_messages} messages present{}",
                            if *extra > 0 {
                                format!(", {extra} extra in the destination")
                            } else {
                                String::new()
                            }
                        ),
                    );
                } else {
                    self.err_line(
                        st,
                        format!("{folder} → {destination}: {missing} of {source_messages} messages missing in the destination{}",
                            if *extra > 0 { format!(", {extra} extra") } else { String::new() }),
                    );
                    for m in missing_messages.iter().take(5) {
                        self.line(
                            st,
                            format!(
                                "    missing: UID {} {} ({})",
                                m.uid,
                                m.message_id.as_deref().unwrap_or("(no Message-ID)"),
                                ByteSize(m.size)
                            ),
                        );
                    }
                }
            }
            Event::VerifySummary(v) => {
                let text = match v.status {
                    crate::event::VerifyStatus::Ok => self.ok.apply_to(format!(
                        "Verified: the destination holds all {} source messages in {} folders",
                        v.source_messages, v.folders
                    )),
                    crate::event::VerifyStatus::Mismatch => self.bad.apply_to(format!(
                        "Mismatch: {} of {} source messages are missing in the destination{}",
                        v.missing,
                        v.source_messages,
                        if v.altered > 0 {
                            format!(", {} copies differ from the source", v.altered)
                        } else {
                            String::new()
                        }
                    )),
                    crate::event::VerifyStatus::Error => self.bad.apply_to(format!(
                        "Verify stopped by an error: {}",
                        v.error.as_deref().unwrap_or("unknown")
                    )),
                };
                self.line(st, format!("\n{text}"));
                if v.status != crate::event::VerifyStatus::Error {
                    self.line(
                        st,
                        format!(
                            "  Source is clean: {}",
                            if v.source_clean {
                                "yes (no source message is also in the destination)"
                            } else {
                                "no (source messages are still there)"
                            }
                        ),
                    );
                }
            }
        }
    }
}

fn truncate_name(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
