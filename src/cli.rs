//! The command line: a contract with scripts and users. Completions and the man page are
//! generated from these definitions.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::endpoint::Endpoint;
use crate::engine::AllMail;

mod parse;

const MIGRATE_EXAMPLES: &str = "\
Examples:
  # First migration; passwords from the environment
  BTSX_SRC_PASSWORD=… BTSX_DST_PASSWORD=… \\
    btsx migrate imaps://me@old.example.com imaps://me@new.example.com

  # From cron: password files, JSON events to a log, same state file every night
  btsx migrate imaps://me@old.example.com imaps://me@new.example.com \\
    --src-password-file ~/.old-pw --dst-password-file ~/.new-pw \\
    --state ~/.local/state/btsx/me.json --json >> /var/log/btsx.jsonl

  # Continue an interrupted job
  btsx migrate --resume ~/.local/state/btsx/me.json";

const VERIFY_EXAMPLES: &str = "\
Examples:
  # After a migration: does the destination hold every source message?
  btsx verify imaps://me@old.example.com imaps://me@new.example.com
  # Only some folders, as JSON
  btsx verify imaps://me@old imaps://me@new --include 'Archive*' --json | jq .";

const BATCH_EXAMPLES: &str = "\
Examples:
  # accounts.csv: src,dst,src_password_file,dst_password_file
  btsx batch accounts.csv --accounts 4 --state-dir /srv/btsx/state
  # one of three machines (K counts from 1)
  btsx batch accounts.csv --shard 2/3 --state-dir /shared/btsx
  # Kubernetes Indexed Job: the index comes from the environment (counts from 0)
  btsx batch accounts.csv --shards 3 --shard-from-env JOB_COMPLETION_INDEX \\
    --state-dir /shared/btsx --json
  # where are we, across all machines?
  btsx status /shared/btsx";

#[derive(Debug, Parser)]
#[command(
    name = "btsx",
    version,
    about = "Move a whole mailbox from one IMAP server to another: every folder, every message, flags and dates.",
    long_about = None,
    after_help = "Exit codes: 0 ok, 1 partial, 2 usage, 3 connection/TLS, 4 authentication, 5 state file, 6 locked, 7 destination refused, 8 verify mismatch, 130 interrupted; btsx status: 10 running, 11 interrupted, 12 failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every folder and message from SRC to DST.
    #[command(after_help = MIGRATE_EXAMPLES)]
    Migrate(Box<MigrateArgs>),
    /// Compare SRC and DST folder by folder: what is missing in the destination, what is extra.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(Box<VerifyArgs>),
    /// Migrate many mailboxes listed in a CSV file, several at once; shardable across machines.
    #[command(after_help = BATCH_EXAMPLES)]
    Batch(Box<BatchArgs>),
    /// Show a saved or running job from its state file, or every job in a state directory.
    #[command(
        after_help = "Examples:\n  btsx status ~/.local/state/btsx/me.json\n  btsx status ~/.local/state/btsx/me.json --json | jq .folders"
    )]
    Status(StatusArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  btsx completions bash > ~/.local/share/bash-completion/completions/btsx\n  btsx completions zsh > ~/.zfunc/_btsx\n  btsx completions fish > ~/.config/fish/completions/btsx.fish"
    )]
    Completions(CompletionsArgs),
    /// Print a man page (roff): btsx, or a subcommand's (migrate, verify, …).
    #[command(
        after_help = "Examples:\n  btsx man migrate | man -l -\n  for p in btsx migrate verify batch status completions man; do\n    btsx man $p > ~/.local/share/man/man1/$(btsx man --name $p)\n  done"
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// btsx (the default), or a subcommand: migrate, verify, batch, status, completions, man.
    #[arg(default_value = "btsx")]
    pub page: String,
    /// Print the page's file name (btsx-migrate.1) instead of the page.
    #[arg(long)]
    pub name: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct SideArgs {
    /// Read the source password from this file (first line).
    #[arg(long, value_name = "FILE", value_parser = parse::password_file)]
    pub src_password_file: Option<PathBuf>,
    /// Run this command (sh -c) and use its output as the source password.
    #[arg(long, value_name = "CMD")]
    pub src_password_command: Option<String>,
    /// Read the destination password from this file (first line).
    #[arg(long, value_name = "FILE", value_parser = parse::password_file)]
    pub dst_password_file: Option<PathBuf>,
    /// Run this command (sh -c) and use its output as the destination password.
    #[arg(long, value_name = "CMD")]
    pub dst_password_command: Option<String>,
    /// Read a source OAuth2 access token from this file (re-read on every reconnect).
    #[arg(long, value_name = "FILE", value_parser = parse::token_file, conflicts_with_all = ["src_password_file", "src_password_command"])]
    pub src_oauth2_token_file: Option<PathBuf>,
    /// Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["src_password_file", "src_password_command"])]
    pub src_oauth2_token_command: Option<String>,
    /// Read a destination OAuth2 access token from this file (re-read on every reconnect).
    #[arg(long, value_name = "FILE", value_parser = parse::token_file, conflicts_with_all = ["dst_password_file", "dst_password_command"])]
    pub dst_oauth2_token_file: Option<PathBuf>,
    /// Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["dst_password_file", "dst_password_command"])]
    pub dst_oauth2_token_command: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl TlsArgs {
    /// Connect within min(timeout, 30 s); every read and write within `--timeout`.
    pub fn timeouts(&self) -> crate::imap::Timeouts {
        crate::imap::Timeouts {
            connect: self.timeout.min(std::time::Duration::from_secs(30)),
            io: self.timeout,
        }
    }
}

/// How to reach the servers (shared by migrate, verify and batch).
#[derive(Debug, Args, Clone)]
pub struct TlsArgs {
    /// Trust this CA certificate (PEM) on both sides, besides the system roots.
    #[arg(long, value_name = "PEM", value_parser = parse::ca_file)]
    pub ca_file: Option<PathBuf>,
    /// Trust this CA certificate (PEM) for the source.
    #[arg(long, value_name = "PEM", value_parser = parse::ca_file)]
    pub src_ca_file: Option<PathBuf>,
    /// Trust this CA certificate (PEM) for the destination.
    #[arg(long, value_name = "PEM", value_parser = parse::ca_file)]
    pub dst_ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (dangerous; emits a warning).
    #[arg(long)]
    pub insecure: bool,
    /// Allow imap:// without STARTTLS: the password travels unencrypted (test servers only).
    #[arg(long)]
    pub plaintext: bool,
    /// Connect and I/O timeout, e.g. 30s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse::timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source server: imaps://USER@HOST[:PORT] (TLS) or imap://USER@HOST[:PORT] (STARTTLS).
    #[arg(value_name = "SRC", required_unless_present = "resume")]
    pub src: Option<Endpoint>,
    /// Destination server, same form as SRC.
    #[arg(value_name = "DST", required_unless_present = "resume")]
    pub dst: Option<Endpoint>,

    #[command(flatten)]
    pub side: SideArgs,

    /// Worker threads, each with its own source+destination connection pair.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Reconnect attempts per folder after a dropped connection or timeout, counted in a row:
    /// a message copied in between gives them all back.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Where the resume file goes (default: $XDG_STATE_HOME/btsx/<job>.json).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Continue the job saved in FILE; endpoints and options come from the file.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Connect, scan and plan; change nothing on either server.
    #[arg(long)]
    pub dry_run: bool,
    /// Create the folder tree; copy no messages.
    #[arg(long)]
    pub folders_only: bool,
    /// After each folder, delete from the source the messages whose copy on the destination
    /// was read back and proven the same (content hash and arrival date); the others stay
    /// and are reported (exit 1). The proof costs one download of what is deleted.
    #[arg(long)]
    pub delete_source: bool,
    /// Do not ask before --delete-source (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Leave the flags of messages copied in earlier runs as they are (by default their
    /// flags and keywords follow the source on every run).
    #[arg(long)]
    pub no_flag_sync: bool,
    /// Send at most N messages per second (providers that limit IMAP).
    #[arg(long, value_name = "N", value_parser = parse::rate, allow_negative_numbers = true)]
    pub max_messages_per_second: Option<f64>,
    /// Send at most SIZE per second, e.g. 2MB.
    #[arg(long, value_name = "SIZE", value_parser = parse::positive_size)]
    pub max_bytes_per_second: Option<bytesize::ByteSize>,
    /// Also write the JSON event stream to FILE (for `tail -f`), whatever the display.
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// More detail: protocol-level steps (never secrets).
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// JSON lines on stdout instead of the human display (schema: JSON EVENTS in 'btsx man migrate').
    #[arg(long)]
    pub json: bool,
    /// Only errors and the summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Color in the human display.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Which folders and messages a run looks at (shared by migrate and verify).
#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = parse::pattern)]
    pub include: Vec<String>,
    /// Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable.
    #[arg(long, value_name = "PATTERN", value_parser = parse::pattern)]
    pub exclude: Vec<String>,
    /// Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination's separator). Repeatable.
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_map)]
    pub folder_map: Vec<(String, String)>,
    /// Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days).
    #[arg(long, value_name = "DATE", value_parser = parse::date)]
    pub since: Option<String>,
    /// Only messages that arrived before DATE.
    #[arg(long, value_name = "DATE", value_parser = parse::date)]
    pub before: Option<String>,
    /// Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped.
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    pub max_size: Option<bytesize::ByteSize>,
    /// The source's All Mail (special use \All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AllMail::ArchivedOnly)]
    pub all_mail: AllMail,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Source server, as for migrate.
    #[arg(value_name = "SRC")]
    pub src: Endpoint,
    /// Destination server.
    #[arg(value_name = "DST")]
    pub dst: Endpoint,
    #[command(flatten)]
    pub side: SideArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Also compare every message's content (hash), arrival date and flags and name the
    /// messages the destination altered. Reads every message on both sides.
    #[arg(long)]
    pub deep: bool,
    /// JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only the result.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Color in the human display.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// CSV with a header row: src, dst, and per side one of src_password / src_password_file /
    /// src_password_command / src_oauth2_token_file (same for dst); optional include, exclude,
    /// folder_map (several values separated by ';').
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Migrations run at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub accounts: u16,
    /// Connection pairs per migration.
    #[arg(long, short = 'j', default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// One state file per account goes here (default: $XDG_STATE_HOME/btsx/batch).
    #[arg(long, value_name = "DIR", value_parser = parse::state_dir)]
    pub state_dir: Option<PathBuf>,
    /// Take a stable share of the rows: K/N, K counting from 1 (e.g. 2/3).
    #[arg(long, value_name = "K/N", value_parser = parse::shard, conflicts_with = "shard_from_env")]
    pub shard: Option<String>,
    /// Read the shard index from this environment variable, counting from 0
    /// (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID); needs --shards.
    #[arg(long, value_name = "VAR", requires = "shards")]
    pub shard_from_env: Option<String>,
    /// Number of shards, with --shard-from-env.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
    /// Refuse to start when a row is malformed (default: report it and run the rest).
    #[arg(long)]
    pub strict: bool,
    /// Reconnect attempts per folder, counted in a row (a message copied in between gives them
    /// back).
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Skip messages larger than this.
    #[arg(long, value_name = "SIZE", value_parser = parse::size)]
    pub max_size: Option<bytesize::ByteSize>,
    /// A source's All Mail (special use \All, as on Gmail), as for migrate.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AllMail::ArchivedOnly)]
    pub all_mail: AllMail,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// JSON lines on stdout; every account's events carry "job".
    #[arg(long)]
    pub json: bool,
    /// Only errors and the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Color in the human display.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A job's state file, or a directory of them (a batch's --state-dir).
    #[arg(value_parser = parse::status_path)]
    pub file: PathBuf,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!(
            "'{s}' is not OLD=NEW (e.g. --folder-map 'Sent Items=Sent')"
        )),
    }
}

impl Cli {
    /// What no single value parser can see: options that contradict each other.
    pub fn check(&self) -> Result<(), clap::Error> {
        let (filters, src, dst) = match &self.command {
            // With --resume the job comes from the file; SRC/DST only have to agree with it.
            Command::Migrate(a) if a.resume.is_some() => (&a.filters, None, None),
            Command::Migrate(a) => (&a.filters, a.src.as_ref(), a.dst.as_ref()),
            Command::Verify(a) => (&a.filters, Some(&a.src), Some(&a.dst)),
            _ => return Ok(()),
        };
        let refuse = |message: String| {
            Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message))
        };
        if let (Some(since), Some(before)) = (&filters.since, &filters.before)
            && let (Ok(s), Ok(b)) = (
                crate::filter::parse_date(since),
                crate::filter::parse_date(before),
            )
            && s >= b
        {
            return refuse(format!(
                "--since '{since}' is not before --before '{before}': no message could match; give a --since earlier than --before"
            ));
        }
        if let (Some(s), Some(d)) = (src, dst)
            && s == d
        {
            return refuse(format!(
                "SRC and DST are the same mailbox ({}): give two different accounts",
                s.url()
            ));
        }
        Ok(())
    }
}
