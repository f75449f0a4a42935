//! Private Cyrus IMAP instances (scripts/cyrus-server.sh): the suite's second real server.
//! Classic namespace: personal folders are `INBOX.name`, the separator is '.'.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{DEFAULT_USER, Digest, imap_transcript, root, run, script, script_json};

/// The IMAP admin every instance has (it creates the users' INBOXes).
pub const CYRUS_ADMIN: (&str, &str) = ("admin", "admin-pw");

/// A private Cyrus instance, stopped (and its directory removed) on drop. The same surface
/// as [`super::Dovecot`]. Panics when Cyrus cannot start: the suite fails, never skips.
pub struct Cyrus {
    pub imap_port: u16,
    pub imaps_port: u16,
    pub ca_file: PathBuf,
    pub dir: PathBuf,
    users: Vec<(String, String)>,
    _tmp: TempDir,
}

impl Cyrus {
    /// Starts a server with user alice/alice-pw.
    pub fn start_default() -> Cyrus {
        Cyrus::start(&[], None)
    }

    /// Starts a server with these users (default alice/alice-pw); `extra_conf` is imapd.conf
    /// text appended to the generated one.
    pub fn start(users: &[(&str, &str)], extra_conf: Option<&str>) -> Cyrus {
        let tmp = tempfile::Builder::new()
            .prefix("btsx-cyrus-")
            .tempdir()
            .expect("create temp dir for cyrus");
        let dir = tmp.path().to_path_buf();
        let users: Vec<(String, String)> = if users.is_empty() {
            vec![(DEFAULT_USER.0.into(), DEFAULT_USER.1.into())]
        } else {
            users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect()
        };
        let mut cmd = Command::new("bash");
        cmd.arg(script("cyrus-server.sh"))
            .arg("start")
            .arg(&dir)
            .arg("--admin")
            .arg(format!("{}:{}", CYRUS_ADMIN.0, CYRUS_ADMIN.1))
            .arg("--owner-pid")
            .arg(std::process::id().to_string());
        for (u, p) in &users {
            cmd.arg("--user").arg(format!("{u}:{p}"));
        }
        if let Some(text) = extra_conf {
            let path = dir.join("extra.conf");
            std::fs::write(&path, text).expect("write extra.conf");
            cmd.arg("--extra-conf").arg(path);
        }
        let out = run(cmd.stdin(Stdio::null()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "cyrus-server.sh start failed ({}):\n{}\n(install Cyrus with scripts/cyrus-server.sh install, as root)",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let var = |key: &str| -> u16 {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("cyrus-server.sh printed no {key}: {stdout}"))
        };
        Cyrus {
            imap_port: var("IMAP_PORT"),
            imaps_port: var("IMAPS_PORT"),
            ca_file: root().join("tests/fixtures/ca.pem"),
            dir,
            users,
            _tmp: tmp,
        }
    }

    /// `imaps://USER@localhost:IMAPS_PORT`.
    pub fn url(&self, user: &str) -> String {
        format!("imaps://{}@localhost:{}", super::pct(user), self.imaps_port)
    }

    /// `imap://USER@localhost:IMAP_PORT` (plain port, offers STARTTLS).
    pub fn starttls_url(&self, user: &str) -> String {
        format!("imap://{}@localhost:{}", super::pct(user), self.imap_port)
    }

    pub fn password(&self, user: &str) -> String {
        if user == CYRUS_ADMIN.0 {
            return CYRUS_ADMIN.1.into();
        }
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no such test user {user:?}"))
    }

    /// What master and its services wrote to stderr (Cyrus logs to syslog otherwise).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("master.log")).unwrap_or_default())
            .into_owned()
    }

    /// Runs scripts/genmail.py against this server; returns its JSON summary.
    pub fn generate(&self, user: &str, args: &[&str]) -> serde_json::Value {
        script_json(
            "genmail.py",
            self.imap_port,
            user,
            &self.password(user),
            args,
            || format!("--- Cyrus master.log ---\n{}", self.log()),
        )
    }

    /// Runs scripts/digest.py (plain IMAP) against this server.
    pub fn digest(&self, user: &str) -> Digest {
        script_json(
            "digest.py",
            self.imap_port,
            user,
            &self.password(user),
            &[],
            || format!("--- Cyrus master.log ---\n{}", self.log()),
        )
    }

    /// Logs in as `user` over plain IMAP, runs `commands` and returns the transcript (see
    /// [`super::Dovecot::imap`]).
    pub fn imap(&self, user: &str, commands: &[&str]) -> String {
        imap_transcript(self.imap_port, user, &self.password(user), commands)
    }

    /// Stops the server now (idempotent; drop does it anyway).
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(script("cyrus-server.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}
