//! What a run looks at: folder patterns (`--include` / `--exclude`) and message dates
//! (`--since` / `--before`).

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use regex::Regex;

/// A glob on decoded folder names (`*` any run of characters, `?` one), or a regex after `re:`.
#[derive(Debug, Clone)]
pub enum Pattern {
    Glob(Regex, String),
    Regex(Regex, String),
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Pattern, String> {
        if let Some(re) = s.strip_prefix("re:") {
            let r = Regex::new(re)
                .map_err(|e| format!("bad regex in '{s}': {}", first_line(&e.to_string())))?;
            return Ok(Pattern::Regex(r, s.to_string()));
        }
        let mut re = String::from("^");
        for c in s.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Regex::new(&re)
            .map(|r| Pattern::Glob(r, s.to_string()))
            .map_err(|e| format!("bad pattern '{s}': {}", first_line(&e.to_string())))
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Glob(r, _) | Pattern::Regex(r, _) => r.is_match(name),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Pattern::Glob(_, s) | Pattern::Regex(_, s) => s,
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Folder selection: a folder is taken when it matches an include (or there are none) and no
/// exclude.
#[derive(Debug, Clone, Default)]
pub struct FolderFilter {
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
}

impl FolderFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<FolderFilter, String> {
        Ok(FolderFilter {
            include: include
                .iter()
                .map(|s| Pattern::parse(s))
                .collect::<Result<_, _>>()?,
            exclude: exclude
                .iter()
                .map(|s| Pattern::parse(s))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn takes(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(name)))
            && !self.exclude.iter().any(|p| p.matches(name))
    }
}

/// Message selection by INTERNALDATE: `since` ≤ date < `before`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DateFilter {
    pub since: Option<DateTime<FixedOffset>>,
    pub before: Option<DateTime<FixedOffset>>,
}

impl DateFilter {
    pub fn takes(&self, date: Option<DateTime<FixedOffset>>) -> bool {
        let Some(d) = date else {
            // No date known: do not drop mail on a guess.
            return true;
        };
        self.since.is_none_or(|s| d >= s) && self.before.is_none_or(|b| d < b)
    }

    pub fn is_active(&self) -> bool {
        self.since.is_some() || self.before.is_some()
    }
}

/// `2024-01-31` (midnight UTC), RFC 3339 (`2024-01-31T12:00:00+01:00`), IMAP style
/// (`31-Jan-2024`), or an age such as `30days`, `2weeks`, `1y` (that long before now).
pub fn parse_date(s: &str) -> Result<DateTime<FixedOffset>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d);
    }
    for fmt in ["%Y-%m-%d", "%d-%b-%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt)
            && let Some(dt) = d.and_hms_opt(0, 0, 0)
        {
            return Ok(Utc.from_utc_datetime(&dt).fixed_offset());
        }
    }
    if let Ok(age) = humantime::parse_duration(t) {
        let age = chrono::Duration::from_std(age).map_err(|_| format!("'{s}' is too long ago"))?;
        return Utc::now()
            .checked_sub_signed(age)
            .map(|d| d.fixed_offset())
            .ok_or_else(|| format!("'{s}' is too long ago"));
    }
    Err(format!(
        "'{s}' is not a date: use 2024-01-31, 2024-01-31T12:00:00Z, 31-Jan-2024 or an age like 30days"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_regexes() {
        let f = FolderFilter::new(&["Archive*".into(), "re:^INBOX$".into()], &["*2019".into()])
            .expect("patterns");
        assert!(f.takes("INBOX"));
        assert!(f.takes("Archive/2020"));
        assert!(!f.takes("Archive/2019"));
        assert!(!f.takes("Sent"));
        assert!(
            FolderFilter::new(&[], &[])
                .expect("empty")
                .takes("anything")
        );
        assert!(Pattern::parse("re:(").is_err());
        assert!(Pattern::parse("a.b").expect("glob").matches("a.b"));
        assert!(!Pattern::parse("a.b").expect("glob").matches("axb"));
    }

    #[test]
    fn dates() {
        let d = parse_date("2024-01-31").expect("iso");
        assert_eq!(d.to_rfc3339(), "2024-01-31T00:00:00+00:00");
        assert_eq!(parse_date("31-Jan-2024").expect("imap"), d);
        assert!(parse_date("2024-01-31T12:00:00+01:00").is_ok());
        let ago = parse_date("30days").expect("age");
        assert!(ago < Utc::now().fixed_offset());
        assert!(parse_date("yesterday-ish").is_err());
        let f = DateFilter {
            since: Some(d),
            before: parse_date("2024-02-01").ok(),
        };
        assert!(f.takes(parse_date("2024-01-31T10:00:00Z").ok()));
        assert!(!f.takes(parse_date("2024-02-01").ok()));
        assert!(!f.takes(parse_date("2023-12-31").ok()));
        assert!(f.takes(None));
    }
}
