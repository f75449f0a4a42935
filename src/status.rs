//! `btsx status FILE|DIR`: what a job, or every job in a state directory, has done so far.

use std::path::{Path, PathBuf};

use crate::cli::StatusArgs;
use crate::event::FORMAT_VERSION;
use crate::exit;
use crate::state;

/// What a job is doing: the lock tells whether a run holds it; a saved "running" without
/// the lock is a run that died (kill -9, reboot).
fn job_status(path: &Path, saved: state::JobStatus) -> String {
    if state::is_locked(path) {
        return "running".to_string();
    }
    if saved == state::JobStatus::Running {
        return "interrupted".to_string();
    }
    serde_json::to_value(saved)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `btsx status DIR`: every state file in a directory (possibly shared by many machines).
fn status_dir(args: &StatusArgs) -> i32 {
    let mut jobs = Vec::new();
    let entries = match std::fs::read_dir(&args.file) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("✗ cannot read {}: {e}", args.file.display());
            return exit::USAGE;
        }
    };
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
    let (mut total, mut settled, mut bytes) = (0u64, 0u64, 0u64);
    for p in paths {
        let Ok(d) = state::read(&p) else {
            other += 1;
            jobs.push(serde_json::json!({"file": p.display().to_string(), "status": "unreadable"}));
            continue;
        };
        let st = job_status(&p, d.status);
        match st.as_str() {
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
        bytes += d.folders.values().map(|f| f.bytes).sum::<u64>();
        jobs.push(serde_json::json!({
            "file": p.display().to_string(),
            "source": d.job.source.url(),
            "destination": d.job.destination.url(),
            "status": st,
            "messages_total": t,
            "messages_done": s,
            "updated": d.updated,
        }));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "format_version": FORMAT_VERSION,
                "dir": args.file.display().to_string(),
                "accounts": jobs.len(),
                "complete": done,
                "running": running,
                "failed": failed,
                "other": other,
                "messages_total": total,
                "messages_done": settled,
                "bytes": bytes,
                "jobs": jobs,
            })
        );
    } else {
        println!("State directory {}", args.file.display());
        println!(
            "Accounts: {} ({done} complete, {running} running, {failed} failed, {other} interrupted or unreadable)",
            jobs.len()
        );
        println!(
            "Messages: {settled}/{total} settled, {}",
            bytesize::ByteSize(bytes)
        );
        println!();
        for j in &jobs {
            println!(
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
    exit::OK
}

pub fn run(args: StatusArgs) -> i32 {
    if args.file.is_dir() {
        return status_dir(&args);
    }
    let data = match state::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("✗ {e}");
            return exit::STATE;
        }
    };
    let running = state::is_locked(&args.file);
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
    if args.json {
        let v = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "file": args.file.display().to_string(),
            "status": status,
            "running": running,
            "source": data.job.source.url(),
            "destination": data.job.destination.url(),
            "updated": data.updated,
            "messages_total": total,
            "messages_done": done,
            "percent": (percent * 10.0).round() / 10.0,
            "folders": data.folders.values().collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        println!(
            "Job {} → {}",
            data.job.source.url(),
            data.job.destination.url()
        );
        println!("Status:        {status}");
        println!("Progress:      {done}/{total} messages ({percent:.1}%)");
        println!("Last progress: {}", data.updated);
        println!();
        let w = data
            .folders
            .keys()
            .map(|k| console::measure_text_width(k))
            .max()
            .unwrap_or(6)
            .max(6);
        println!("{:<w$}  {:>15}  Status", "Folder", "Copied/Total");
        for f in data.folders.values() {
            let st = serde_json::to_value(f.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let pad = w.saturating_sub(console::measure_text_width(&f.source));
            println!(
                "{}{}  {:>15}  {}",
                f.source,
                " ".repeat(pad),
                format!("{}/{}", f.copied + f.skipped + f.failed, f.messages),
                st
            );
        }
        if !running && data.status != state::JobStatus::Complete {
            println!(
                "\nResume with: btsx migrate --resume {}",
                args.file.display()
            );
        }
    }
    exit::OK
}
