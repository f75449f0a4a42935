//! Passwords: where they come from, and a wrapper that keeps them out of logs.
//!
//! [`Secret`] has no `Display` and a redacted `Debug`, so a password cannot
//! end up in a log line or an error by accident, and it overwrites its memory
//! when dropped. Wiping is best effort: the OS environment, pipes and the
//! terminal layer may still hold copies we do not control.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{Ordering, compiler_fence};

/// A password or other credential. Use [`Secret::expose`] only where the
/// value is actually sent to a server.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The plain value. Never format it into messages.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: only NUL bytes are written, which keeps the String valid UTF-8.
        wipe(unsafe { self.0.as_mut_vec() });
    }
}

/// Overwrites every byte of the allocation, including spare capacity left
/// behind by truncation. Volatile writes so the compiler cannot drop them as
/// dead stores before the deallocation.
fn wipe(v: &mut Vec<u8>) {
    let ptr = v.as_mut_ptr();
    for i in 0..v.capacity() {
        // SAFETY: i < capacity, so the write stays inside the allocation.
        unsafe { ptr.add(i).write_volatile(0) };
    }
    compiler_fence(Ordering::SeqCst);
}

/// Bytes that may hold a secret and are not yet a [`Secret`]; wiped on drop.
struct WipeOnDrop(Vec<u8>);

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Where to get a password.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Name of an environment variable.
    Env(String),
    /// A file holding the password (one trailing newline is ignored).
    File(PathBuf),
    /// A shell command (run with `sh -c`) that prints the password.
    Command(String),
    /// Ask on the terminal; `label` names the account, e.g. "source server".
    Prompt { label: String },
}

/// Why no password could be obtained: one line that says what to do.
/// Never contains the secret itself.
#[derive(Debug)]
pub struct SecretError(String);

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SecretError {}

/// Gets the password from `source`.
pub fn resolve(source: &SecretSource) -> Result<Secret, SecretError> {
    match source {
        SecretSource::Env(name) => from_env_value(name, std::env::var(name)),
        SecretSource::File(path) => from_file(path),
        SecretSource::Command(cmd) => from_command(cmd),
        SecretSource::Prompt { label } => from_prompt(label),
    }
}

/// True if group or others may read `path` (unix mode & 0o044), so the
/// caller can warn. False when the file cannot be inspected or on non-unix.
pub fn file_is_group_or_world_readable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// What the user can do instead, guessed from a variable name or prompt label
/// ("BTSX_SRC_PASSWORD", "source server"); names both sides when unsure.
fn hint(context: &str) -> &'static str {
    let c = context.to_ascii_lowercase();
    if c.contains("src") || c.contains("source") {
        "set BTSX_SRC_PASSWORD, or use --src-password-file / --src-password-command"
    } else if c.contains("dst") || c.contains("dest") || c.contains("target") {
        "set BTSX_DST_PASSWORD, or use --dst-password-file / --dst-password-command"
    } else {
        "set BTSX_SRC_PASSWORD / BTSX_DST_PASSWORD, or use --src-password-file / --src-password-command \
         (--dst-… for the destination)"
    }
}

/// Split from [`resolve`] so tests need not mutate the process environment.
fn from_env_value(
    name: &str,
    value: Result<String, std::env::VarError>,
) -> Result<Secret, SecretError> {
    match value {
        Ok(v) => {
            let secret = Secret(v);
            if secret.0.is_empty() {
                return Err(SecretError(format!(
                    "environment variable {name} is empty: put the password in it, or {}",
                    hint(name)
                )));
            }
            Ok(secret)
        }
        Err(std::env::VarError::NotPresent) => Err(SecretError(format!(
            "environment variable {name} is not set: {}",
            hint(name)
        ))),
        Err(std::env::VarError::NotUnicode(raw)) => {
            #[cfg(unix)]
            drop(WipeOnDrop(std::os::unix::ffi::OsStringExt::into_vec(raw)));
            #[cfg(not(unix))]
            drop(raw);
            Err(SecretError(format!(
                "environment variable {name} is not valid UTF-8: fix its value, or {}",
                hint(name)
            )))
        }
    }
}

fn from_file(path: &Path) -> Result<Secret, SecretError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        SecretError(format!(
            "cannot read password file '{shown}': {e}; fix the path or the file's permissions"
        ))
    })?;
    let mut secret = bytes_to_secret(bytes).ok_or_else(|| {
        SecretError(format!(
            "password file '{shown}' is not valid UTF-8 text: save the password as UTF-8"
        ))
    })?;
    // Editors add a final newline; strip exactly one so trailing spaces in a
    // password survive.
    let s = &mut secret.0;
    if s.ends_with("\r\n") {
        s.truncate(s.len() - 2);
    } else if s.ends_with('\n') {
        s.truncate(s.len() - 1);
    }
    if s.is_empty() {
        return Err(SecretError(format!(
            "password file '{shown}' is empty: put the password in it"
        )));
    }
    Ok(secret)
}

/// UTF-8 bytes to a [`Secret`] without copying; invalid bytes are wiped.
fn bytes_to_secret(bytes: Vec<u8>) -> Option<Secret> {
    match String::from_utf8(bytes) {
        Ok(s) => Some(Secret(s)),
        Err(e) => {
            drop(WipeOnDrop(e.into_bytes()));
            None
        }
    }
}

fn from_command(cmd: &str) -> Result<Secret, SecretError> {
    // The command line is not echoed in errors: people do write
    // `echo mypassword` there.
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| SecretError(format!("cannot run the password command with sh: {e}")))?;
    let mut stdout = WipeOnDrop(out.stdout);
    let stderr = WipeOnDrop(out.stderr);
    let stderr_note = stderr_note(&stderr.0, &stdout.0);

    if !out.status.success() {
        return Err(SecretError(format!(
            "the password command {}{stderr_note}; fix the command or use another password source",
            describe_status(&out.status)
        )));
    }
    let mut secret = bytes_to_secret(std::mem::take(&mut stdout.0)).ok_or_else(|| {
        SecretError(format!(
            "the password command printed something that is not UTF-8 text{stderr_note}; fix the command"
        ))
    })?;
    let s = &mut secret.0;
    // In place, so no untracked copy of the password is left behind.
    s.truncate(s.trim_end().len());
    let leading = s.len() - s.trim_start().len();
    s.drain(..leading);
    if s.is_empty() {
        return Err(SecretError(format!(
            "the password command printed nothing on stdout{stderr_note}; fix the command"
        )));
    }
    Ok(secret)
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("failed with exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by signal {sig}");
        }
    }
    format!("failed ({status})")
}

/// " (stderr: first line)" or "". The line is hidden if it contains what the
/// command printed on stdout, which may be the password.
fn stderr_note(stderr: &[u8], stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return String::new();
    };
    let printed = String::from_utf8_lossy(stdout);
    let printed = printed.trim();
    if !printed.is_empty() && line.contains(printed) {
        return " (its error output is not shown because it repeats its standard output)"
            .to_owned();
    }
    let mut shown = String::new();
    for c in line.chars().take(200) {
        if c.is_control() {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    format!(" (stderr: {shown})")
}

fn from_prompt(label: &str) -> Result<Secret, SecretError> {
    if !std::io::stdin().is_terminal() {
        return Err(SecretError(format!(
            "no password for the {label}: {} (stdin is not a terminal, so btsx cannot ask)",
            hint(label)
        )));
    }
    let secret = rpassword::prompt_password(format!("Password for {label}: "))
        .map(Secret)
        .map_err(|e| {
            SecretError(format!(
                "cannot read the password for the {label} from the terminal: {e}; {}",
                hint(label)
            ))
        })?;
    if secret.0.is_empty() {
        return Err(SecretError(format!(
            "empty password entered for the {label}: type it again, or {}",
            hint(label)
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn ok(source: &SecretSource) -> String {
        match resolve(source) {
            Ok(s) => s.expose().to_owned(),
            Err(e) => panic!("resolve({source:?}) failed: {e}"),
        }
    }

    fn err(source: &SecretSource) -> String {
        match resolve(source) {
            Ok(s) => panic!(
                "resolve({source:?}) unexpectedly gave {} bytes",
                s.expose().len()
            ),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "error is not one line: {msg:?}");
                msg
            }
        }
    }

    fn cmd(c: &str) -> SecretSource {
        SecretSource::Command(c.to_owned())
    }

    fn file_with(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn debug_is_redacted_and_expose_works() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2");
        let c = s.clone();
        drop(s);
        assert_eq!(c.expose(), "hunter2", "clone owns its own copy");
        assert_eq!(Secret::from(String::from("x")).expose(), "x");
    }

    #[test]
    fn wipe_zeroes_contents_and_spare_capacity() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"secret-password!");
        v.truncate(6);
        wipe(&mut v);
        assert_eq!(v, [0u8; 6]);
        // SAFETY: wipe wrote every byte up to capacity, so they are initialized.
        let spare: Vec<u8> = v
            .spare_capacity_mut()
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        assert!(spare.iter().all(|&b| b == 0), "{spare:?}");
    }

    #[test]
    fn env_values() {
        use std::env::VarError;
        let s = from_env_value("BTSX_SRC_PASSWORD", Ok("pw".into())).unwrap();
        assert_eq!(s.expose(), "pw");
        // Surrounding whitespace in a variable is kept: it may be part of the password.
        let s = from_env_value("X", Ok(" pw ".into())).unwrap();
        assert_eq!(s.expose(), " pw ");

        let e = from_env_value("BTSX_SRC_PASSWORD", Err(VarError::NotPresent)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable BTSX_SRC_PASSWORD is not set: set BTSX_SRC_PASSWORD, \
             or use --src-password-file / --src-password-command"
        );
        let e = from_env_value("BTSX_DST_PASSWORD", Ok(String::new())).unwrap_err();
        assert!(e.to_string().contains("BTSX_DST_PASSWORD is empty"), "{e}");
        assert!(e.to_string().contains("--dst-password-file"), "{e}");

        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let raw = std::ffi::OsString::from_vec(b"pw\xff".to_vec());
            let e = from_env_value("MY_PW", Err(VarError::NotUnicode(raw))).unwrap_err();
            assert!(e.to_string().contains("MY_PW is not valid UTF-8"), "{e}");
            assert!(
                e.to_string()
                    .contains("BTSX_SRC_PASSWORD / BTSX_DST_PASSWORD"),
                "{e}"
            );
        }
    }

    #[test]
    fn env_through_resolve() {
        // PATH is set in any sane test environment; avoids set_var, which is
        // unsafe with tests running in parallel threads.
        if std::env::var("PATH").is_ok_and(|p| !p.is_empty()) {
            assert!(!ok(&SecretSource::Env("PATH".into())).is_empty());
        }
        let e = err(&SecretSource::Env("BTSX_TEST_SURELY_UNSET_7F3A9".into()));
        assert!(e.contains("BTSX_TEST_SURELY_UNSET_7F3A9 is not set"), "{e}");
    }

    #[test]
    fn file_strips_one_trailing_newline() {
        let cases: &[(&[u8], &str)] = &[
            (b"pw", "pw"),
            (b"pw\n", "pw"),
            (b"pw\r\n", "pw"),
            (b"pw\n\n", "pw\n"),
            (b" pw \n", " pw "),
            (b"p\nw", "p\nw"),
            (b"p\xc3\xa4w\n", "päw"),
        ];
        for (content, want) in cases {
            let f = file_with(content);
            assert_eq!(
                ok(&SecretSource::File(f.path().into())),
                *want,
                "{content:?}"
            );
        }
    }

    #[test]
    fn file_errors() {
        for content in [&b""[..], b"\n", b"\r\n"] {
            let f = file_with(content);
            let e = err(&SecretSource::File(f.path().into()));
            assert!(e.contains("is empty"), "{e}");
            assert!(e.contains(&f.path().display().to_string()), "{e}");
        }

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let e = err(&SecretSource::File(missing.clone()));
        assert!(
            e.starts_with(&format!(
                "cannot read password file '{}'",
                missing.display()
            )),
            "{e}"
        );
        assert!(e.contains("No such file or directory"), "{e}");

        let e = err(&SecretSource::File(dir.path().into()));
        assert!(e.contains("cannot read password file"), "{e}");

        let f = file_with(b"secret\xff\xfe");
        let e = err(&SecretSource::File(f.path().into()));
        assert!(e.contains("not valid UTF-8"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let f = file_with(b"pw");
        let set = |mode| {
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o600);
        assert!(!file_is_group_or_world_readable(f.path()));
        set(0o400);
        assert!(!file_is_group_or_world_readable(f.path()));
        set(0o640);
        assert!(file_is_group_or_world_readable(f.path()));
        set(0o604);
        assert!(file_is_group_or_world_readable(f.path()));
        set(0o622);
        assert!(
            !file_is_group_or_world_readable(f.path()),
            "write-only bits do not count"
        );
        assert!(!file_is_group_or_world_readable(Path::new(
            "/nonexistent/btsx/pw"
        )));
    }

    #[test]
    fn command_output_is_trimmed() {
        assert_eq!(ok(&cmd("printf 'pw\\n'")), "pw");
        assert_eq!(ok(&cmd("printf '  p w \\r\\n\\n'")), "p w");
        assert_eq!(ok(&cmd("echo pä; echo warning >&2")), "pä");
        assert_eq!(ok(&cmd("printf '%s' \"$0\" | head -c 2")), "sh");
    }

    #[test]
    fn command_stdin_is_null() {
        // `cat` would hang on an inherited terminal; with /dev/null it prints nothing.
        let e = err(&cmd("cat"));
        assert!(e.contains("printed nothing"), "{e}");
    }

    #[test]
    fn command_failures() {
        let e = err(&cmd("exit 3"));
        assert_eq!(
            e,
            "the password command failed with exit code 3; fix the command or use another password source"
        );
        let e = err(&cmd(
            "echo 'vault: access denied' >&2; echo second line >&2; exit 1",
        ));
        assert!(
            e.contains("exit code 1 (stderr: vault: access denied)"),
            "{e}"
        );
        assert!(!e.contains("second line"), "{e}");
        let e = err(&cmd("printf '\\n  \\n  first real line\\n' >&2; exit 2"));
        assert!(e.contains("(stderr: first real line)"), "{e}");
        let e = err(&cmd("printf 'bad\\033[31m\\n' >&2; exit 2"));
        assert!(!e.contains('\u{1b}'), "control characters escaped: {e:?}");
        let e = err(&cmd("true"));
        assert!(e.contains("printed nothing on stdout"), "{e}");
        let e = err(&cmd("printf '  \\n'; echo 'no entry' >&2"));
        assert!(
            e.contains("printed nothing on stdout (stderr: no entry)"),
            "{e}"
        );
        let e = err(&cmd("printf 'pw\\377'"));
        assert!(e.contains("not UTF-8"), "{e}");
        assert!(!e.contains("pw"), "{e}");
        let e = err(&cmd("btsx-no-such-command-xyz"));
        assert!(
            e.contains("exit code 127") && e.contains("not found"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn command_killed_by_signal() {
        let e = err(&cmd("kill -9 $$"));
        assert!(e.contains("killed by signal 9"), "{e}");
    }

    #[test]
    fn command_failure_never_shows_the_secret() {
        // The secret is printed on stdout and the command fails: neither the
        // secret nor the command text (which contains it) may appear.
        let e = err(&cmd("echo s3cr3t-Value; echo 'lookup failed' >&2; exit 1"));
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(
            e.contains("exit code 1") && e.contains("lookup failed"),
            "{e}"
        );
        // A stderr line repeating stdout is hidden too.
        let e = err(&cmd(
            "echo s3cr3t-Value; echo 'got s3cr3t-Value but expired' >&2; exit 1",
        ));
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("not shown"), "{e}");
    }

    #[test]
    fn prompt_without_terminal() {
        if std::io::stdin().is_terminal() {
            return; // Would block on a real prompt.
        }
        let e = err(&SecretSource::Prompt {
            label: "source server".into(),
        });
        assert!(
            e.starts_with("no password for the source server: set BTSX_SRC_PASSWORD"),
            "{e}"
        );
        let e = err(&SecretSource::Prompt {
            label: "destination server".into(),
        });
        assert!(
            e.contains("BTSX_DST_PASSWORD") && e.contains("--dst-password-command"),
            "{e}"
        );
        let e = err(&SecretSource::Prompt {
            label: "account".into(),
        });
        assert!(e.contains("BTSX_SRC_PASSWORD / BTSX_DST_PASSWORD"), "{e}");
    }

    #[test]
    fn secret_error_is_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(SecretError("x".into()));
        assert_eq!(e.to_string(), "x");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_debug_never_shows_value(s in any::<String>()) {
            prop_assert_eq!(format!("{:?}", Secret::new(s)), "Secret(***)");
        }

        #[test]
        fn prop_file_round_trip(s in any::<String>(), crlf in any::<bool>()) {
            prop_assume!(!s.is_empty() && !s.ends_with('\r'));
            let f = file_with(format!("{s}{}", if crlf { "\r\n" } else { "\n" }).as_bytes());
            let got = resolve(&SecretSource::File(f.path().into())).unwrap();
            prop_assert_eq!(got.expose(), s.as_str());
        }

        #[test]
        fn prop_command_round_trip(s in "\\PC*") {
            let want = s.trim();
            prop_assume!(!want.is_empty());
            let f = file_with(s.as_bytes());
            let c = format!("cat '{}'", f.path().display());
            let got = resolve(&cmd(&c)).unwrap();
            prop_assert_eq!(got.expose(), want);
        }

        #[test]
        fn prop_failing_command_never_leaks(pw in "[A-Za-z0-9]{12,24}", code in 1u8..=125) {
            let pw = format!("PW{pw}");
            let f = file_with(pw.as_bytes());
            let c = format!("cat '{p}'; cat '{p}' >&2; exit {code}", p = f.path().display());
            let e = resolve(&cmd(&c)).unwrap_err().to_string();
            prop_assert!(!e.contains(&pw), "{}", e);
            prop_assert!(e.contains(&format!("exit code {code}")), "{}", e);
        }
    }
}
