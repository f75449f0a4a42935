//! Resuming: the state file, the lock, kill -9, Ctrl-C / SIGTERM, incremental re-runs,
//! UIDVALIDITY changes and `btsx status`, against real Dovecot servers.
//!
//! Every test starts its own servers, passes `--state <tempdir>/….json` and points
//! XDG_STATE_HOME at a temporary directory of its own.

mod support;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    Digest, Dovecot, Others, ServerOpts, assert_same_mail, btsx, parse_lines, signal, wait_exit,
};

const USER: &str = "alice";
const SRC_PW: &str = "src-Secret-4711";
const DST_PW: &str = "dst-Secret-0815";
const BOB: &str = "bob";
const BOB_PW: &str = "dst-Bob-Secret-99";

/// Dovecot logs, per session, how many message bodies and headers it sent.
const FETCH_LOG: &str = "imap_logout_format = in=%i out=%o fetch_body=%{fetch_body_count}/%{fetch_body_bytes} fetch_hdr=%{fetch_hdr_count}\n";

// ------------------------------------------------------------------------------------------
// servers and jobs

fn source() -> Dovecot {
    Dovecot::start(ServerOpts {
        separator: '/',
        users: vec![(USER.into(), SRC_PW.into())],
        extra_conf: Some(FETCH_LOG.into()),
        ..ServerOpts::default()
    })
}

fn destination() -> Dovecot {
    Dovecot::start(ServerOpts {
        separator: '.',
        users: vec![(USER.into(), DST_PW.into()), (BOB.into(), BOB_PW.into())],
        ..ServerOpts::default()
    })
}

/// One migration job: source alice → destination `dst_user`, with its own state file.
struct Job<'a> {
    src: &'a Dovecot,
    dst: &'a Dovecot,
    dst_user: &'static str,
    /// Reach the destination through this port instead (a relay).
    dst_port: Option<u16>,
    state: PathBuf,
    xdg: PathBuf,
}

impl<'a> Job<'a> {
    fn new(src: &'a Dovecot, dst: &'a Dovecot, dst_user: &'static str, tmp: &Path) -> Job<'a> {
        let xdg = tmp.join("xdg");
        fs::create_dir_all(&xdg).expect("xdg dir");
        Job {
            src,
            dst,
            dst_user,
            dst_port: None,
            state: tmp.join("state").join(format!("{dst_user}.json")),
            xdg,
        }
    }

    fn src_url(&self) -> String {
        self.src.url(USER)
    }

    fn dst_url(&self) -> String {
        match self.dst_port {
            Some(p) => format!("imaps://{}@localhost:{p}", self.dst_user),
            None => self.dst.url(self.dst_user),
        }
    }

    /// btsx with passwords in the environment and XDG_STATE_HOME in the test's tempdir.
    fn base(&self) -> Command {
        let mut c = btsx();
        c.env("BTSX_SRC_PASSWORD", self.src.password(USER))
            .env("BTSX_DST_PASSWORD", self.dst.password(self.dst_user))
            .env("XDG_STATE_HOME", &self.xdg)
            .stdin(Stdio::null());
        c
    }

    /// `btsx migrate SRC DST --ca-file … --state S EXTRA…`
    fn migrate_cmd(&self, extra: &[&str]) -> Command {
        let mut c = self.base();
        c.arg("migrate")
            .arg(self.src_url())
            .arg(self.dst_url())
            .arg("--ca-file")
            .arg(&self.src.ca_file)
            .arg("--state")
            .arg(&self.state)
            .args(extra);
        c
    }

    /// `btsx migrate --resume S --ca-file … EXTRA…` (no SRC, no DST).
    fn resume_cmd(&self, extra: &[&str]) -> Command {
        let mut c = self.base();
        c.arg("migrate")
            .arg("--resume")
            .arg(&self.state)
            .arg("--ca-file")
            .arg(&self.src.ca_file)
            .args(extra);
        c
    }

    fn migrate(&self, extra: &[&str]) -> Run {
        Run::of(self.migrate_cmd(extra))
    }

    fn resume(&self, extra: &[&str]) -> Run {
        Run::of(self.resume_cmd(extra))
    }

    /// Starts `btsx migrate … --json` with stdout going to `out` (read it while it runs).
    fn spawn(&self, extra: &[&str], out: &Path) -> Child {
        self.spawn_cmd(self.migrate_cmd(extra), out)
    }

    fn spawn_cmd(&self, mut cmd: Command, out: &Path) -> Child {
        let f = File::create(out).expect("create stdout file");
        cmd.stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn btsx")
    }

    /// `btsx status S --json`.
    fn status_json(&self) -> Value {
        let out = self
            .base()
            .arg("status")
            .arg(&self.state)
            .arg("--json")
            .output()
            .expect("run btsx status");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
        let v: Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("status JSON ({e}): {text}"));
        // The exit code tells the job's state (src/exit.rs): 0 complete, 10 running,
        // 11 interrupted, 12 failed.
        let want = match v["status"].as_str() {
            Some("complete") => 0,
            Some("running") => 10,
            Some("interrupted") => 11,
            _ => 12,
        };
        assert_eq!(
            out.status.code(),
            Some(want),
            "btsx status --json: {v} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(v["exit_code"], want);
        v
    }

    fn state_json(&self) -> Value {
        read_state(&self.state)
    }
}

/// A finished btsx run.
struct Run {
    code: Option<i32>,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

impl Run {
    fn of(mut cmd: Command) -> Run {
        let t = Instant::now();
        let out: Output = cmd.output().expect("run btsx");
        let wall = t.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code(),
            events: parse_lines(&stdout, true),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            wall,
        }
    }

    fn summary(&self) -> &Value {
        let last = self
            .events
            .last()
            .unwrap_or_else(|| panic!("no events; stderr: {}", self.stderr));
        assert_eq!(last["type"], "summary", "last line must be the summary");
        last
    }

    fn of_type<'s>(&'s self, t: &'s str) -> impl Iterator<Item = &'s Value> + 's {
        self.events.iter().filter(move |e| e["type"] == t)
    }

    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stderr: {}\nlast events: {:#?}",
            self.stderr,
            &self.events[self.events.len().saturating_sub(4)..]
        );
        if let Some(s) = self.events.last().filter(|e| e["type"] == "summary") {
            assert_eq!(s["exit_code"], code, "summary exit_code");
        }
        self
    }

    /// The one `error` event of an early failure: one line, also in the summary.
    fn single_error(&self) -> String {
        let errors: Vec<&Value> = self.of_type("error").collect();
        assert_eq!(
            errors.len(),
            1,
            "exactly one error event: {:#?}",
            self.events
        );
        let msg = errors[0]["message"].as_str().expect("message").to_string();
        assert!(!msg.contains('\n'), "one line: {msg:?}");
        let sum = self.summary();
        assert_eq!(sum["status"], "error");
        assert_eq!(sum["error"].as_str(), Some(msg.as_str()));
        assert_eq!(sum["messages_copied"], 0);
        msg
    }

    fn copied(&self) -> u64 {
        self.summary()["messages_copied"].as_u64().expect("copied")
    }

    /// Source folder → destination folder, from the summary.
    fn folder_map(&self) -> HashMap<String, String> {
        support::folder_map(self.summary())
    }
}

fn events_in(path: &Path) -> Vec<Value> {
    parse_lines(&fs::read_to_string(path).unwrap_or_default(), false)
}

/// Parses the state file strictly, checking what every version of it must hold.
fn read_state(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "state file {} is not valid JSON ({e}):\n{}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(v["version"], 1, "state version");
    assert_eq!(v["tool"], "btsx");
    assert!(
        v["job"]["source"].is_object() && v["folders"].is_object(),
        "{v:#}"
    );
    let mode = fs::metadata(path).expect("stat state").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "state file mode {mode:o}");
    let text = String::from_utf8_lossy(&bytes);
    for pw in [SRC_PW, DST_PW, BOB_PW] {
        assert!(!text.contains(pw), "the state file holds a password");
    }
    v
}

fn count(d: &Digest) -> u64 {
    support::total_messages(d) as u64
}

// ------------------------------------------------------------------------------------------
// processes

/// Polls the child's stdout until `pred` holds on the events so far. False if the child
/// exited first.
fn wait_for_events(
    child: &mut Child,
    out: &Path,
    limit: Duration,
    pred: impl Fn(&[Value]) -> bool,
) -> bool {
    let t = Instant::now();
    loop {
        if pred(&events_in(out)) {
            return true;
        }
        if child.try_wait().expect("try_wait").is_some() {
            return pred(&events_in(out));
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no matching event within {limit:?}: {:#?}", events_in(out));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ------------------------------------------------------------------------------------------
// Dovecot's per-session fetch counters

/// Log text appended since `from`.
fn log_since(d: &Dovecot, from: usize) -> String {
    d.log().get(from..).unwrap_or_default().to_string()
}

/// The `fetch_body=N/…` counts of every session that logged in after `from`, once each of
/// them has logged its disconnection.
fn body_fetches(d: &Dovecot, from: usize) -> Vec<u64> {
    let t = Instant::now();
    loop {
        let log = log_since(d, from);
        let logins = log.matches("Login: user=<").count();
        let counts: Vec<u64> = log
            .lines()
            .filter(|l| l.contains("Disconnected"))
            .filter_map(|l| {
                let v = l.split("fetch_body=").nth(1)?;
                v.split('/').next()?.parse().ok()
            })
            .collect();
        if counts.len() >= logins && logins > 0 {
            return counts;
        }
        if t.elapsed() > Duration::from_secs(10) {
            panic!("sessions did not log their fetch counters:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------------------------------
// helpers on servers

/// UIDVALIDITY of a folder, via STATUS.
fn uid_validity(d: &Dovecot, user: &str, folder: &str) -> u64 {
    let t = d.imap(user, &[&format!("STATUS \"{folder}\" (UIDVALIDITY)")]);
    t.split("UIDVALIDITY ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {t}"))
}

/// APPEND one small message with a literal.
fn append(d: &Dovecot, folder: &str, n: u32) {
    let msg = format!(
        "From: Incremental Sender <inc@example.org>\r\nTo: Alice <alice@example.com>\r\nSubject: added later {n}\r\nDate: Mon, 01 Jan 2024 10:00:{n:02} +0000\r\nMessage-ID: <added-{n}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAdded after the first run ({n}).\r\n"
    );
    let cmd = format!(
        "APPEND \"{folder}\" (\\Seen $Forwarded) \"01-Jan-2024 10:00:{n:02} +0000\" {{{}}}\r\n{msg}",
        msg.len()
    );
    let t = d.imap(USER, &[&cmd]);
    assert!(t.contains("OK [APPENDUID") || t.contains(" OK "), "{t}");
}

// ------------------------------------------------------------------------------------------
// 1. kill -9 at any moment

enum Trigger {
    /// Kill this long after the start.
    After(Duration),
    /// Kill this long after the run entered the copying phase.
    IntoCopy(Duration),
    /// Kill as soon as the events so far satisfy this.
    On(&'static str, fn(&[Value]) -> bool),
}

#[derive(Debug)]
#[allow(dead_code)]
struct KillRecord {
    trigger: String,
    after_ms: u128,
    /// The last phase the run announced before it died.
    phase: String,
    progress_events: usize,
    /// Exit code if the run ended by itself before the kill.
    finished: Option<Option<i32>>,
    state_present: bool,
}

fn kill_once(job: &Job, out: &Path, trigger: &Trigger) -> KillRecord {
    let mut child = job.spawn(&["--json"], out);
    let t0 = Instant::now();
    let mut finished = None;
    let name = match trigger {
        Trigger::After(d) => format!("after {} ms", d.as_millis()),
        Trigger::IntoCopy(d) => format!("{} ms into the copy", d.as_millis()),
        Trigger::On(name, _) => format!("on {name}"),
    };
    let mut copy_since: Option<Instant> = None;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            finished = Some(st.code());
            break;
        }
        let fire = match trigger {
            Trigger::After(d) => t0.elapsed() >= *d,
            Trigger::IntoCopy(d) => {
                if copy_since.is_none()
                    && events_in(out)
                        .iter()
                        .any(|e| e["phase"] == "copying_messages")
                {
                    copy_since = Some(Instant::now());
                }
                copy_since.is_some_and(|t| t.elapsed() >= *d)
            }
            Trigger::On(_, pred) => pred(&events_in(out)),
        };
        if fire {
            child.kill().expect("SIGKILL btsx");
            child.wait().expect("reap btsx");
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name}: btsx ran for 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let after_ms = t0.elapsed().as_millis();
    let events = events_in(out);
    let phase = events
        .iter()
        .rev()
        .find(|e| e["type"] == "phase")
        .and_then(|e| e["phase"].as_str())
        .unwrap_or("none")
        .to_string();
    let progress_events = events.iter().filter(|e| e["type"] == "progress").count();

    // Whatever the moment, the state file is absent or a whole, valid one.
    let state_present = job.state.exists();
    if state_present {
        read_state(&job.state);
        let st = job.status_json();
        assert_eq!(st["running"], false, "nobody holds the lock after a kill");
    }
    if let Some(code) = finished {
        assert_eq!(
            code,
            Some(0),
            "{name}: the run ended by itself, but not well"
        );
    }
    KillRecord {
        trigger: name,
        after_ms,
        phase,
        progress_events,
        finished,
        state_present,
    }
}

#[test]
fn kill_9_at_any_moment_never_loses_or_duplicates_mail() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "11", "--messages", "200"]);
    // A folder of several batches (200 messages per APPEND batch).
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Bulk",
            "--messages",
            "250",
            "--seed",
            "12",
        ],
    );
    let src_digest = src.digest(USER);
    assert_eq!(count(&src_digest), 450);
    let tmp = tempfile::tempdir().expect("tmp");

    // How long a whole run takes here (to bob, another account on the destination).
    let measure = Job::new(&src, &dst, BOB, &tmp.path().join("measure"));
    let full = measure.migrate(&["--json"]);
    full.expect_code(0);
    assert_eq!(full.copied(), 450);
    let d = full.wall;

    let job = Job::new(&src, &dst, USER, &tmp.path().join("job"));
    let ms = Duration::from_millis;
    let mut triggers = vec![
        Trigger::On("scanning_folders", |ev| {
            ev.iter().any(|e| e["phase"] == "scanning_folders")
        }),
        Trigger::On("2nd folder_created", |ev| {
            ev.iter().filter(|e| e["type"] == "folder_created").count() >= 2
        }),
    ];
    // Instants from the start, around when the measured run reached each phase…
    let at = |phase: &str| -> Duration {
        let ts = |e: Option<&Value>| {
            humantime::parse_rfc3339(e.and_then(|e| e["ts"].as_str()).expect("ts"))
                .expect("rfc3339")
        };
        let start = ts(full.of_type("start").next());
        let p = ts(full.of_type("phase").find(|e| e["phase"] == phase));
        p.duration_since(start).unwrap_or_default()
    };
    let (scan, copy) = (at("scanning_folders"), at("copying_messages"));
    triggers.push(Trigger::After(ms(50)));
    for f in [0.5, 1.0, 1.2] {
        triggers.push(Trigger::After(scan.mul_f64(f).max(ms(50))));
    }
    triggers.push(Trigger::After(copy));
    triggers.push(Trigger::On("first progress", |ev| {
        ev.iter().any(|e| e["type"] == "progress")
    }));
    // …and into the copy, scaled to how long the measured copy took (connecting takes a
    // very variable time on a loaded machine, so these count from the copy's start).
    let span = d.saturating_sub(copy);
    for f in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3] {
        triggers.push(Trigger::IntoCopy(span.mul_f64(f)));
    }

    let mut records = Vec::new();
    for (i, t) in triggers.iter().enumerate() {
        let out = tmp.path().join(format!("kill-{i}.jsonl"));
        records.push(kill_once(&job, &out, t));
    }
    eprintln!("full run: {d:?}, scanning after {scan:?}, copying after {copy:?}");
    for r in &records {
        eprintln!("{r:?}");
    }
    let in_phase = |p: &str| {
        records
            .iter()
            .filter(|r| r.finished.is_none() && r.phase == p)
            .count()
    };
    assert!(in_phase("scanning_folders") >= 1, "a kill while scanning");
    assert!(in_phase("creating_folders") >= 1, "a kill while creating");
    let copying: Vec<&KillRecord> = records
        .iter()
        .filter(|r| r.finished.is_none() && r.phase == "copying_messages")
        .collect();
    // Timed kills drift on a loaded machine; the event-triggered ones always land.
    assert!(copying.len() >= 2, "kills while copying");
    assert!(
        copying.iter().any(|r| r.progress_events > 0),
        "a kill after a batch was settled"
    );

    // Then to the end.
    let last = job.migrate(&["--json"]);
    last.expect_code(0);
    assert_eq!(last.summary()["status"], "complete");
    assert_eq!(last.summary()["messages_failed"], 0);
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &last.folder_map(),
        Others::Empty,
    );
    let st = job.state_json();
    assert_eq!(st["status"], "complete");
    for (name, f) in st["folders"].as_object().expect("folders") {
        assert_eq!(f["status"], "complete", "{name}");
    }
    // Migrate never changes the source; --state keeps XDG_STATE_HOME untouched.
    assert_eq!(src.digest(USER), src_digest, "source unchanged");
    assert!(
        !job.xdg.join("btsx").exists(),
        "nothing under XDG_STATE_HOME"
    );
    let strays: Vec<String> = fs::read_dir(job.state.parent().expect("dir"))
        .expect("list state dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".btsx-state"))
        .collect();
    eprintln!("temporary state files left by kills: {strays:?}");
}

// ------------------------------------------------------------------------------------------
// 2. SIGINT / SIGTERM

fn interrupt_then_resume(sig: &str) {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "21", "--messages", "120"]);
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Bulk",
            "--messages",
            "450",
            "--seed",
            "22",
        ],
    );
    let src_digest = src.digest(USER);
    let total = count(&src_digest);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());

    let out = tmp.path().join("run1.jsonl");
    let mut child = job.spawn(&["--json", "--jobs", "1"], &out);
    let started = wait_for_events(&mut child, &out, Duration::from_secs(120), |ev| {
        ev.iter().any(|e| e["type"] == "folder_started")
    });
    assert!(started, "the run ended before copying anything");

    // While it runs: the lock keeps a second btsx off, and status says running.
    let second = job.migrate(&["--json"]);
    second.expect_code(6);
    let msg = second.single_error();
    assert!(msg.contains("another btsx"), "{msg}");
    assert!(msg.contains(&job.state.display().to_string()), "{msg}");
    let st = job.status_json();
    assert_eq!(st["running"], true);
    assert_eq!(st["status"], "running");

    // The signal comes right after the first batch (of 200) of Bulk is settled.
    let copying = wait_for_events(&mut child, &out, Duration::from_secs(120), |ev| {
        ev.iter().any(|e| e["type"] == "progress")
    });
    assert!(copying, "the run ended before copying anything");
    signal(&child, sig);
    let t = Instant::now();
    let exit = wait_exit(&mut child, Duration::from_secs(60));
    let stop_time = t.elapsed();
    assert_eq!(exit.code(), Some(130), "exit code after SIG{sig}");
    let text = fs::read_to_string(&out).expect("stdout");
    let events = parse_lines(&text, true);
    let sum = events.last().expect("events");
    assert_eq!(sum["type"], "summary", "last line is the summary");
    assert_eq!(sum["status"], "interrupted");
    assert_eq!(sum["exit_code"], 130);
    let copied_before = sum["messages_copied"].as_u64().expect("copied");
    assert!(
        copied_before < total,
        "still copying when SIG{sig} came ({copied_before}/{total})"
    );
    let per_folder = sum["per_folder"].as_array().expect("per_folder");
    assert!(
        per_folder.iter().any(|f| f["status"] != "complete"),
        "some folder unfinished: {per_folder:#?}"
    );

    // The state file says so, and counts exactly what the destination holds.
    let state = job.state_json();
    assert_eq!(state["status"], "interrupted");
    let dst_digest = dst.digest(USER);
    let map: HashMap<String, String> = per_folder
        .iter()
        .map(|f| {
            (
                f["folder"].as_str().unwrap_or_default().to_string(),
                f["destination"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let folders = state["folders"].as_object().expect("folders");
    let mut in_state = 0;
    for (name, f) in folders {
        let dname = &map[name];
        let have = dst_digest
            .folders
            .get(dname)
            .map_or(0, |d| d.messages.len() as u64);
        assert_eq!(
            f["copied"].as_u64(),
            Some(have),
            "state vs destination for {name}"
        );
        in_state += have;
    }
    assert_eq!(in_state, copied_before, "the summary counts what was saved");
    // Bulk (largest, so first) stopped between two batches; the checkpoint says where.
    let bulk = &state["folders"]["Bulk"];
    assert_eq!(bulk["status"], "interrupted", "{bulk:#}");
    let bulk_copied = bulk["copied"].as_u64().expect("copied");
    assert!(bulk_copied > 0 && bulk_copied < 450, "{bulk:#}");
    assert_eq!(bulk["last_uid"].as_u64(), Some(bulk_copied), "{bulk:#}");
    assert!(bulk["dest_uid_next"].is_u64(), "{bulk:#}");
    assert_eq!(
        count(&dst_digest),
        copied_before,
        "nothing unsaved appended"
    );
    let st = job.status_json();
    assert_eq!(st["status"], "interrupted");
    assert_eq!(st["running"], false);
    let text = job
        .base()
        .arg("status")
        .arg(&job.state)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "Resume with: btsx migrate --resume {}",
            job.state.display()
        )),
        "{text}"
    );

    // --resume FILE, without SRC and DST, finishes the job: only what is missing.
    let resumed = job.resume(&["--json"]);
    resumed.expect_code(0);
    let rs = resumed.summary();
    assert_eq!(rs["status"], "complete");
    assert_eq!(rs["messages_copied"].as_u64(), Some(total - copied_before));
    assert_eq!(rs["messages_skipped"], 0, "the checkpoint is exact");
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &resumed.folder_map(),
        Others::Empty,
    );
    assert_eq!(job.state_json()["status"], "complete");
    eprintln!(
        "SIG{sig}: stopped {stop_time:?} after the signal with {copied_before}/{total} copied"
    );
}

#[test]
fn sigint_saves_state_and_resume_finishes() {
    interrupt_then_resume("INT");
}

#[test]
fn sigterm_saves_state_and_resume_finishes() {
    interrupt_then_resume("TERM");
}

/// A TCP relay to a local port that the test can pause: while paused it moves no bytes, so
/// btsx blocks in the middle of its I/O with that server.
struct Relay {
    port: u16,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind relay");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let (p, st, socks) = (paused.clone(), stop.clone(), sockets.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                for s in [&client, &server] {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
                    if let (Ok(c), Ok(mut v)) = (s.try_clone(), socks.lock()) {
                        v.push(c);
                    }
                }
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let (p, st) = (p.clone(), st.clone());
                    std::thread::spawn(move || pump(from, to, &p, &st));
                }
            }
        });
        Relay {
            port,
            paused,
            stop,
            sockets,
        }
    }

    fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        if paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(v) = self.sockets.lock() {
            for s in v.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The first Ctrl-C waits for the work in flight; a second one leaves at once. The state
/// file stays whole, and the next run still copies every message exactly once.
#[test]
fn second_signal_exits_at_once_and_nothing_is_duplicated() {
    let src = source();
    let dst = destination();
    src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Bulk",
            "--messages",
            "450",
            "--seed",
            "23",
        ],
    );
    let src_digest = src.digest(USER);
    let relay = Relay::start(dst.imaps_port);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job {
        dst_port: Some(relay.port),
        ..Job::new(&src, &dst, USER, tmp.path())
    };
    let out = tmp.path().join("run1.jsonl");
    let mut child = job.spawn(&["--json", "--jobs", "1"], &out);
    let copying = wait_for_events(&mut child, &out, Duration::from_secs(120), |ev| {
        ev.iter().any(|e| e["type"] == "progress")
    });
    assert!(copying, "the run ended before copying anything");
    // The destination goes silent in the middle of the second batch of APPENDs.
    relay.pause(true);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the first signal lets the batch in flight finish"
    );
    signal(&child, "INT");
    let t = Instant::now();
    let exit = wait_exit(&mut child, Duration::from_secs(30));
    let took = t.elapsed();
    assert_eq!(exit.code(), Some(130));
    assert!(took < Duration::from_secs(1), "exits at once: {took:?}");
    let events = events_in(&out);
    assert_eq!(
        events.iter().filter(|e| e["type"] == "summary").count(),
        0,
        "no summary: it left at once"
    );
    relay.pause(false);
    let st = read_state(&job.state);
    assert_eq!(st["status"], "running", "never finished");
    assert_eq!(job.status_json()["running"], false);

    // --resume (through the relay: the job's destination) copies what is missing, once.
    let r = job.resume(&["--json"]);
    r.expect_code(0);
    assert_eq!(r.summary()["status"], "complete");
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &r.folder_map(),
        Others::Empty,
    );
    eprintln!(
        "double SIGINT: exit {took:?} after the second; the next run copied {} and found {} present",
        r.summary()["messages_copied"],
        r.summary()["messages_skipped"]
    );
}

// ------------------------------------------------------------------------------------------
// 3. incremental re-runs

#[test]
fn incremental_run_copies_only_new_mail_and_a_no_change_run_fetches_nothing() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "31", "--messages", "150"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    let first = job.migrate(&["--json"]);
    first.expect_code(0);
    assert_eq!(first.copied(), 150);

    // New mail: 2 in INBOX, 5 in Archive/2019, and a new folder with 7.
    append(&src, "INBOX", 1);
    append(&src, "INBOX", 2);
    let g = src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Archive/2019",
            "--messages",
            "5",
            "--seed",
            "32",
        ],
    );
    assert_eq!(g["messages"], 5);
    let g = src.generate(
        USER,
        &[
            "--profile",
            "flat",
            "--folder",
            "Projects",
            "--messages",
            "7",
            "--seed",
            "33",
        ],
    );
    assert_eq!(g["messages"], 7);
    let src_digest = src.digest(USER);
    assert_eq!(count(&src_digest), 164);

    let log_at = src.log().len();
    let second = job.migrate(&["--json"]);
    second.expect_code(0);
    let sum = second.summary();
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_copied"], 14, "exactly the added messages");
    assert_eq!(sum["messages_skipped"], 0);
    assert_eq!(sum["messages_total"], 14);
    let found: HashMap<&str, u64> = second
        .of_type("folder_found")
        .map(|e| {
            (
                e["folder"].as_str().expect("folder"),
                e["messages"].as_u64().expect("messages"),
            )
        })
        .collect();
    for (name, n) in &found {
        let want = match *name {
            "INBOX" => 2,
            "Archive/2019" => 5,
            "Projects" => 7,
            _ => 0,
        };
        assert_eq!(*n, want, "folder_found.messages of {name}");
    }
    assert_eq!(found.len(), 14, "every folder found: {found:?}");
    assert!(
        second
            .of_type("folder_created")
            .all(|e| e["folder"] == "Projects")
            && second.of_type("folder_created").count() == 1
    );
    let fetched: u64 = body_fetches(&src, log_at).iter().sum();
    assert_eq!(fetched, 14, "bodies fetched from the source");
    assert_same_mail(
        "",
        &src_digest,
        &dst.digest(USER),
        &second.folder_map(),
        Others::Empty,
    );

    // Nothing changed: nothing copied, skipped or fetched.
    let dst_digest = dst.digest(USER);
    let log_at = src.log().len();
    let third = job.migrate(&["--json"]);
    third.expect_code(0);
    let sum = third.summary();
    assert_eq!(sum["status"], "complete");
    assert_eq!(sum["messages_copied"], 0);
    assert_eq!(sum["messages_total"], 0);
    assert_eq!(third.of_type("message_skipped").count(), 0);
    assert_eq!(third.of_type("folder_started").count(), 0);
    assert_eq!(third.of_type("folder_found").count(), 14);
    for e in third.of_type("folder_found") {
        assert_eq!(e["messages"], 0, "{e}");
    }
    let fetches = body_fetches(&src, log_at);
    assert!(
        fetches.iter().all(|&n| n == 0),
        "no body fetched: {fetches:?}"
    );
    assert_eq!(fetches.len(), 1, "one source session: {fetches:?}");
    // Quick: from the start of the scan to the summary (connecting, TLS in a debug build on
    // a loaded machine, varies too much to time).
    let ts = |e: &Value| humantime::parse_rfc3339(e["ts"].as_str().expect("ts")).expect("ts");
    let scan = third
        .of_type("phase")
        .find(|e| e["phase"] == "scanning_folders")
        .expect("scanning phase");
    let scan_to_end = ts(sum).duration_since(ts(scan)).unwrap_or_default();
    assert!(
        scan_to_end < Duration::from_secs(2),
        "a no-change run is quick: {scan_to_end:?}"
    );
    assert_eq!(dst.digest(USER), dst_digest, "destination unchanged");
    eprintln!(
        "no-change run: {} ms, {scan_to_end:?} from the scan on (wall {:?}); incremental run {:?}",
        sum["duration_ms"], third.wall, second.wall
    );
}

// ------------------------------------------------------------------------------------------
// 4. UIDVALIDITY changes

#[test]
fn uidvalidity_change_is_detected_and_nothing_is_duplicated() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "41", "--messages", "80"]);
    let flat = [
        "--profile",
        "flat",
        "--folder",
        "Projects",
        "--messages",
        "40",
        "--seed",
        "42",
    ];
    src.generate(USER, &flat);
    let src_digest = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    let first = job.migrate(&["--json"]);
    first.expect_code(0);
    assert_eq!(first.copied(), 120);
    let dst_digest = dst.digest(USER);

    // Delete the folder and make it again with the very same messages.
    let before = uid_validity(&src, USER, "Projects");
    let t = src.imap(USER, &["DELETE Projects"]);
    assert!(t.contains("t1 OK"), "{t}");
    src.generate(USER, &flat);
    let after = uid_validity(&src, USER, "Projects");
    assert_ne!(
        before, after,
        "Dovecot gave the new folder a new UIDVALIDITY"
    );
    assert_eq!(src.digest(USER), src_digest, "same messages as before");

    let second = job.migrate(&["--json"]);
    second.expect_code(0);
    let warnings: Vec<&Value> = second
        .of_type("warning")
        .filter(|w| {
            w["message"]
                .as_str()
                .unwrap_or_default()
                .contains("UIDVALIDITY")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "one UIDVALIDITY warning: {warnings:?}");
    assert_eq!(warnings[0]["folder"], "Projects");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Projects")
    );
    let skipped: Vec<&Value> = second.of_type("message_skipped").collect();
    assert_eq!(skipped.len(), 40, "every message recognised");
    for s in &skipped {
        assert_eq!(s["folder"], "Projects");
        assert_eq!(s["reason"], "already_present");
    }
    let sum = second.summary();
    assert_eq!(sum["messages_copied"], 0);
    assert_eq!(sum["messages_skipped"], 40);
    assert_eq!(dst.digest(USER), dst_digest, "no duplicates");

    // The state now knows the new UIDVALIDITY: quiet again.
    let st = job.state_json();
    assert_eq!(st["folders"]["Projects"]["uid_validity"], after);
    let third = job.migrate(&["--json"]);
    third.expect_code(0);
    assert!(
        !third.of_type("warning").any(|w| w["message"]
            .as_str()
            .unwrap_or_default()
            .contains("UIDVALIDITY")),
        "{:#?}",
        third.events
    );
    assert_eq!(third.summary()["messages_total"], 0);
    assert_eq!(third.of_type("message_skipped").count(), 0);
}

// ------------------------------------------------------------------------------------------
// 5. bad state files and the lock

/// Files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_state_files_are_refused_and_left_alone() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "51", "--messages", "30"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    job.migrate(&["--json"]).expect_code(0);
    let good = fs::read(&job.state).expect("state");
    let good_json: Value = serde_json::from_slice(&good).expect("json");

    let mut future = good_json.clone();
    future["version"] = 99.into();
    let mut foreign = good_json.clone();
    foreign["job"]["destination"]["user"] = "mallory".into();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("corrupt", b"this is { not json".to_vec(), "corrupt"),
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("empty", Vec::new(), "empty"),
        ("blank", b"\n  \n".to_vec(), "empty"),
        (
            "future",
            serde_json::to_vec_pretty(&future).expect("json"),
            "newer",
        ),
        (
            "not-btsx",
            b"{\"hello\": 1}".to_vec(),
            "not a btsx state file",
        ),
        (
            "foreign",
            serde_json::to_vec_pretty(&foreign).expect("json"),
            "another job",
        ),
    ];
    for (name, content, want) in &cases {
        let dir = tmp.path().join(format!("case-{name}"));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("{name}.json"));
        fs::write(&path, content).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let shown = path.display().to_string();
        let case = Job {
            state: path.clone(),
            ..Job::new(&src, &dst, USER, &dir)
        };

        // JSON: exit 5, one error line naming the file.
        let r = case.migrate(&["--json"]);
        r.expect_code(5);
        let msg = r.single_error();
        assert!(msg.contains(&shown), "{name}: names the file: {msg}");
        assert!(msg.contains(want), "{name}: says what is wrong: {msg}");
        // Human: the same error on stderr, nothing on stdout.
        let h = case.migrate(&["--color", "never"]);
        h.expect_code(5);
        assert!(h.stdout.is_empty(), "{name}: stdout {}", h.stdout);
        assert!(
            h.stderr
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(&shown) && l.contains(want)),
            "{name}: {}",
            h.stderr
        );
        // --resume: the same refusal (a foreign job is simply resumed, so not that one).
        if *name != "foreign" {
            let r = case.resume(&["--json"]);
            r.expect_code(5);
            assert!(r.single_error().contains(&shown), "{name}");
            let s = case
                .base()
                .arg("status")
                .arg(&path)
                .output()
                .expect("status");
            assert_eq!(s.status.code(), Some(5), "{name}: btsx status");
            let err = String::from_utf8_lossy(&s.stderr);
            assert!(err.contains(&shown), "{name}: status names the file: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
        }
        assert_eq!(
            &fs::read(&path).expect("read"),
            content,
            "{name}: unchanged"
        );
        let files = listing(&dir);
        assert!(
            files.iter().all(|f| !f.starts_with(".btsx-state")),
            "{name}: no temporary files: {files:?}"
        );
    }
    assert_eq!(fs::read(&job.state).expect("state"), good);

    // A missing --resume file.
    let missing = Job {
        state: tmp.path().join("nope.json"),
        ..Job::new(&src, &dst, USER, tmp.path())
    };
    let r = missing.resume(&["--json"]);
    r.expect_code(5);
    assert!(r.single_error().contains("nope.json"));
    assert!(!missing.state.exists(), "--resume does not create the file");

    // --resume with a SRC or DST that disagrees with the file: usage error.
    let other = format!("imaps://{USER}@localhost:{}", dst.imaps_port);
    for args in [vec![other.clone()], vec![job.src_url(), src.url(USER)]] {
        let r = Run::of({
            let mut c = job.base();
            c.arg("migrate")
                .args(&args)
                .arg("--resume")
                .arg(&job.state)
                .arg("--ca-file")
                .arg(&src.ca_file)
                .arg("--json");
            c
        });
        r.expect_code(2);
        let msg = r.single_error();
        assert!(msg.contains("disagrees"), "{msg}");
        assert!(msg.contains(&job.state.display().to_string()), "{msg}");
    }
    // …while agreeing ones are fine.
    let r = Run::of({
        let mut c = job.base();
        c.arg("migrate")
            .arg(job.src_url())
            .arg(job.dst_url())
            .arg("--resume")
            .arg(&job.state)
            .arg("--ca-file")
            .arg(&src.ca_file)
            .arg("--json");
        c
    });
    r.expect_code(0);
    assert_eq!(r.summary()["messages_copied"], 0);

    // The lock: while another process holds it, btsx refuses with exit 6.
    let before = fs::read(&job.state).expect("state");
    let mut lock_name = job.state.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(lock_name))
        .expect("open lock file");
    lock.try_lock().expect("take the lock");
    for r in [job.migrate(&["--json"]), job.resume(&["--json"])] {
        r.expect_code(6);
        let msg = r.single_error();
        assert!(msg.contains("another btsx"), "{msg}");
        assert!(msg.contains(&job.state.display().to_string()), "{msg}");
    }
    let st = job.status_json();
    assert_eq!(st["running"], true);
    assert_eq!(st["status"], "running");
    assert_eq!(fs::read(&job.state).expect("state"), before, "unchanged");
    drop(lock);
    job.migrate(&["--json"]).expect_code(0);
    assert_eq!(job.status_json()["running"], false);
}

// ------------------------------------------------------------------------------------------
// 6. btsx status

#[test]
fn status_shows_every_folder_of_a_finished_job() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "61", "--messages", "60"]);
    let src_digest = src.digest(USER);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    let run = job.migrate(&["--json"]);
    run.expect_code(0);
    let map = run.folder_map();
    assert_eq!(map.len(), src_digest.folders.len());

    let out = job
        .base()
        .arg("status")
        .arg(&job.state)
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Status:        complete"), "{text}");
    assert!(
        text.contains("Progress:      60/60 messages (100.0%)"),
        "{text}"
    );
    assert!(!text.contains("Resume with"), "{text}");
    // Folders without messages: see `status_lists_folders_without_messages`.
    for (name, f) in src_digest
        .folders
        .iter()
        .filter(|(_, f)| !f.messages.is_empty())
    {
        let n = f.messages.len();
        assert!(
            text.lines().any(|l| l.starts_with(name.as_str())
                && l.contains(&format!(" {n}/{n} "))
                && l.trim_end().ends_with("complete")),
            "folder {name} ({n}/{n} complete) in:\n{text}"
        );
    }

    let v = job.status_json();
    assert_eq!(v["status"], "complete");
    assert_eq!(v["running"], false);
    assert_eq!(v["percent"].as_f64(), Some(100.0));
    assert_eq!(v["messages_total"], 60);
    assert_eq!(v["messages_done"], 60);
    assert_eq!(v["source"].as_str(), Some(job.src_url().as_str()));
    assert_eq!(v["destination"].as_str(), Some(job.dst_url().as_str()));
    let folders = v["folders"].as_array().expect("folders");
    let by_name: HashMap<&str, &Value> = folders
        .iter()
        .map(|f| (f["source"].as_str().expect("source"), f))
        .collect();
    for (name, f) in src_digest
        .folders
        .iter()
        .filter(|(_, f)| !f.messages.is_empty())
    {
        let n = f.messages.len() as u64;
        let st = by_name
            .get(name.as_str())
            .unwrap_or_else(|| panic!("folder {name} missing from status --json"));
        assert_eq!(st["status"], "complete", "{name}");
        assert_eq!(st["messages"], n, "{name}");
        assert_eq!(st["copied"], n, "{name}");
        assert_eq!(st["destination"].as_str(), Some(map[name].as_str()));
    }
    let with_mail = src_digest
        .folders
        .values()
        .filter(|f| !f.messages.is_empty())
        .count();
    assert!(folders.len() >= with_mail);
}

/// `btsx status` lists every folder of the job, also one without messages.
#[test]

fn status_lists_folders_without_messages() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "62", "--messages", "20"]);
    assert!(src.digest(USER).folders["Empty"].messages.is_empty());
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    let run = job.migrate(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.folder_map().len(), 13);
    let v = job.status_json();
    let names: Vec<&str> = v["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .filter_map(|f| f["source"].as_str())
        .collect();
    assert!(names.contains(&"Empty"), "status --json folders: {names:?}");
    assert_eq!(names.len(), 13, "{names:?}");
    let out = job
        .base()
        .arg("status")
        .arg(&job.state)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Empty ") && l.contains(" 0/0 ") && l.ends_with("complete")),
        "{text}"
    );
}

/// After an interrupted run and its resumption, or an incremental run, `btsx status` still
/// counts the whole job, not just the last run.
#[test]

fn status_counts_the_whole_job_across_runs() {
    let src = source();
    let dst = destination();
    src.generate(USER, &["--seed", "63", "--messages", "40"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let job = Job::new(&src, &dst, USER, tmp.path());
    job.migrate(&["--json"]).expect_code(0);
    append(&src, "INBOX", 1);
    append(&src, "INBOX", 2);
    let src_digest = src.digest(USER);
    let inbox = src_digest.folders["INBOX"].messages.len() as u64;
    let r = job.migrate(&["--json"]);
    r.expect_code(0);
    assert_eq!(r.copied(), 2);

    let v = job.status_json();
    assert_eq!(v["messages_total"], 42, "the job's messages");
    assert_eq!(v["messages_done"], 42);
    assert_eq!(v["percent"].as_f64(), Some(100.0));
    let st = job.state_json();
    assert_eq!(st["folders"]["INBOX"]["messages"], inbox);
    assert_eq!(st["folders"]["INBOX"]["copied"], inbox);
}
