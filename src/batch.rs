//! `btsx batch FILE`: many mailboxes from a CSV, several at once, each an ordinary migrate
//! job with its own state file; `--shard K/N` takes a stable share of the rows so the same
//! command spreads over machines through an existing scheduler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::endpoint::Endpoint;
use crate::engine::{Engine, Options, Server};
use crate::event::{AccountReport, Event, RunStatus};
use crate::imap::{Auth, Credentials, TlsOptions};
use crate::secret::{self, Secret, SecretSource};
use crate::state::{JobIdentity, StateError, StateStore};

/// Where one side's secret comes from, per row.
#[derive(Debug, Clone)]
pub enum CredSpec {
    Password(Secret),
    PasswordFile(PathBuf),
    PasswordCommand(String),
    OAuth2File(PathBuf),
    OAuth2Command(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line in the file.
    pub line: usize,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub src_cred: CredSpec,
    pub dst_cred: CredSpec,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub folder_map: Vec<(String, String)>,
}

impl Row {
    /// The account's name in events and tables.
    pub fn job(&self) -> String {
        format!(
            "{}@{}→{}@{}",
            self.src.user, self.src.host, self.dst.user, self.dst.host
        )
    }
}

/// A row that could not be read.
#[derive(Debug, Clone)]
pub struct BadRow {
    pub line: usize,
    pub message: String,
    /// The row's `src` cell as written, for sharding rows that cannot be parsed.
    pub src_raw: String,
}

/// The parsed file.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub bad: Vec<BadRow>,
    /// Some row carries a password in clear (`src_password` / `dst_password`).
    pub has_passwords: bool,
}

/// The 1-based line where the record starting at byte `pos` really begins: the reader's
/// position includes the blank and comment lines before it.
fn line_at(text: &str, pos: usize) -> usize {
    let mut at = pos.min(text.len());
    loop {
        let rest = &text[at..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = rest[..end].trim_end_matches(['\r', '\n']);
        if end == 0 || !(line.trim().is_empty() || line.starts_with('#')) {
            break;
        }
        at += end;
    }
    text[..at].matches('\n').count() + 1
}

/// Read the CSV: header row, `#` comments and blank lines allowed. Good rows and bad rows
/// (with their line numbers) come back separately.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for required in ["src", "dst"] {
        if !headers.iter().any(|h| h == required) {
            return Err(format!(
                "the header row has no '{required}' column (expected: src,dst,src_password_file,dst_password_file,…)"
            ));
        }
    }
    const KNOWN: &[&str] = &[
        "src",
        "dst",
        "src_password",
        "src_password_file",
        "src_password_command",
        "src_oauth2_token_file",
        "src_oauth2_token_command",
        "dst_password",
        "dst_password_file",
        "dst_password_command",
        "dst_oauth2_token_file",
        "dst_oauth2_token_command",
        "include",
        "exclude",
        "folder_map",
    ];
    if let Some(unknown) = headers.iter().find(|h| !KNOWN.contains(&h.as_str())) {
        return Err(format!(
            "unknown column '{unknown}' in the header row (known: {})",
            KNOWN.join(", ")
        ));
    }
    let mut out = Parsed::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(text, p.byte() as usize));
                out.bad.push(BadRow {
                    line,
                    message: format!("unreadable row: {e}"),
                    src_raw: String::new(),
                });
                continue;
            }
        };
        let line = rec
            .position()
            .map_or(0, |p| line_at(text, p.byte() as usize));
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |name: &str| -> Option<String> {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| rec.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if get("src_password").is_some() || get("dst_password").is_some() {
            out.has_passwords = true;
        }
        let src_raw = get("src").unwrap_or_default();
        match row(line, &get) {
            Ok(r) => {
                // Two rows for one job would fight over one state file.
                let key = format!("{}\n{}", r.src.url(), r.dst.url());
                if let Some(first) = seen.get(&key) {
                    out.bad.push(BadRow {
                        line,
                        message: format!("same source and destination as line {first}"),
                        src_raw,
                    });
                } else {
                    seen.insert(key, line);
                    out.rows.push(r);
                }
            }
            Err(message) => out.bad.push(BadRow {
                line,
                message,
                src_raw,
            }),
        }
    }
    Ok(out)
}

fn row(line: usize, get: &dyn Fn(&str) -> Option<String>) -> Result<Row, String> {
    let ep = |name: &str| -> Result<Endpoint, String> {
        let v = get(name).ok_or_else(|| format!("no {name}"))?;
        Endpoint::parse(&v).map_err(|e| format!("{name}: {e}"))
    };
    let cred = |side: &str| -> Result<CredSpec, String> {
        let mut found = Vec::new();
        if let Some(v) = get(&format!("{side}_password")) {
            found.push(CredSpec::Password(Secret::new(v)));
        }
        if let Some(v) = get(&format!("{side}_password_file")) {
            found.push(CredSpec::PasswordFile(PathBuf::from(v)));
        }
        if let Some(v) = get(&format!("{side}_password_command")) {
            found.push(CredSpec::PasswordCommand(v));
        }
        if let Some(v) = get(&format!("{side}_oauth2_token_file")) {
            found.push(CredSpec::OAuth2File(PathBuf::from(v)));
        }
        if let Some(v) = get(&format!("{side}_oauth2_token_command")) {
            found.push(CredSpec::OAuth2Command(v));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(format!(
                "no {side} credentials: fill one of {side}_password_file, {side}_password_command, {side}_password, {side}_oauth2_token_file"
            )),
            _ => Err(format!("more than one {side} credential column is filled")),
        }
    };
    let list = |name: &str| -> Vec<String> {
        get(name)
            .map(|v| {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let folder_map = list("folder_map")
        .into_iter()
        .map(|m| match m.split_once('=') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
            _ => Err(format!("folder_map entry '{m}' is not OLD=NEW")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Row {
        line,
        src: ep("src")?,
        dst: ep("dst")?,
        src_cred: cred("src")?,
        dst_cred: cred("dst")?,
        include: list("include"),
        exclude: list("exclude"),
        folder_map,
    })
}

/// FNV-1a of the canonical source URL: a row's shard never changes when rows are added.
pub fn shard_of(row_src: &Endpoint, shards: u32) -> u32 {
    shard_of_text(&row_src.url(), shards)
}

/// The same for a row that could not be parsed (by its `src` cell as written), so each bad
/// row is reported by one shard only.
pub fn shard_of_text(text: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(shards.max(1))) as u32
}

/// `K/N` with K counting from 1.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard '{s}' is not K/N (e.g. 1/3)"))?;
    let k: u32 = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard '{s}': K is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard '{s}': N is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard '{s}': need 1 ≤ K ≤ N"));
    }
    Ok((k, n))
}

fn resolve(spec: &CredSpec, user: &str) -> Result<Credentials, String> {
    let auth = match spec {
        CredSpec::Password(s) => Auth::Password(s.clone()),
        CredSpec::PasswordFile(p) => Auth::Password(
            secret::resolve(&SecretSource::File(p.clone())).map_err(|e| e.to_string())?,
        ),
        CredSpec::PasswordCommand(c) => Auth::Password(
            secret::resolve(&SecretSource::Command(c.clone())).map_err(|e| e.to_string())?,
        ),
        CredSpec::OAuth2File(p) => Auth::OAuth2(SecretSource::File(p.clone())),
        CredSpec::OAuth2Command(c) => Auth::OAuth2(SecretSource::Command(c.clone())),
    };
    Ok(Credentials {
        user: user.to_string(),
        auth,
    })
}

pub struct BatchConfig {
    pub accounts: usize,
    pub state_dir: PathBuf,
    pub options: Options,
    pub src_tls: TlsOptions,
    pub dst_tls: TlsOptions,
}

/// Makes the sink an account's engine reports to.
pub type SinkFor<'a> = &'a (dyn Fn(&Row) -> Arc<dyn crate::render::Sink> + Sync);

/// Run every row, `accounts` at a time. Returns one report per row, in file order.
pub fn run(
    rows: &[Row],
    cfg: &BatchConfig,
    sink_for: SinkFor<'_>,
    cancel: &Arc<AtomicBool>,
) -> Vec<AccountReport> {
    let next = Mutex::new(0usize);
    let reports: Mutex<Vec<AccountReport>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..cfg.accounts.max(1) {
            scope.spawn(|| {
                loop {
                    if cancel.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = {
                        let Ok(mut n) = next.lock() else { break };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(row) = rows.get(i) else { break };
                    let rep = run_account(row, cfg, sink_for(row), cancel);
                    if let Ok(mut v) = reports.lock() {
                        v.push(rep);
                    }
                }
            });
        }
    });
    let mut v = reports.into_inner().unwrap_or_default();
    // Rows an interruption kept from starting still belong in the report.
    let started = next.into_inner().unwrap_or(rows.len()).min(rows.len());
    for row in &rows[started..] {
        v.push(AccountReport {
            job: row.job(),
            line: row.line,
            status: RunStatus::Interrupted,
            exit_code: crate::exit::INTERRUPTED,
            messages_copied: 0,
            messages_failed: 0,
            bytes_copied: 0,
            duration_ms: 0,
            state_file: None,
            error: Some("not started".into()),
        });
    }
    v.sort_by_key(|r| r.line);
    v
}

fn run_account(
    row: &Row,
    cfg: &BatchConfig,
    sink: Arc<dyn crate::render::Sink>,
    cancel: &Arc<AtomicBool>,
) -> AccountReport {
    let started = Instant::now();
    let job = JobIdentity {
        source: row.src.clone(),
        destination: row.dst.clone(),
        folder_map: row.folder_map.clone(),
        max_size: cfg.options.max_size,
        include: row.include.clone(),
        exclude: row.exclude.clone(),
        since: None,
        before: None,
        all_mail: cfg.options.all_mail,
    };
    let state_path = cfg.state_dir.join(job.file_name());
    let failed = |message: String, code: i32| {
        sink.emit(&Event::Error {
            message: message.clone(),
            folder: None,
            side: None,
        });
        sink.emit(&Event::Summary(crate::event::Summary::early_error(
            message.clone(),
            code,
        )));
        AccountReport {
            job: row.job(),
            line: row.line,
            status: RunStatus::Error,
            exit_code: code,
            messages_copied: 0,
            messages_failed: 0,
            bytes_copied: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            state_file: Some(state_path.display().to_string()),
            error: Some(message),
        }
    };
    let creds = resolve(&row.src_cred, &row.src.user)
        .and_then(|s| resolve(&row.dst_cred, &row.dst.user).map(|d| (s, d)));
    let (src_creds, dst_creds) = match creds {
        Ok(c) => c,
        Err(e) => return failed(format!("line {}: {e}", row.line), crate::exit::USAGE),
    };
    let folders = match crate::filter::FolderFilter::new(&row.include, &row.exclude) {
        Ok(f) => f,
        Err(e) => return failed(format!("line {}: {e}", row.line), crate::exit::USAGE),
    };
    let store = match StateStore::open(&state_path, &job) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let code = match e {
                StateError::Locked(_) => crate::exit::LOCKED,
                StateError::Io(_) => crate::exit::USAGE,
                _ => crate::exit::STATE,
            };
            return failed(e.to_string(), code);
        }
    };
    let mut options = cfg.options.clone();
    options.folder_map = row.folder_map.clone();
    options.folders = folders;
    let engine = Engine::new(
        Server {
            endpoint: row.src.clone(),
            creds: src_creds,
            tls: cfg.src_tls.clone(),
        },
        Server {
            endpoint: row.dst.clone(),
            creds: dst_creds,
            tls: cfg.dst_tls.clone(),
        },
        options,
        sink,
        cancel.clone(),
        Some(store),
    );
    let s = engine.run().summary;
    AccountReport {
        job: row.job(),
        line: row.line,
        status: s.status,
        exit_code: s.exit_code,
        messages_copied: s.messages_copied,
        messages_failed: s.messages_failed,
        bytes_copied: s.bytes_copied,
        duration_ms: started.elapsed().as_millis() as u64,
        state_file: s.state_file,
        error: s.error,
    }
}

/// Does this file hold passwords in clear, and can others read it?
pub fn exposes_passwords(path: &Path, parsed: &Parsed) -> bool {
    parsed.has_passwords && secret::file_is_group_or_world_readable(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\
# accounts to move
src,dst,src_password_file,dst_password_file,include
imaps://a@old.example,imaps://a@new.example,/pw/a,/pw/a2,INBOX;Archive*

imaps://b@old.example,imaps://b@new.example,/pw/b,/pw/b2,
http://c@old.example,imaps://c@new.example,/pw/c,/pw/c2,
imaps://d@old.example,imaps://d@new.example,,/pw/d2,
";

    #[test]
    fn rows_comments_and_errors_with_line_numbers() {
        let Parsed { rows, bad, .. } = parse(CSV).expect("parse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].include, ["INBOX", "Archive*"]);
        assert_eq!(rows[0].line, 3);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 6);
        // CRLF and a comment before a row do not shift line numbers.
        let crlf = CSV.replace('\n', "\r\n");
        let p = parse(&crlf).expect("parse");
        assert_eq!(p.rows[0].line, 3);
        assert_eq!(p.rows[1].line, 5);
        assert_eq!(p.bad[0].line, 6);
        assert!(
            bad[0].message.contains("unknown scheme"),
            "{}",
            bad[0].message
        );
        assert_eq!(bad[1].line, 7);
        assert!(bad[1].message.contains("no src credentials"));
        assert!(parse("foo,bar\n1,2\n").is_err());
    }

    #[test]
    fn shards_cover_every_row_once_and_are_stable() {
        let eps: Vec<Endpoint> = (0..200)
            .map(|i| Endpoint::parse(&format!("imaps://u{i}@h.example")).expect("url"))
            .collect();
        for n in 1..=5 {
            let mut count = vec![0; eps.len()];
            for k in 0..n {
                for (i, e) in eps.iter().enumerate() {
                    if shard_of(e, n) == k {
                        count[i] += 1;
                    }
                }
            }
            assert!(count.iter().all(|&c| c == 1), "N={n}");
        }
        // Adding rows moves nothing: a row's shard depends on its own URL only.
        let before: Vec<u32> = eps.iter().map(|e| shard_of(e, 3)).collect();
        let mut more = eps.clone();
        more.push(Endpoint::parse("imaps://new@h.example").expect("url"));
        let after: Vec<u32> = more.iter().take(200).map(|e| shard_of(e, 3)).collect();
        assert_eq!(before, after);
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
    }
}
