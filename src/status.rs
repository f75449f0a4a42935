//! `btsx status FILE|DIR`: what a job, or every job in a state directory, has done so far.
//! The exit code answers "is it done?" (src/exit.rs); `--json` prints only the fields
//! documented in docs/events.md ("btsx status --json").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::StatusArgs;
use crate::event::FORMAT_VERSION;
use crate::exit::{self, Failure};
use crate::render::{bytes, print_then, resume_command};
use crate::state;

/// What a job is doing: the lock tells whether a run holds it; a saved "running" without
/// the lock is a run that died (kill -9, reboot).
fn job_status(path: &Path, saved: state::JobStatus) -> &'static str {
    if state::is_locked(path) {
        return "running";
    }
    match saved {
        state::JobStatus::Running | state::JobStatus::Interrupted => "interrupted",
        state::JobStatus::Complete => "complete",
        state::JobStatus::Partial => "partial",
        state::JobStatus::Error => "error",
    }
}

/// The exit code for one job's status.
fn code_of(status: &str) -> i32 {
    match status {
        "complete" => exit::OK,
        "running" => exit::STATUS_RUNNING,
        "interrupted" => exit::STATUS_INTERRUPTED,
        _ => exit::STATUS_FAILED,
    }
}

/// `btsx status DIR`: every state file in a directory (possibly shared by many machines).
/// Exit 0 only when every job is complete; else running, failed, interrupted in that order.
fn status_dir(args: &StatusArgs) -> Result<i32, Failure> {
    let mut jobs = Vec::new();
    let entries = std::fs::read_dir(&args.file).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("cannot read state directory {}: {e}", args.file.display()),
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let (mut done, mut running, mut failed, mut other) = (0, 0, 0, 0);
    let (mut total, mut settled, mut size) = (0u64, 0u64, 0u64);
    for p in paths {
        let Ok(d) = state::read(&p) else {
            other += 1;
            jobs.push(json!({"file": p.display().to_string(), "status": "unreadable"}));
            continue;
        };
        let st = job_status(&p, d.status);
        match st {
            "running" => running += 1,
            "complete" => done += 1,
            "partial" | "error" => failed += 1,
            _ => other += 1,
        }
        let t: u64 = d.folders.values().map(|f| f.messages).sum();
        let s: u64 = d
            .folders
            .values()
            .map(|f| f.copied + f.skipped + f.failed)
            .sum();
        total += t;
        settled += s;
        size += d.folders.values().map(|f| f.bytes).sum::<u64>();
        jobs.push(json!({
            "file": p.display().to_string(),
            "source": d.job.source.url(),
            "destination": d.job.destination.url(),
            "status": st,
            "messages_total": t,
            "messages_done": s,
            "updated": d.updated,
        }));
    }
    let code = if running > 0 {
        exit::STATUS_RUNNING
    } else if failed > 0 {
        exit::STATUS_FAILED
    } else if other > 0 {
        exit::STATUS_INTERRUPTED
    } else {
        exit::OK
    };
    let mut out = String::new();
    if args.json {
        let v = json!({
            "format_version": FORMAT_VERSION,
            "dir": args.file.display().to_string(),
            "exit_code": code,
            "accounts": jobs.len(),
            "complete": done,
            "running": running,
            "failed": failed,
            "other": other,
            "messages_total": total,
            "messages_done": settled,
            "bytes": size,
            "jobs": jobs,
        });
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(out, "State directory {}", args.file.display());
        let _ = writeln!(
            out,
            "Accounts: {} ({done} complete, {running} running, {failed} failed, {other} interrupted or unreadable)",
            jobs.len()
        );
        let _ = writeln!(out, "Messages: {settled}/{total} settled, {}", bytes(size));
        let _ = writeln!(out);
        for j in &jobs {
            let _ = writeln!(
                out,
                "  {:<11} {} → {}  {}/{}",
                j["status"].as_str().unwrap_or(""),
                j["source"]
                    .as_str()
                    .unwrap_or(j["file"].as_str().unwrap_or("")),
                j["destination"].as_str().unwrap_or(""),
                j["messages_done"],
                j["messages_total"]
            );
        }
    }
    Ok(print_then(out.as_bytes(), code))
}

pub fn run(args: StatusArgs) -> Result<i32, Failure> {
    if args.file.is_dir() {
        return status_dir(&args);
    }
    let data = state::read(&args.file).map_err(|e| Failure::new(exit::STATE, e.to_string()))?;
    let total: u64 = data.folders.values().map(|f| f.messages).sum();
    let done: u64 = data
        .folders
        .values()
        .map(|f| f.copied + f.skipped + f.failed)
        .sum();
    let percent = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let status = job_status(&args.file, data.status);
    let code = code_of(status);
    let resume = (status != "complete" && status != "running")
        .then(|| resume_command(&args.file.display().to_string()));
    let mut out = String::new();
    if args.json {
        let folders: Vec<serde_json::Value> = data
            .folders
            .values()
            .map(|f| {
                json!({
                    "source": f.source,
                    "destination": f.destination,
                    "status": f.status,
                    "messages": f.messages,
                    "done": f.copied + f.skipped + f.failed,
                    "copied": f.copied,
                    "skipped": f.skipped,
                    "failed": f.failed,
                    "bytes": f.bytes,
                })
            })
            .collect();
        let v = json!({
            "format_version": FORMAT_VERSION,
            "file": args.file.display().to_string(),
            "status": status,
            "exit_code": code,
            "running": status == "running",
            "source": data.job.source.url(),
            "destination": data.job.destination.url(),
            "updated": data.updated,
            "messages_total": total,
            "messages_done": done,
            "percent": (percent * 10.0).round() / 10.0,
            "resume": resume,
            "folders": folders,
        });
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(
            out,
            "Job {} → {}",
            data.job.source.url(),
            data.job.destination.url()
        );
        let _ = writeln!(out, "Status:        {status}");
        let _ = writeln!(
            out,
            "Progress:      {done}/{total} messages ({percent:.1}%)"
        );
        let _ = writeln!(out, "Last progress: {}", data.updated);
        let _ = writeln!(out);
        let w = data
            .folders
            .values()
            .map(|f| console::measure_text_width(&folder_label(&f.source, &f.destination)))
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(out, "{:<w$}  {:>15}  Status", "Folder", "Copied/Total");
        for f in data.folders.values() {
            let st = serde_json::to_value(f.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let label = folder_label(&f.source, &f.destination);
            let pad = w.saturating_sub(console::measure_text_width(&label));
            let _ = writeln!(
                out,
                "{label}{}  {:>15}  {st}",
                " ".repeat(pad),
                format!("{}/{}", f.copied + f.skipped + f.failed, f.messages),
            );
        }
        if let Some(r) = &resume {
            let _ = writeln!(out, "\nResume with: {r}");
        }
    }
    Ok(print_then(out.as_bytes(), code))
}

/// The naming rule: the source's name, and "→ destination" where the two differ.
fn folder_label(source: &str, destination: &str) -> String {
    if source == destination {
        source.to_string()
    } else {
        format!("{source} → {destination}")
    }
}
