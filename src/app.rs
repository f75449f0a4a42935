//! Wiring: command line → credentials, state, renderers → engine → exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cli::{
    BatchArgs, Cli, ColorChoice, Command, FilterArgs, MigrateArgs, SideArgs, TlsArgs, VerifyArgs,
};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Options, Server, endpoint_info};
use crate::event::{Event, FORMAT_VERSION, Summary};
use crate::exit;
use crate::filter::{DateFilter, FolderFilter};
use crate::imap::{Auth, Credentials, TlsOptions};
use crate::render::human::{HumanOptions, HumanSink};
use crate::render::json::JsonSink;
use crate::render::{Sink, Tee};
use crate::secret::{self, SecretSource};
use crate::state::{self, JobIdentity, SavedOptions, StateError, StateStore};

pub fn run() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)))
        .and_then(|(c, m)| c.check().map(|()| (c, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => return command_line_error(e),
    };
    // Options with a default: typed, or defaulted (then a resumed job keeps its own)?
    let typed = |name: &str| {
        matches
            .subcommand_matches("migrate")
            .and_then(|m| m.value_source(name))
            == Some(clap::parser::ValueSource::CommandLine)
    };
    let given = Given {
        jobs: typed("jobs"),
        retries: typed("retries"),
        timeout: typed("timeout"),
    };
    match cli.command {
        Command::Migrate(args) => migrate(*args, given),
        Command::Verify(args) => verify(*args),
        Command::Batch(args) => batch(*args),
        Command::Status(args) => {
            let json = args.json;
            crate::status::run(args).unwrap_or_else(|f| {
                let sink = make_sink(json, false, ColorChoice::Auto, false, None);
                match sink {
                    Ok(sink) => Early {
                        sink: &*sink,
                        src: None,
                        dst: None,
                    }
                    .fail_as("status", f.message, f.code),
                    Err(_) => f.code,
                }
            })
        }
        Command::Completions(args) => {
            crate::render::write_stdout(&crate::docs::completions(args.shell))
        }
        Command::Man(args) => man(&args),
    }
}

/// `btsx man [PAGE]`: the page, or with `--name` its file name.
fn man(args: &crate::cli::ManArgs) -> i32 {
    let Some(page) = crate::docs::man_page(&args.page) else {
        let names: Vec<String> = crate::docs::man_pages()
            .into_iter()
            .map(|(f, _)| f.trim_end_matches(".1").to_string())
            .collect();
        eprintln!(
            "error: no man page '{}'; give one of {}",
            args.page,
            names.join(", ")
        );
        return exit::USAGE;
    };
    if args.name {
        let stem = args.page.trim_end_matches(".1");
        let name = if stem.starts_with("btsx") {
            format!("{stem}.1\n")
        } else {
            format!("btsx-{stem}.1\n")
        };
        return crate::render::write_stdout(name.as_bytes());
    }
    crate::render::write_stdout(&page)
}

/// A command line clap rejected, as one line: what is wrong and where to look. `--help` and
/// `--version` print as usual. A rejected value is never echoed by clap's value errors (a
/// URL may carry a password: the URL parser's own message shows it redacted; btsx's value
/// parsers echo only values that hold no secret). With `--json` the error is framed like
/// every run: `start`, `error`, and the command's summary.
fn command_line_error(e: clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let command = args
        .iter()
        .find_map(|a| {
            ["migrate", "verify", "batch", "status", "completions", "man"]
                .into_iter()
                .find(|c| a == c)
        })
        .unwrap_or("");
    let json = matches!(command, "migrate" | "verify" | "batch" | "status")
        && args
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a == "--json");
    let message = match (e.kind(), std::error::Error::source(&e)) {
        (ErrorKind::ValueValidation, Some(why)) => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(a)) => a.clone(),
                _ => "an argument".to_string(),
            };
            format!("invalid value for '{arg}': {why}")
        }
        (ErrorKind::MissingRequiredArgument, _) => {
            let missing = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(v)) => v.join(", "),
                _ => "an argument".to_string(),
            };
            if command == "migrate" {
                format!("required {missing} not given: give SRC and DST, or --resume FILE")
            } else {
                format!("required {missing} not given")
            }
        }
        _ => one_line(&e.render().to_string()),
    };
    let help = if command.is_empty() {
        "btsx --help".to_string()
    } else {
        format!("btsx {command} --help")
    };
    let message = format!("{message} (see '{help}')");
    if !json {
        eprintln!("error: {message}");
        return exit::USAGE;
    }
    let sink = JsonSink::new(std::io::stdout());
    Early {
        sink: &sink,
        src: None,
        dst: None,
    }
    .fail_as(command, message, exit::USAGE)
}

/// clap's text up to its usage hint, on one line.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for l in text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(l.trim_start_matches("error: "));
    }
    out
}

/// Reports failures that happen before the engine runs, in the chosen output form, ending
/// with a summary like every run.
struct Early<'a> {
    sink: &'a dyn Sink,
    src: Option<&'a Endpoint>,
    dst: Option<&'a Endpoint>,
}

impl Early<'_> {
    fn fail(&self, message: String, code: i32) -> i32 {
        self.fail_as("migrate", message, code)
    }

    /// `start`, `error`, and the summary `command` ends with (verify and batch have their own).
    fn fail_as(&self, command: &'static str, message: String, code: i32) -> i32 {
        self.sink.emit(&Event::Start {
            format_version: FORMAT_VERSION,
            tool: "btsx",
            version: env!("CARGO_PKG_VERSION"),
            command,
            source: self.src.map(endpoint_info),
            destination: self.dst.map(endpoint_info),
            jobs: 0,
            dry_run: false,
            state_file: None,
        });
        self.sink.emit(&Event::Error {
            message: message.clone(),
            folder: None,
            side: None,
        });
        self.sink.emit(&match command {
            "verify" => {
                Event::VerifySummary(crate::event::VerifySummary::early_error(message, code))
            }
            "batch" => Event::BatchSummary(crate::event::BatchSummary {
                status: crate::event::RunStatus::Error,
                exit_code: code,
                accounts: 0,
                complete: 0,
                failed: 0,
                messages_copied: 0,
                bytes_copied: 0,
                duration_ms: 0,
                per_account: Vec::new(),
                bad_rows: Vec::new(),
            }),
            _ => Event::Summary(Summary::early_error(message, code)),
        });
        code
    }
}

/// The display: JSON on stdout, or people's lines on stderr; `--events-file` adds a JSON copy.
fn make_sink(
    json: bool,
    quiet: bool,
    color: ColorChoice,
    verbose: bool,
    events_file: Option<&Path>,
) -> Result<Arc<dyn Sink>, String> {
    let main: Box<dyn Sink> = if json {
        Box::new(JsonSink::new(std::io::stdout()))
    } else {
        let d = crate::render::display(color, std::io::stderr().is_terminal());
        Box::new(HumanSink::new(HumanOptions::new(
            d.bars, d.color, quiet, verbose,
        )))
    };
    let Some(path) = events_file else {
        return Ok(Arc::from(main));
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open events file {}: {e}", path.display()))?;
    Ok(Arc::new(Tee(vec![main, Box::new(JsonSink::new(file))])))
}

fn filters(f: &FilterArgs) -> Result<(FolderFilter, DateFilter), String> {
    let folders = FolderFilter::new(&f.include, &f.exclude)?;
    let date = |s: &Option<String>, flag: &str| {
        s.as_deref()
            .map(crate::filter::parse_date)
            .transpose()
            .map_err(|e| format!("--{flag}: {e}"))
    };
    Ok((
        folders,
        DateFilter {
            since: date(&f.since, "since")?,
            before: date(&f.before, "before")?,
        },
    ))
}

/// Which options with a default value were typed on the command line.
#[derive(Debug, Clone, Copy)]
struct Given {
    jobs: bool,
    retries: bool,
    timeout: bool,
}

/// `--resume`: what the command line leaves out comes from the job's saved options.
fn merge_saved(args: &mut MigrateArgs, saved: &SavedOptions, given: Given) {
    let side = &mut args.side;
    let tls = &mut side.tls;
    fn keep<T: Clone>(now: &mut Option<T>, saved: &Option<T>) {
        if now.is_none() {
            now.clone_from(saved);
        }
    }
    keep(&mut tls.ca_file, &saved.ca_file);
    keep(&mut tls.src_ca_file, &saved.src_ca_file);
    keep(&mut tls.dst_ca_file, &saved.dst_ca_file);
    tls.insecure |= saved.insecure;
    tls.plaintext |= saved.plaintext;
    if !given.timeout
        && let Some(ms) = saved.timeout_ms
    {
        tls.timeout = std::time::Duration::from_millis(ms);
    }
    // One secret source per side: a typed one replaces every saved one of that side.
    let src_typed = side.src_password_file.is_some()
        || side.src_password_command.is_some()
        || side.src_oauth2_token_file.is_some()
        || side.src_oauth2_token_command.is_some();
    if !src_typed {
        side.src_password_file.clone_from(&saved.src_password_file);
        side.src_password_command
            .clone_from(&saved.src_password_command);
        side.src_oauth2_token_file
            .clone_from(&saved.src_oauth2_token_file);
        side.src_oauth2_token_command
            .clone_from(&saved.src_oauth2_token_command);
    }
    let dst_typed = side.dst_password_file.is_some()
        || side.dst_password_command.is_some()
        || side.dst_oauth2_token_file.is_some()
        || side.dst_oauth2_token_command.is_some();
    if !dst_typed {
        side.dst_password_file.clone_from(&saved.dst_password_file);
        side.dst_password_command
            .clone_from(&saved.dst_password_command);
        side.dst_oauth2_token_file
            .clone_from(&saved.dst_oauth2_token_file);
        side.dst_oauth2_token_command
            .clone_from(&saved.dst_oauth2_token_command);
    }
    if !given.jobs
        && let Some(j) = saved.jobs
    {
        args.jobs = j;
    }
    if !given.retries
        && let Some(r) = saved.retries
    {
        args.retries = r;
    }
    keep(
        &mut args.max_messages_per_second,
        &saved.max_messages_per_second,
    );
    if args.max_bytes_per_second.is_none() {
        args.max_bytes_per_second = saved.max_bytes_per_second.map(bytesize::ByteSize);
    }
}

/// The options this run uses, to save with the job (paths made absolute, so a later
/// `--resume` works from any directory).
fn to_save(args: &MigrateArgs) -> SavedOptions {
    let abs = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| std::path::absolute(p).unwrap_or(p.clone()))
    };
    let side = &args.side;
    SavedOptions {
        ca_file: abs(&side.tls.ca_file),
        src_ca_file: abs(&side.tls.src_ca_file),
        dst_ca_file: abs(&side.tls.dst_ca_file),
        insecure: side.tls.insecure,
        plaintext: side.tls.plaintext,
        src_password_file: abs(&side.src_password_file),
        src_password_command: side.src_password_command.clone(),
        dst_password_file: abs(&side.dst_password_file),
        dst_password_command: side.dst_password_command.clone(),
        src_oauth2_token_file: abs(&side.src_oauth2_token_file),
        src_oauth2_token_command: side.src_oauth2_token_command.clone(),
        dst_oauth2_token_file: abs(&side.dst_oauth2_token_file),
        dst_oauth2_token_command: side.dst_oauth2_token_command.clone(),
        jobs: Some(args.jobs),
        retries: Some(args.retries),
        timeout_ms: Some(side.tls.timeout.as_millis() as u64),
        max_messages_per_second: args.max_messages_per_second,
        max_bytes_per_second: args.max_bytes_per_second.map(|b| b.as_u64()),
    }
}

fn migrate(mut args: MigrateArgs, given: Given) -> i32 {
    let sink = match make_sink(
        args.json,
        args.quiet,
        args.color,
        args.verbose,
        args.events_file.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => {
            let fallback = make_sink(args.json, args.quiet, args.color, false, None);
            return match fallback {
                Ok(s) => Early {
                    sink: &*s,
                    src: args.src.as_ref(),
                    dst: args.dst.as_ref(),
                }
                .fail(e, exit::USAGE),
                Err(_) => exit::USAGE,
            };
        }
    };

    // The job: from the resume file, or from the command line.
    let (job, state_path) = match args.resume.clone() {
        Some(file) => {
            let early = Early {
                sink: &*sink,
                src: args.src.as_ref(),
                dst: args.dst.as_ref(),
            };
            let mut data = match state::read(&file) {
                Ok(d) => d,
                Err(e) => return early.fail(e.to_string(), exit::STATE),
            };
            for (given, saved, which) in [
                (&args.src, &data.job.source, "SRC"),
                (&args.dst, &data.job.destination, "DST"),
            ] {
                if let Some(g) = given
                    && g != saved
                {
                    return early.fail(
                        format!(
                            "{which} {} disagrees with the job in {} ({}); leave out SRC and DST with --resume, or start a new job with another --state",
                            g.url(),
                            file.display(),
                            saved.url()
                        ),
                        exit::USAGE,
                    );
                }
            }
            // Options typed now override the saved ones (and are saved in turn).
            let f = &args.filters;
            if !f.include.is_empty() {
                data.job.include.clone_from(&f.include);
            }
            if !f.exclude.is_empty() {
                data.job.exclude.clone_from(&f.exclude);
            }
            if !f.folder_map.is_empty() {
                data.job.folder_map.clone_from(&f.folder_map);
            }
            if f.since.is_some() {
                data.job.since.clone_from(&f.since);
            }
            if f.before.is_some() {
                data.job.before.clone_from(&f.before);
            }
            if let Some(m) = f.max_size {
                data.job.max_size = Some(m.as_u64());
            }
            merge_saved(&mut args, &data.options, given);
            (data.job, file)
        }
        None => {
            let (Some(src), Some(dst)) = (args.src.clone(), args.dst.clone()) else {
                let early = Early {
                    sink: &*sink,
                    src: None,
                    dst: None,
                };
                return early.fail(
                    "give SRC and DST, or --resume FILE".to_string(),
                    exit::USAGE,
                );
            };
            let job = JobIdentity {
                source: src,
                destination: dst,
                folder_map: args.filters.folder_map.clone(),
                max_size: args.filters.max_size.map(|b| b.as_u64()),
                include: args.filters.include.clone(),
                exclude: args.filters.exclude.clone(),
                since: args.filters.since.clone(),
                before: args.filters.before.clone(),
                all_mail: args.filters.all_mail,
            };
            let path = args
                .state
                .clone()
                .unwrap_or_else(|| state::default_path(&job));
            (job, path)
        }
    };
    let early = Early {
        sink: &*sink,
        src: Some(&job.source),
        dst: Some(&job.destination),
    };
    if same_account(&job.source, &job.destination) {
        return early.fail(
            format!(
                "SRC and DST are the same account ({}); a mailbox cannot be migrated into itself",
                job.source.url()
            ),
            exit::USAGE,
        );
    }

    // Filters come from the job (the resume file keeps them).
    let (folder_filter, date_filter) = match filters(&FilterArgs {
        include: job.include.clone(),
        exclude: job.exclude.clone(),
        folder_map: job.folder_map.clone(),
        since: job.since.clone(),
        before: job.before.clone(),
        max_size: job.max_size.map(bytesize::ByteSize),
        all_mail: job.all_mail,
    }) {
        Ok(f) => f,
        Err(e) => return early.fail(e, exit::USAGE),
    };
    if args.delete_source && !args.dry_run && !args.yes {
        if !std::io::stdin().is_terminal() {
            return early.fail(
                "--delete-source removes copied messages from the source: add --yes to confirm (stdin is not a terminal)".to_string(),
                exit::USAGE,
            );
        }
        eprint!(
            "Delete every copied message from {} after it is confirmed on {}? [y/N] ",
            job.source.url(),
            job.destination.url()
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
            return early.fail("--delete-source not confirmed".to_string(), exit::USAGE);
        }
    }

    let mut warnings = Vec::new();
    let src_creds = match credentials(&args.side, &job.source, true, &mut warnings) {
        Ok(c) => c,
        Err(e) => return early.fail(e, exit::USAGE),
    };
    let dst_creds = match credentials(&args.side, &job.destination, false, &mut warnings) {
        Ok(c) => c,
        Err(e) => return early.fail(e, exit::USAGE),
    };
    let (src_tls, dst_tls) = match tls_options(&args.side.tls) {
        Ok(t) => t,
        Err(e) => return early.fail(e, exit::USAGE),
    };
    if args.side.tls.insecure {
        warnings.push(
            "--insecure: TLS certificates are not verified; anyone on the path can read the mail and the passwords"
                .to_string(),
        );
    }
    if args.side.tls.plaintext {
        warnings.push(
            "--plaintext: imap:// connections are not encrypted; passwords and mail travel in clear text"
                .to_string(),
        );
    }

    // Dry runs change nothing, not even the state file.
    let store = if args.dry_run {
        None
    } else {
        match StateStore::open(&state_path, &job) {
            Ok(s) => {
                s.save_options(to_save(&args));
                Some(Arc::new(s))
            }
            Err(e) => {
                let code = match e {
                    StateError::Locked(_) => exit::LOCKED,
                    StateError::Io(_) => exit::USAGE,
                    StateError::Bad(_) | StateError::Foreign(_) => exit::STATE,
                };
                return early.fail(e.to_string(), code);
            }
        }
    };

    let cancel = Arc::new(AtomicBool::new(false));
    install_interrupt(cancel.clone());

    let opts = Options {
        jobs: usize::from(args.jobs),
        retries: args.retries,
        max_size: job.max_size,
        timeouts: args.side.tls.timeouts(),
        folder_map: job.folder_map.clone(),
        dry_run: args.dry_run,
        folders_only: args.folders_only,
        folders: folder_filter,
        dates: date_filter,
        throttle: crate::throttle::Throttle::new(
            args.max_messages_per_second,
            args.max_bytes_per_second.map(|b| b.as_u64() as f64),
        )
        .map(|t| Arc::new(t.with_cancel(cancel.clone()))),
        delete_source: args.delete_source,
        verbose: args.verbose,
        all_mail: job.all_mail,
        flag_sync: !args.no_flag_sync,
        ..Options::default()
    };
    let engine = Engine::new(
        Server {
            endpoint: job.source.clone(),
            creds: src_creds,
            tls: src_tls,
        },
        Server {
            endpoint: job.destination.clone(),
            creds: dst_creds,
            tls: dst_tls,
        },
        opts,
        sink.clone(),
        cancel,
        store,
    )
    .with_warnings(warnings);
    engine.run().summary.exit_code
}

/// Identical URLs (scheme aside: imap:// and imaps:// on one port cannot both work).
fn same_account(a: &Endpoint, b: &Endpoint) -> bool {
    a.user == b.user && a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
}

/// First Ctrl-C / SIGTERM: stop taking work, save, summarise. Second: leave at once (the
/// state file on disk is always a complete one).
fn install_interrupt(cancel: Arc<AtomicBool>) {
    let count = AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(exit::INTERRUPTED);
        }
        cancel.store(true, Ordering::SeqCst);
    });
}

fn credentials(
    side: &SideArgs,
    ep: &Endpoint,
    source: bool,
    warnings: &mut Vec<String>,
) -> Result<Credentials, String> {
    let (file, cmd, token_file, token_cmd, env, label) = if source {
        (
            &side.src_password_file,
            &side.src_password_command,
            &side.src_oauth2_token_file,
            &side.src_oauth2_token_command,
            "BTSX_SRC_PASSWORD",
            "source",
        )
    } else {
        (
            &side.dst_password_file,
            &side.dst_password_command,
            &side.dst_oauth2_token_file,
            &side.dst_oauth2_token_command,
            "BTSX_DST_PASSWORD",
            "destination",
        )
    };
    let warn_readable = |f: &Path, warnings: &mut Vec<String>| {
        if secret::file_is_group_or_world_readable(f) {
            warnings.push(format!(
                "{} is readable by other users; chmod 600 it",
                f.display()
            ));
        }
    };
    // OAuth2: the token is read at every connect (an external refresher keeps it fresh);
    // read it once now so a broken source fails before anything starts.
    let oauth = match (token_file, token_cmd) {
        (Some(f), _) => {
            warn_readable(f, warnings);
            Some(SecretSource::File(f.clone()))
        }
        (None, Some(c)) => Some(SecretSource::Command(c.clone())),
        _ => None,
    };
    if let Some(src) = oauth {
        secret::resolve(&src).map_err(|e| e.to_string())?;
        return Ok(Credentials {
            user: ep.user.clone(),
            auth: Auth::OAuth2(src),
        });
    }
    let src = if let Some(f) = file {
        warn_readable(f, warnings);
        SecretSource::File(f.clone())
    } else if let Some(c) = cmd {
        SecretSource::Command(c.clone())
    } else if std::env::var_os(env).is_some() {
        SecretSource::Env(env.to_string())
    } else if std::io::stdin().is_terminal() {
        SecretSource::Prompt {
            label: format!("{label} {}@{}", ep.user, ep.host),
        }
    } else {
        let flag = if source { "src" } else { "dst" };
        return Err(format!(
            "no password for the {label} server: set {env}, or use --{flag}-password-file / --{flag}-password-command"
        ));
    };
    let secret = secret::resolve(&src).map_err(|e| e.to_string())?;
    Ok(Credentials {
        user: ep.user.clone(),
        auth: Auth::Password(secret),
    })
}

fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "cannot read CA file {}: {} (give a PEM certificate file)",
            path.display(),
            e.kind()
        )
    })
}

fn tls_options(side: &TlsArgs) -> Result<(TlsOptions, TlsOptions), String> {
    let both = side.ca_file.as_deref().map(read_ca).transpose()?;
    let one = |p: &Option<PathBuf>| -> Result<Option<Vec<u8>>, String> {
        match p {
            Some(p) => Ok(Some(read_ca(p)?)),
            None => Ok(both.clone()),
        }
    };
    let mk = |ca| TlsOptions::new(ca, side.insecure, side.plaintext);
    Ok((mk(one(&side.src_ca_file)?), mk(one(&side.dst_ca_file)?)))
}

fn verify(args: VerifyArgs) -> i32 {
    let sink = match make_sink(args.json, args.quiet, args.color, false, None) {
        Ok(s) => s,
        Err(_) => return exit::USAGE,
    };
    let fail = |message: String, code: i32| -> i32 {
        Early {
            sink: &*sink,
            src: Some(&args.src),
            dst: Some(&args.dst),
        }
        .fail_as("verify", message, code)
    };
    let (folder_filter, date_filter) = match filters(&args.filters) {
        Ok(f) => f,
        Err(e) => return fail(e, exit::USAGE),
    };
    let mut warnings = Vec::new();
    let src_creds = match credentials(&args.side, &args.src, true, &mut warnings) {
        Ok(c) => c,
        Err(e) => return fail(e, exit::USAGE),
    };
    let dst_creds = match credentials(&args.side, &args.dst, false, &mut warnings) {
        Ok(c) => c,
        Err(e) => return fail(e, exit::USAGE),
    };
    let (src_tls, dst_tls) = match tls_options(&args.side.tls) {
        Ok(t) => t,
        Err(e) => return fail(e, exit::USAGE),
    };
    let opts = Options {
        jobs: 1,
        timeouts: args.side.tls.timeouts(),
        folder_map: args.filters.folder_map.clone(),
        max_size: args.filters.max_size.map(|b| b.as_u64()),
        folders: folder_filter,
        dates: date_filter,
        all_mail: args.filters.all_mail,
        deep: args.deep,
        ..Options::default()
    };
    let engine = Engine::new(
        Server {
            endpoint: args.src.clone(),
            creds: src_creds,
            tls: src_tls,
        },
        Server {
            endpoint: args.dst.clone(),
            creds: dst_creds,
            tls: dst_tls,
        },
        opts,
        sink.clone(),
        Arc::new(AtomicBool::new(false)),
        None,
    )
    .with_warnings(warnings);
    engine.verify().exit_code
}

fn batch(args: BatchArgs) -> i32 {
    use crate::batch;
    use crate::event::{BatchSummary, RowError, RunStatus};
    let started = std::time::Instant::now();
    let color = crate::render::display(args.color, std::io::stderr().is_terminal()).color;
    let json = args
        .json
        .then(|| Arc::new(JsonSink::new(std::io::stdout())));
    let fail = |message: String| -> i32 {
        match make_sink(args.json, args.quiet, args.color, false, None) {
            Ok(sink) => Early {
                sink: &*sink,
                src: None,
                dst: None,
            }
            .fail_as("batch", message, exit::USAGE),
            Err(_) => exit::USAGE,
        }
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            return fail(format!(
                "cannot read batch file {}: {e}",
                args.file.display()
            ));
        }
    };
    let parsed = match batch::parse(&text) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", args.file.display())),
    };
    let exposes = batch::exposes_passwords(&args.file, &parsed);
    let batch::Parsed { rows, bad, .. } = parsed;
    if args.strict && !bad.is_empty() {
        let list: Vec<String> = bad
            .iter()
            .map(|b| format!("line {}: {}", b.line, b.message))
            .collect();
        return fail(format!(
            "{} has unusable rows (--strict): {}",
            args.file.display(),
            list.join("; ")
        ));
    }
    // The shard: K/N, or the index from the environment (counting from 0).
    let shard = match (&args.shard, &args.shard_from_env, args.shards) {
        (Some(s), _, _) => match batch::parse_shard(s) {
            Ok((k, n)) => Some((k - 1, n)),
            Err(e) => return fail(e),
        },
        (None, Some(var), Some(n)) => {
            let v = std::env::var(var).unwrap_or_default();
            match v.trim().parse::<u32>() {
                Ok(k) if k < n => Some((k, n)),
                _ => {
                    return fail(format!(
                        "--shard-from-env {var}: '{v}' is not a shard index from 0 to {}",
                        n - 1
                    ));
                }
            }
        }
        _ => None,
    };
    let rows: Vec<batch::Row> = rows
        .into_iter()
        .filter(|r| shard.is_none_or(|(k, n)| batch::shard_of(&r.src, n) == k))
        .collect();
    // Each bad row belongs to one shard too, so one typo does not fail every machine.
    let bad: Vec<batch::BadRow> = bad
        .into_iter()
        .filter(|b| shard.is_none_or(|(k, n)| batch::shard_of_text(&b.src_raw, n) == k))
        .collect();
    let (src_tls, dst_tls) = match tls_options(&args.tls) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| state::base_dir().join("batch"));
    // Running the same command again continues the batch (each account from its state file).
    let again = std::iter::once("btsx".to_string())
        .chain(
            std::env::args()
                .skip(1)
                .map(|a| crate::render::shell_quote(&a)),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let view =
        crate::render::batch::BatchView::new(rows.len(), color, args.quiet).with_resume(again);
    let top: Arc<dyn Sink> = match &json {
        Some(j) => j.clone(),
        None => view.clone(),
    };
    let mut readable: Vec<PathBuf> = rows
        .iter()
        .flat_map(|r| [&r.src_cred, &r.dst_cred])
        .filter_map(|c| match c {
            batch::CredSpec::PasswordFile(p) | batch::CredSpec::OAuth2File(p) => Some(p.clone()),
            _ => None,
        })
        .filter(|p| secret::file_is_group_or_world_readable(p))
        .collect();
    readable.sort();
    readable.dedup();
    for p in readable {
        top.emit(&Event::Warning {
            message: format!("{} is readable by other users; chmod 600 it", p.display()),
            folder: None,
        });
    }
    if exposes {
        top.emit(&Event::Warning {
            message: format!(
                "{} holds passwords and is readable by other users; chmod 600 it",
                args.file.display()
            ),
            folder: None,
        });
    }
    for b in &bad {
        top.emit(&Event::Error {
            message: format!("{} line {}: {}", args.file.display(), b.line, b.message),
            folder: None,
            side: None,
        });
    }
    let cancel = Arc::new(AtomicBool::new(false));
    install_interrupt(cancel.clone());
    let cfg = batch::BatchConfig {
        accounts: usize::from(args.accounts),
        state_dir,
        options: Options {
            jobs: usize::from(args.jobs),
            retries: args.retries,
            max_size: args.max_size.map(|b| b.as_u64()),
            timeouts: args.tls.timeouts(),
            all_mail: args.all_mail,
            ..Options::default()
        },
        src_tls,
        dst_tls,
    };
    let sink_for = |row: &batch::Row| -> Arc<dyn Sink> {
        match &json {
            Some(j) => Arc::new(j.tagged(&row.job())),
            None => view.sink_for(&row.job()),
        }
    };
    let reports = batch::run(&rows, &cfg, &sink_for, &cancel);
    let complete = reports
        .iter()
        .filter(|r| r.status == RunStatus::Complete)
        .count() as u64;
    let failed = reports.len() as u64 - complete;
    let (status, code) = if cancel.load(std::sync::atomic::Ordering::SeqCst) {
        (RunStatus::Interrupted, exit::INTERRUPTED)
    } else if failed > 0 || !bad.is_empty() {
        (RunStatus::Partial, exit::PARTIAL)
    } else {
        (RunStatus::Complete, exit::OK)
    };
    top.emit(&Event::BatchSummary(BatchSummary {
        status,
        exit_code: code,
        accounts: reports.len() as u64,
        complete,
        failed,
        messages_copied: reports.iter().map(|r| r.messages_copied).sum(),
        bytes_copied: reports.iter().map(|r| r.bytes_copied).sum(),
        duration_ms: started.elapsed().as_millis() as u64,
        per_account: reports,
        bad_rows: bad
            .into_iter()
            .map(|b| RowError {
                line: b.line,
                message: b.message,
            })
            .collect(),
    }));
    code
}
