//! The display for people, on stderr: live lines (`✓ → ✗ ⚠`), progress bars on a terminal,
//! and a summary table at the end. Off a terminal it prints the same lines plainly, with no
//! bars, never drops a line, and reports overall progress at a bounded rate (a cron log stays
//! small). Color only when [`HumanOptions::color`] says so (see [`super::display`]).
//!
//! An early error (nothing was looked at yet: the command line, a password, a server that
//! cannot be reached) is one line; the header and connection steps held back until the run
//! gets going are then dropped.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Sink, bytes, rate, resume_command};
use crate::event::{
    ConnState, Event, FolderStatus, Phase, RunStatus, Side, SkipReason, Summary, VerifyStatus,
};

#[derive(Debug, Clone, Copy)]
pub struct HumanOptions {
    /// Draw progress bars (stderr is a terminal that is not TERM=dumb).
    pub bars: bool,
    /// SGR sequences (color, bold, dim) in lines and bars.
    pub color: bool,
    /// Only errors and the summary.
    pub quiet: bool,
    /// Show `detail` events.
    pub verbose: bool,
    /// Terminal columns, for folder labels on the bars.
    pub width: usize,
    /// Off a terminal: at most one overall progress line per this interval.
    pub progress_every: Duration,
}

impl HumanOptions {
    pub fn new(bars: bool, color: bool, quiet: bool, verbose: bool) -> HumanOptions {
        HumanOptions {
            bars,
            color,
            quiet,
            verbose,
            width: usize::from(console::Term::stderr().size().1),
            progress_every: Duration::from_secs(10),
        }
    }
}

/// Where time comes from (tests pass a fixed clock, so ETAs are reproducible).
pub type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    folders: HashMap<String, ProgressBar>,
}

struct State {
    out: Box<dyn Write + Send>,
    live: Option<Live>,
    /// Lines held back until the run gets going (header, connection steps, warnings: is the
    /// line a warning); `None` once it has.
    pending: Option<Vec<(bool, String)>>,
    /// On a terminal, while lines are held back: something moves.
    spinner: Option<ProgressBar>,
    /// The last fatal error shown, so the summary does not repeat it.
    shown_error: Option<String>,
    found: u64,
    found_messages: u64,
    found_bytes: u64,
    /// Plain mode: when copying started, and the last overall progress line.
    copy_started: Option<Instant>,
    last_progress: Option<Instant>,
    skipped_present: HashMap<String, u64>,
    dry_run: bool,
}

pub struct HumanSink {
    opts: HumanOptions,
    state: Mutex<State>,
    clock: Clock,
    /// Bars draw on stderr; a sink writing elsewhere (tests) keeps them hidden.
    bars_on_stderr: bool,
    ok: Style,
    arrow: Style,
    bad: Style,
    warn: Style,
    dim: Style,
    bold: Style,
}

impl HumanSink {
    /// The display on stderr.
    pub fn new(opts: HumanOptions) -> HumanSink {
        let mut s = HumanSink::with_writer(opts, std::io::stderr(), Box::new(Instant::now));
        s.bars_on_stderr = true;
        s
    }

    /// The display on any writer, with its own clock. Bars (when `opts.bars`) are kept but
    /// not drawn; lines come out as on a terminal.
    pub fn with_writer(
        opts: HumanOptions,
        out: impl Write + Send + 'static,
        clock: Clock,
    ) -> HumanSink {
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
                out: Box::new(out),
                live: None,
                pending: Some(Vec::new()),
                spinner: None,
                shown_error: None,
                found: 0,
                found_messages: 0,
                found_bytes: 0,
                copy_started: None,
                last_progress: None,
                skipped_present: HashMap::new(),
                dry_run: false,
            }),
            clock,
            bars_on_stderr: false,
            ok: style(Style::new().green()),
            arrow: style(Style::new().blue()),
            bad: style(Style::new().red()),
            warn: style(Style::new().yellow()),
            dim: style(Style::new().dim()),
            bold: style(Style::new().bold()),
        }
    }

    /// Writes a line now: through the bars on a terminal, else straight out. A closed or
    /// broken stderr must not stop the run, so write errors are ignored.
    fn write(&self, st: &mut State, text: &str) {
        if let Some(live) = &st.live
            && self.bars_on_stderr
        {
            let _ = live.multi.println(text);
            return;
        }
        if let Some(sp) = &st.spinner {
            sp.suspend(|| {
                let _ = writeln!(st.out, "{text}");
            });
            return;
        }
        let _ = writeln!(st.out, "{text}");
    }

    fn line(&self, st: &mut State, text: String) {
        self.held_or_written(st, false, text);
    }

    fn held_or_written(&self, st: &mut State, warning: bool, text: String) {
        match &mut st.pending {
            Some(p) => p.push((warning, text)),
            None => self.write(st, &text),
        }
    }

    /// The run got going: what was held back comes out, in order.
    fn begin(&self, st: &mut State) {
        if let Some(sp) = st.spinner.take() {
            sp.finish_and_clear();
        }
        if let Some(held) = st.pending.take() {
            for (_, text) in held {
                self.write(st, &text);
            }
        }
    }

    /// An early error: the held warnings, then the one line.
    fn early_error(&self, st: &mut State, message: &str) {
        if let Some(sp) = st.spinner.take() {
            sp.finish_and_clear();
        }
        let held = st.pending.take().unwrap_or_default();
        for (_, text) in held.into_iter().filter(|(w, _)| *w) {
            self.write(st, &text);
        }
        let text = format!("{} {message}", self.bad.apply_to("error:"));
        self.write(st, &text);
    }

    fn ok_line(&self, st: &mut State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(st, format!("{} {}", self.ok.apply_to("✓"), text.as_ref()));
        }
    }

    fn step_line(&self, st: &mut State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(
                st,
                format!("{} {}", self.arrow.apply_to("→"), text.as_ref()),
            );
        }
    }

    fn warn_line(&self, st: &mut State, text: impl AsRef<str>) {
        if !self.opts.quiet {
            let text = format!("{} Warning: {}", self.warn.apply_to("⚠"), text.as_ref());
            self.held_or_written(st, true, text);
        }
    }

    fn err_line(&self, st: &mut State, text: impl AsRef<str>) {
        self.line(st, format!("{} {}", self.bad.apply_to("✗"), text.as_ref()));
    }

    /// Bars: 30 columns on a wide terminal, 20 on a narrow one.
    fn bar_width(&self) -> usize {
        if self.opts.width >= 100 { 30 } else { 20 }
    }

    /// Folder labels on the bars: as wide as the terminal allows beside the bar and the
    /// overall line's counters (so that line does not wrap).
    fn label_width(&self) -> usize {
        self.opts
            .width
            .saturating_sub(self.bar_width() + 45)
            .clamp(10, 40)
    }

    fn start_bars(&self, st: &mut State, total: u64) {
        if !self.opts.bars || self.opts.quiet || st.live.is_some() {
            return;
        }
        let target = if self.bars_on_stderr {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(self.overall_style(true));
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
            live.overall
                .set_style(self.overall_style(status == RunStatus::Complete));
            live.overall.finish();
        }
    }

    /// Bar templates carry no style at all without color (indicatif would color them on a
    /// terminal whatever `--color` says).
    fn overall_style(&self, good: bool) -> ProgressStyle {
        let (w, b) = (self.label_width(), self.bar_width());
        let template = if self.opts.color {
            let color = if good { "green" } else { "red" };
            format!(
                "{{prefix:>{w}.bold}} [{{bar:{b}.{color}/white}}] {{percent:>3}}% {{pos}}/{{len}} msgs  {{msg}}  ETA {{eta}}"
            )
        } else {
            format!(
                "{{prefix:>{w}}} [{{bar:{b}}}] {{percent:>3}}% {{pos}}/{{len}} msgs  {{msg}}  ETA {{eta}}"
            )
        };
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn folder_style(&self) -> ProgressStyle {
        let (w, b) = (self.label_width(), self.bar_width());
        let template = if self.opts.color {
            format!("{{prefix:>{w}.dim}} [{{bar:{b}.cyan/white}}] {{pos}}/{{len}} {{msg}}")
        } else {
            format!("{{prefix:>{w}}} [{{bar:{b}}}] {{pos}}/{{len}} {{msg}}")
        };
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Off a terminal: one line with the folder and the whole run's progress, at most every
    /// `progress_every`.
    #[allow(clippy::too_many_arguments)]
    fn progress_line(
        &self,
        st: &mut State,
        folder: &str,
        done: u64,
        total: u64,
        overall_done: u64,
        overall_total: u64,
        overall_bytes: u64,
    ) {
        let now = (self.clock)();
        if st
            .last_progress
            .is_some_and(|t| now.saturating_duration_since(t) < self.opts.progress_every)
        {
            return;
        }
        st.last_progress = Some(now);
        let percent = (overall_done * 100)
            .checked_div(overall_total)
            .unwrap_or(100);
        let elapsed = st
            .copy_started
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        let eta = if elapsed >= 1.0 && overall_done > 0 && overall_total > overall_done {
            let left = (overall_total - overall_done) as f64 * elapsed / overall_done as f64;
            format!(
                ", ETA {}",
                humantime::format_duration(Duration::from_secs(left.round() as u64))
            )
        } else {
            String::new()
        };
        self.step_line(
            st,
            format!(
                "{folder} {done}/{total}; total {overall_done}/{overall_total} messages ({percent}%), {}{eta}",
                bytes(overall_bytes)
            ),
        );
    }

    fn summary(&self, st: &mut State, s: &Summary) {
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
        out.push_str(&format!("  Size:           {}\n", bytes(s.bytes_copied)));
        out.push_str(&format!(
            "  Duration:       {}\n",
            // Tenths of a second for short runs; whole seconds beyond ten.
            humantime::format_duration(Duration::from_millis(if s.duration_ms >= 10_000 {
                (s.duration_ms + 500) / 1000 * 1000
            } else {
                s.duration_ms - s.duration_ms % 100
            }))
        ));
        out.push_str(&format!(
            "  Average speed:  {:.0} messages/min, {}\n",
            s.messages_per_minute,
            rate(s.bytes_per_second)
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
            let mut rows: Vec<(String, &crate::event::FolderReport)> = s
                .per_folder
                .iter()
                .map(|f| (label(&f.folder, &f.destination), f))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let w = rows
                .iter()
                .map(|(l, _)| console::measure_text_width(l))
                .max()
                .unwrap_or(6)
                .max(6);
            out.push_str(&format!(
                "\n  {:<w$}  {:>8}  {:>10}  Status\n",
                "Folder", "Messages", "Size"
            ));
            for (l, f) in rows {
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
                let pad = w.saturating_sub(console::measure_text_width(&l));
                out.push_str(&format!(
                    "  {l}{}  {:>8}  {:>10}  {status}\n",
                    " ".repeat(pad),
                    f.messages,
                    bytes(f.bytes),
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
        if let Some(e) = &s.error
            && st.shown_error.as_deref() != Some(e.as_str())
        {
            out.push_str(&format!("\n  {} {e}\n", self.bad.apply_to("Error:")));
        }
        // Anything short of complete ends with the command that goes on.
        if s.status != RunStatus::Complete
            && let Some(p) = &s.state_file
        {
            out.push_str(&format!("\nResume with: {}\n", resume_command(p)));
        }
        self.line(st, out.trim_end().to_string());
    }
}

/// A `connections_reduced` event for people (after "⚠ Warning: ").
pub(crate) fn fewer_connections(
    side: Side,
    host: &str,
    from: usize,
    to: usize,
    reason: &str,
) -> String {
    format!(
        "Using {to} connection {} instead of {from}: the {} server {host} asked ({reason})",
        if to == 1 { "pair" } else { "pairs" },
        side.label()
    )
}

/// The naming rule: the source's name, and "→ destination" where the two differ.
pub fn label(source: &str, destination: &str) -> String {
    if source == destination {
        source.to_string()
    } else {
        format!("{source} → {destination}")
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "destination",
    }
}

fn truncate_name(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl Sink for HumanSink {
    fn emit(&self, event: &Event) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        // Work has started: nothing is an early error any more.
        if matches!(
            event,
            Event::Phase {
                phase: Phase::ScanningFolders
            } | Event::FolderFound { .. }
                | Event::FolderStarted { .. }
                | Event::VerifyFolder { .. }
        ) {
            self.begin(st);
        }
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
                    if self.opts.bars && self.bars_on_stderr && st.pending.is_some() {
                        let sp = ProgressBar::new_spinner();
                        sp.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
                        sp.set_message(format!(
                            "Connecting to {} and {}…",
                            source.host, destination.host
                        ));
                        sp.enable_steady_tick(Duration::from_millis(120));
                        st.spinner = Some(sp);
                    }
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
                        bytes(st.found_bytes)
                    );
                    self.ok_line(st, text);
                }
                Phase::CopyingMessages => {
                    let total = st.found_messages;
                    st.copy_started = Some((self.clock)());
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
                    // Before the run gets going a retry is part of connecting: the spinner
                    // says so, and an early error stays one line.
                    ConnState::Reconnecting if st.pending.is_some() => {
                        if let Some(sp) = &st.spinner {
                            sp.set_message(format!(
                                "Connecting to {who} server {host} again ({})…",
                                reason.as_deref().unwrap_or("unknown reason")
                            ));
                        }
                    }
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
                bytes: size,
                ..
            } => {
                st.found += 1;
                st.found_messages += messages;
                st.found_bytes += size;
                if st.dry_run {
                    let what = if *create {
                        "would be created"
                    } else {
                        "exists"
                    };
                    self.step_line(
                        st,
                        format!(
                            "{}: {what}; {messages} messages ({}) to copy",
                            label(folder, destination),
                            bytes(*size)
                        ),
                    );
                }
            }
            Event::FolderCreated {
                folder,
                destination,
            } => self.step_line(
                st,
                format!("Creating folder: {}", label(folder, destination)),
            ),
            Event::FlagsSynced {
                folder,
                destination,
                updated,
            } => self.step_line(
                st,
                format!(
                    "Flags brought in line: {updated} messages in {}",
                    label(folder, destination)
                ),
            ),
            Event::ConnectionsReduced {
                side,
                host,
                from,
                to,
                reason,
            } => self.warn_line(st, fewer_connections(*side, host, *from, *to, reason)),
            Event::FolderStarted {
                folder,
                destination,
                messages,
                ..
            } => {
                let name = label(folder, destination);
                let w = self.label_width();
                let style = self.folder_style();
                if let Some(live) = &mut st.live {
                    let b = live.multi.add(ProgressBar::new(*messages));
                    b.set_style(style);
                    b.set_prefix(truncate_name(&name, w));
                    live.folders.insert(folder.clone(), b);
                } else {
                    self.step_line(st, format!("Copying {name} ({messages} messages)"));
                }
            }
            Event::Progress {
                folder,
                done,
                total,
                overall_done,
                overall_total,
                overall_bytes,
                ..
            } => {
                if let Some(live) = &st.live {
                    if let Some(b) = live.folders.get(folder) {
                        b.set_position(*done);
                    }
                    live.overall.set_position(*overall_done);
                    live.overall.set_message(bytes(*overall_bytes));
                } else if !self.opts.quiet {
                    self.progress_line(
                        st,
                        folder,
                        *done,
                        *total,
                        *overall_done,
                        *overall_total,
                        *overall_bytes,
                    );
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
                        bytes(*size)
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
                destination,
                status,
                copied,
                messages,
                failed,
                bytes: size,
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
                let name = label(folder, destination);
                if *altered > 0 {
                    extra.push_str(&format!(
                        ", {altered} kept on the source (the destination's copy differs)"
                    ));
                }
                match status {
                    FolderStatus::Complete if *messages > 0 => self.ok_line(
                        st,
                        format!("{name}: {copied} messages copied ({}){extra}", bytes(*size)),
                    ),
                    FolderStatus::Complete => {}
                    FolderStatus::Partial => self.warn_line(
                        st,
                        format!("{name}: {copied} copied, {failed} failed{extra}"),
                    ),
                    FolderStatus::Failed => self.err_line(
                        st,
                        format!(
                            "Error copying folder {name}: {}",
                            reason.as_deref().unwrap_or("failed")
                        ),
                    ),
                    FolderStatus::Interrupted | FolderStatus::Pending => self.warn_line(
                        st,
                        format!("{name}: interrupted after {copied} of {messages} messages"),
                    ),
                }
            }
            Event::Warning { message, .. } => self.warn_line(st, message),
            Event::Error {
                message, folder, ..
            } => {
                if folder.is_none() {
                    st.shown_error = Some(message.clone());
                }
                self.err_line(st, format!("Error: {message}"))
            }
            Event::Summary(s) => {
                if st.pending.is_some() && s.status == RunStatus::Error {
                    let message = s.error.clone().or(st.shown_error.clone());
                    self.early_error(st, message.as_deref().unwrap_or("stopped"));
                    return;
                }
                self.begin(st);
                self.finish_bars(st, s.status);
                if st.dry_run && s.status == RunStatus::Complete {
                    let text = format!(
                        "\nDry run: nothing was changed. {} folders, {} messages, {} would be copied.",
                        s.folders,
                        s.messages_total,
                        bytes(s.per_folder.iter().map(|f| f.bytes).sum::<u64>())
                    );
                    self.line(st, text);
                } else {
                    self.summary(st, s);
                }
            }
            Event::BatchSummary(b) => {
                // Only a batch that could not start reaches this display.
                if st.pending.is_some() && b.status == RunStatus::Error {
                    let message = st.shown_error.clone();
                    self.early_error(st, message.as_deref().unwrap_or("stopped"));
                }
            }
            Event::Views {
                views,
                all_mail,
                all_mail_destination,
                archived_messages,
                archived_bytes,
                not_copied,
                ..
            } => {
                let mut parts = Vec::new();
                if !views.is_empty() {
                    parts.push(format!(
                        "views: {} (not copied as folders; their flags travel with the messages)",
                        views.join(", ")
                    ));
                }
                if let (Some(all), Some(n)) = (all_mail, archived_messages) {
                    parts.push(format!(
                        "{all}: {n} archived messages ({}) to copy → {}",
                        bytes(archived_bytes.unwrap_or(0)),
                        all_mail_destination.as_deref().unwrap_or(all)
                    ));
                }
                if !not_copied.is_empty() {
                    parts.push(format!(
                        "not copied into the destination's views: {}",
                        not_copied.join(", ")
                    ));
                }
                self.step_line(st, parts.join("; "));
            }
            Event::Detail { side, message } => {
                if self.opts.verbose {
                    let who = side
                        .map(|s| format!("{}: ", side_name(s)))
                        .unwrap_or_default();
                    let text = format!("  {}", self.dim.apply_to(format!("{who}{message}")));
                    self.line(st, text);
                }
            }
            Event::VerifyFolder {
                folder,
                destination,
                source_messages,
                missing,
                extra,
                missing_messages,
                flags_differ,
                date_differ,
                differing_messages,
                altered,
                ..
            } => {
                let name = label(folder, destination);
                if *altered > 0 {
                    self.err_line(
                        st,
                        format!(
                            "{name}: the destination altered {altered} of its copies (listed above)"
                        ),
                    );
                }
                if *flags_differ > 0 || *date_differ > 0 {
                    self.err_line(
                        st,
                        format!(
                            "{name}: {flags_differ} messages with other flags, {date_differ} with another date"
                        ),
                    );
                    for m in differing_messages.iter().take(5) {
                        self.line(
                            st,
                            format!(
                                "    differs: UID {} {}: flags ({}) on the source, ({}) on the destination{}",
                                m.uid,
                                m.message_id.as_deref().unwrap_or("(no Message-ID)"),
                                m.source_flags.join(" "),
                                m.destination_flags.join(" "),
                                if m.date_differs { "; another date" } else { "" }
                            ),
                        );
                    }
                }
                if *missing == 0 {
                    self.ok_line(
                        st,
                        format!(
                            "{name}: all {source_messages} messages present{}",
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
                        format!("{name}: {missing} of {source_messages} messages missing in the destination{}",
                            if *extra > 0 { format!(", {extra} extra") } else { String::new() }),
                    );
                    for m in missing_messages.iter().take(5) {
                        let text = format!(
                            "    missing: UID {} {} ({})",
                            m.uid,
                            m.message_id.as_deref().unwrap_or("(no Message-ID)"),
                            bytes(m.size)
                        );
                        self.line(st, text);
                    }
                }
            }
            Event::VerifySummary(v) => {
                if st.pending.is_some() && v.status == VerifyStatus::Error {
                    let message = v.error.clone().or(st.shown_error.clone());
                    self.early_error(st, message.as_deref().unwrap_or("stopped"));
                    return;
                }
                self.begin(st);
                let text = match v.status {
                    VerifyStatus::Ok => self.ok.apply_to(format!(
                        "Verified: the destination holds all {} source messages in {} folders",
                        v.source_messages, v.folders
                    )),
                    VerifyStatus::Mismatch => self.bad.apply_to(format!(
                        "Mismatch: of {} source messages, {} are missing in the destination, {} have other flags, {} another date{}",
                        v.source_messages,
                        v.missing,
                        v.flags_differ,
                        v.date_differ,
                        if v.altered > 0 {
                            format!(", {} copies differ from the source", v.altered)
                        } else {
                            String::new()
                        }
                    )),
                    VerifyStatus::Partial => self.bad.apply_to(format!(
                        "Incomplete: {} folders could not be verified; nothing is missing in the {} compared",
                        v.folders_failed, v.folders
                    )),
                    VerifyStatus::Error => self.bad.apply_to(format!(
                        "Verify stopped by an error: {}",
                        v.error.as_deref().unwrap_or("unknown")
                    )),
                };
                self.line(st, format!("\n{text}"));
                if v.status != VerifyStatus::Error {
                    let text = format!(
                        "  Source is clean: {}",
                        if v.source_clean {
                            "yes (no source message is also in the destination)"
                        } else {
                            "no (source messages are still there)"
                        }
                    );
                    self.line(st, text);
                }
            }
        }
        let _ = st.out.flush();
    }
}
