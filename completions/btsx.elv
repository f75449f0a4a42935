
use builtin;
use str;

set edit:completion:arg-completer[btsx] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'btsx'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'btsx'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand migrate 'Copy every folder and message from SRC to DST'
            cand verify 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra'
            cand batch 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines'
            cand status 'Show a saved or running job from its state file, or every job in a state directory'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)'
            cand man 'Print a man page (roff): btsx, or a subcommand''s (migrate, verify, …)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'btsx;migrate'= {
            cand --src-password-file 'Read the source password from this file (first line)'
            cand --src-password-command 'Run this command (sh -c) and use its output as the source password'
            cand --dst-password-file 'Read the destination password from this file (first line)'
            cand --dst-password-command 'Run this command (sh -c) and use its output as the destination password'
            cand --src-oauth2-token-file 'Read a source OAuth2 access token from this file (re-read on every reconnect)'
            cand --src-oauth2-token-command 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)'
            cand --dst-oauth2-token-file 'Read a destination OAuth2 access token from this file (re-read on every reconnect)'
            cand --dst-oauth2-token-command 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)'
            cand --ca-file 'Trust this CA certificate (PEM) on both sides, besides the system roots'
            cand --src-ca-file 'Trust this CA certificate (PEM) for the source'
            cand --dst-ca-file 'Trust this CA certificate (PEM) for the destination'
            cand --timeout 'Connect and I/O timeout, e.g. 30s, 2m'
            cand -j 'Worker threads, each with its own source+destination connection pair'
            cand --jobs 'Worker threads, each with its own source+destination connection pair'
            cand --retries 'Reconnect attempts per folder after a dropped connection or timeout, counted in a row: a message copied in between gives them all back'
            cand --include 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable'
            cand --exclude 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable'
            cand --folder-map 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination''s separator). Repeatable'
            cand --since 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)'
            cand --before 'Only messages that arrived before DATE'
            cand --max-size 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped'
            cand --all-mail 'The source''s All Mail (special use \All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them'
            cand --state 'Where the resume file goes (default: $XDG_STATE_HOME/btsx/<job>.json)'
            cand --resume 'Continue the job saved in FILE; endpoints and options come from the file'
            cand --max-messages-per-second 'Send at most N messages per second (providers that limit IMAP)'
            cand --max-bytes-per-second 'Send at most SIZE per second, e.g. 2MB'
            cand --events-file 'Also write the JSON event stream to FILE (for `tail -f`), whatever the display'
            cand --color 'Color in the human display'
            cand --insecure 'Do not verify TLS certificates (dangerous; emits a warning)'
            cand --plaintext 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
            cand --dry-run 'Connect, scan and plan; change nothing on either server'
            cand --folders-only 'Create the folder tree; copy no messages'
            cand --delete-source 'After each folder, delete from the source the messages whose copy on the destination was read back and proven the same (content hash and arrival date); the others stay and are reported (exit 1). The proof costs one download of what is deleted'
            cand --yes 'Do not ask before --delete-source (needed when stdin is not a terminal)'
            cand --no-flag-sync 'Leave the flags of messages copied in earlier runs as they are (by default their flags and keywords follow the source on every run)'
            cand -v 'More detail: protocol-level steps (never secrets)'
            cand --verbose 'More detail: protocol-level steps (never secrets)'
            cand --json 'JSON lines on stdout instead of the human display (schema: JSON EVENTS in ''btsx man migrate'')'
            cand -q 'Only errors and the summary on stderr'
            cand --quiet 'Only errors and the summary on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'btsx;verify'= {
            cand --src-password-file 'Read the source password from this file (first line)'
            cand --src-password-command 'Run this command (sh -c) and use its output as the source password'
            cand --dst-password-file 'Read the destination password from this file (first line)'
            cand --dst-password-command 'Run this command (sh -c) and use its output as the destination password'
            cand --src-oauth2-token-file 'Read a source OAuth2 access token from this file (re-read on every reconnect)'
            cand --src-oauth2-token-command 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)'
            cand --dst-oauth2-token-file 'Read a destination OAuth2 access token from this file (re-read on every reconnect)'
            cand --dst-oauth2-token-command 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)'
            cand --ca-file 'Trust this CA certificate (PEM) on both sides, besides the system roots'
            cand --src-ca-file 'Trust this CA certificate (PEM) for the source'
            cand --dst-ca-file 'Trust this CA certificate (PEM) for the destination'
            cand --timeout 'Connect and I/O timeout, e.g. 30s, 2m'
            cand --include 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable'
            cand --exclude 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable'
            cand --folder-map 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination''s separator). Repeatable'
            cand --since 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)'
            cand --before 'Only messages that arrived before DATE'
            cand --max-size 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped'
            cand --all-mail 'The source''s All Mail (special use \All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them'
            cand --color 'Color in the human display'
            cand --insecure 'Do not verify TLS certificates (dangerous; emits a warning)'
            cand --plaintext 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
            cand --deep 'Also compare every message''s content (hash), arrival date and flags and name the messages the destination altered. Reads every message on both sides'
            cand --json 'JSON lines on stdout'
            cand -q 'Only the result'
            cand --quiet 'Only the result'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'btsx;batch'= {
            cand --accounts 'Migrations run at once'
            cand -j 'Connection pairs per migration'
            cand --jobs 'Connection pairs per migration'
            cand --state-dir 'One state file per account goes here (default: $XDG_STATE_HOME/btsx/batch)'
            cand --shard 'Take a stable share of the rows: K/N, K counting from 1 (e.g. 2/3)'
            cand --shard-from-env 'Read the shard index from this environment variable, counting from 0 (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID); needs --shards'
            cand --shards 'Number of shards, with --shard-from-env'
            cand --retries 'Reconnect attempts per folder, counted in a row (a message copied in between gives them back)'
            cand --max-size 'Skip messages larger than this'
            cand --all-mail 'A source''s All Mail (special use \All, as on Gmail), as for migrate'
            cand --ca-file 'Trust this CA certificate (PEM) on both sides, besides the system roots'
            cand --src-ca-file 'Trust this CA certificate (PEM) for the source'
            cand --dst-ca-file 'Trust this CA certificate (PEM) for the destination'
            cand --timeout 'Connect and I/O timeout, e.g. 30s, 2m'
            cand --color 'Color in the human display'
            cand --strict 'Refuse to start when a row is malformed (default: report it and run the rest)'
            cand --insecure 'Do not verify TLS certificates (dangerous; emits a warning)'
            cand --plaintext 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
            cand --json 'JSON lines on stdout; every account''s events carry "job"'
            cand -q 'Only errors and the summary'
            cand --quiet 'Only errors and the summary'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'btsx;status'= {
            cand --json 'JSON on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'btsx;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'btsx;man'= {
            cand --name 'Print the page''s file name (btsx-migrate.1) instead of the page'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'btsx;help'= {
            cand migrate 'Copy every folder and message from SRC to DST'
            cand verify 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra'
            cand batch 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines'
            cand status 'Show a saved or running job from its state file, or every job in a state directory'
            cand completions 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)'
            cand man 'Print a man page (roff): btsx, or a subcommand''s (migrate, verify, …)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'btsx;help;migrate'= {
        }
        &'btsx;help;verify'= {
        }
        &'btsx;help;batch'= {
        }
        &'btsx;help;status'= {
        }
        &'btsx;help;completions'= {
        }
        &'btsx;help;man'= {
        }
        &'btsx;help;help'= {
        }
    ]
    $completions[$command]
}
