//! Value parsers for the command line: every option is checked when it is parsed, and a
//! refusal names the value and the form expected. A rejected value is echoed only where it
//! cannot hold a secret (URLs are checked by [`crate::endpoint`], which redacts).

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;

/// `--max-messages-per-second`: a positive, finite number (0 or NaN would silently turn
/// throttling off).
pub(crate) fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a positive number of messages per second (e.g. 5 or 0.5)"
        )),
    }
}

/// A size such as `25MB`, `512KiB` or `1GB` (decimal and binary units; a bare number is bytes).
pub(crate) fn size(s: &str) -> Result<ByteSize, String> {
    let t = s.trim();
    let parsed = t
        .parse::<ByteSize>()
        .ok()
        .filter(|_| t.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    parsed.ok_or_else(|| {
        format!("'{s}' is not a size: give a number and a unit, e.g. 25MB, 512KiB or 1GB")
    })
}

/// A size above zero (`--max-bytes-per-second 0` would stop every transfer).
pub(crate) fn positive_size(s: &str) -> Result<ByteSize, String> {
    let b = size(s)?;
    if b.as_u64() == 0 {
        return Err(format!("'{s}' is zero: give a size above 0, e.g. 2MB"));
    }
    Ok(b)
}

/// `--timeout`: a duration above zero, e.g. `30s` or `2m`.
pub(crate) fn timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!(
            "'{s}' is zero: give a timeout above 0, e.g. 30s or 2m"
        )),
        Err(_) => Err(format!("'{s}' is not a duration: use e.g. 30s, 2m or 1h")),
    }
}

/// `--since` / `--before`: checked now, kept as written (an age like `30days` is resolved
/// when the run starts, and the state file keeps the text).
pub(crate) fn date(s: &str) -> Result<String, String> {
    crate::filter::parse_date(s).map(|_| s.to_string())
}

/// `--include` / `--exclude`: a glob, or `re:` and a regular expression that compiles.
pub(crate) fn pattern(s: &str) -> Result<String, String> {
    crate::filter::Pattern::parse(s).map(|_| s.to_string())
}

/// `--shard K/N`.
pub(crate) fn shard(s: &str) -> Result<String, String> {
    crate::batch::parse_shard(s).map(|_| s.to_string())
}

/// A file that must exist now; `what` names it in the message ("CA file", "password file").
fn existing_file(s: &str, what: &str, hint: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Err(format!(
            "cannot read {what} '{s}': it is a directory; {hint}"
        )),
        Ok(_) => Ok(path),
        Err(e) => Err(format!("cannot read {what} '{s}': {}; {hint}", reason(&e))),
    }
}

pub(crate) fn ca_file(s: &str) -> Result<PathBuf, String> {
    existing_file(s, "CA file", "give a PEM certificate file")
}

pub(crate) fn password_file(s: &str) -> Result<PathBuf, String> {
    existing_file(s, "password file", "fix the path or the file's permissions")
}

pub(crate) fn token_file(s: &str) -> Result<PathBuf, String> {
    existing_file(
        s,
        "token file",
        "fix the path, or start the program that writes it",
    )
}

/// `--state-dir`: created when missing, so it must not be something else.
pub(crate) fn state_dir(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_dir() => Err(format!(
            "state directory '{s}' is not a directory; give a directory (it is created when missing)"
        )),
        _ => Ok(path),
    }
}

/// `btsx status PATH`: a state file or a state directory that exists.
pub(crate) fn status_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(_) => Ok(path),
        Err(e) => Err(format!(
            "no state file or state directory at '{s}' ({}); give the file from --state or the --state-dir of a batch",
            reason(&e)
        )),
    }
}

/// An I/O error without the "(os error 2)" tail.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_positive_and_finite() {
        assert_eq!(rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "abc", ""] {
            let e = rate(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn sizes_need_a_number() {
        assert_eq!(size("25MB").unwrap().as_u64(), 25_000_000);
        assert_eq!(size("1KiB").unwrap().as_u64(), 1024);
        assert!(size("abc").unwrap_err().contains("'abc' is not a size"));
        assert!(size("MB").is_err());
        assert!(positive_size("0").unwrap_err().contains("'0' is zero"));
    }

    #[test]
    fn timeouts_must_be_above_zero() {
        assert_eq!(timeout("2m"), Ok(Duration::from_secs(120)));
        assert!(timeout("0s").unwrap_err().contains("'0s' is zero"));
        assert!(timeout("soon").unwrap_err().contains("'soon'"));
    }
}
