# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_btsx_global_optspecs
    string join \n h/help V/version
end

function __fish_btsx_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_btsx_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_btsx_using_subcommand
    set -l cmd (__fish_btsx_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c btsx -n "__fish_btsx_needs_command" -s h -l help -d 'Print help'
complete -c btsx -n "__fish_btsx_needs_command" -s V -l version -d 'Print version'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "migrate" -d 'Copy every folder and message from SRC to DST'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "verify" -d 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "batch" -d 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "status" -d 'Show a saved or running job from its state file, or every job in a state directory'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "man" -d 'Print a man page (roff): btsx, or a subcommand\'s (migrate, verify, …)'
complete -c btsx -n "__fish_btsx_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l src-password-file -d 'Read the source password from this file (first line)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l src-password-command -d 'Run this command (sh -c) and use its output as the source password' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dst-password-file -d 'Read the destination password from this file (first line)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dst-password-command -d 'Run this command (sh -c) and use its output as the destination password' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l src-oauth2-token-file -d 'Read a source OAuth2 access token from this file (re-read on every reconnect)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l src-oauth2-token-command -d 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dst-oauth2-token-file -d 'Read a destination OAuth2 access token from this file (re-read on every reconnect)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dst-oauth2-token-command -d 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l ca-file -d 'Trust this CA certificate (PEM) on both sides, besides the system roots' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l src-ca-file -d 'Trust this CA certificate (PEM) for the source' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dst-ca-file -d 'Trust this CA certificate (PEM) for the destination' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l timeout -d 'Connect and I/O timeout, e.g. 30s, 2m' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -s j -l jobs -d 'Worker threads, each with its own source+destination connection pair' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l retries -d 'Reconnect attempts per folder after a dropped connection or timeout, counted in a row: a message copied in between gives them all back' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l include -d 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l exclude -d 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l folder-map -d 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination\'s separator). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l since -d 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l before -d 'Only messages that arrived before DATE' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l max-size -d 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l all-mail -d 'The source\'s All Mail (special use \\All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them' -r -f -a "archived-only\t'Copy only the messages that are in no other copied folder (archived ones); views (`\\Flagged`, `\\Important`) are not copied as folders'
copy\t'Copy `\\All` and the views as ordinary folders'
skip\t'Copy neither `\\All` nor the views'"
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l state -d 'Where the resume file goes (default: $XDG_STATE_HOME/btsx/<job>.json)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l resume -d 'Continue the job saved in FILE; endpoints and options come from the file' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l max-messages-per-second -d 'Send at most N messages per second (providers that limit IMAP)' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l max-bytes-per-second -d 'Send at most SIZE per second, e.g. 2MB' -r
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l events-file -d 'Also write the JSON event stream to FILE (for `tail -f`), whatever the display' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l color -d 'Color in the human display' -r -f -a "auto\t''
always\t''
never\t''"
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l insecure -d 'Do not verify TLS certificates (dangerous; emits a warning)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l plaintext -d 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l dry-run -d 'Connect, scan and plan; change nothing on either server'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l folders-only -d 'Create the folder tree; copy no messages'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l delete-source -d 'After each folder, delete from the source the messages whose copy on the destination was read back and proven the same (content hash and arrival date); the others stay and are reported (exit 1). The proof costs one download of what is deleted'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l yes -d 'Do not ask before --delete-source (needed when stdin is not a terminal)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l no-flag-sync -d 'Leave the flags of messages copied in earlier runs as they are (by default their flags and keywords follow the source on every run)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -s v -l verbose -d 'More detail: protocol-level steps (never secrets)'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -l json -d 'JSON lines on stdout instead of the human display (schema: JSON EVENTS in \'btsx man migrate\')'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -s q -l quiet -d 'Only errors and the summary on stderr'
complete -c btsx -n "__fish_btsx_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l src-password-file -d 'Read the source password from this file (first line)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l src-password-command -d 'Run this command (sh -c) and use its output as the source password' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l dst-password-file -d 'Read the destination password from this file (first line)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l dst-password-command -d 'Run this command (sh -c) and use its output as the destination password' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l src-oauth2-token-file -d 'Read a source OAuth2 access token from this file (re-read on every reconnect)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l src-oauth2-token-command -d 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l dst-oauth2-token-file -d 'Read a destination OAuth2 access token from this file (re-read on every reconnect)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l dst-oauth2-token-command -d 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l ca-file -d 'Trust this CA certificate (PEM) on both sides, besides the system roots' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l src-ca-file -d 'Trust this CA certificate (PEM) for the source' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l dst-ca-file -d 'Trust this CA certificate (PEM) for the destination' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l timeout -d 'Connect and I/O timeout, e.g. 30s, 2m' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l include -d 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l exclude -d 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l folder-map -d 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination\'s separator). Repeatable' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l since -d 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l before -d 'Only messages that arrived before DATE' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l max-size -d 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped' -r
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l all-mail -d 'The source\'s All Mail (special use \\All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them' -r -f -a "archived-only\t'Copy only the messages that are in no other copied folder (archived ones); views (`\\Flagged`, `\\Important`) are not copied as folders'
copy\t'Copy `\\All` and the views as ordinary folders'
skip\t'Copy neither `\\All` nor the views'"
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l color -d 'Color in the human display' -r -f -a "auto\t''
always\t''
never\t''"
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l insecure -d 'Do not verify TLS certificates (dangerous; emits a warning)'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l plaintext -d 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l deep -d 'Also compare every message\'s content (hash), arrival date and flags and name the messages the destination altered. Reads every message on both sides'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -l json -d 'JSON lines on stdout'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -s q -l quiet -d 'Only the result'
complete -c btsx -n "__fish_btsx_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l accounts -d 'Migrations run at once' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -s j -l jobs -d 'Connection pairs per migration' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l state-dir -d 'One state file per account goes here (default: $XDG_STATE_HOME/btsx/batch)' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l shard -d 'Take a stable share of the rows: K/N, K counting from 1 (e.g. 2/3)' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l shard-from-env -d 'Read the shard index from this environment variable, counting from 0 (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID); needs --shards' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l shards -d 'Number of shards, with --shard-from-env' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l retries -d 'Reconnect attempts per folder, counted in a row (a message copied in between gives them back)' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l max-size -d 'Skip messages larger than this' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l all-mail -d 'A source\'s All Mail (special use \\All, as on Gmail), as for migrate' -r -f -a "archived-only\t'Copy only the messages that are in no other copied folder (archived ones); views (`\\Flagged`, `\\Important`) are not copied as folders'
copy\t'Copy `\\All` and the views as ordinary folders'
skip\t'Copy neither `\\All` nor the views'"
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l ca-file -d 'Trust this CA certificate (PEM) on both sides, besides the system roots' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l src-ca-file -d 'Trust this CA certificate (PEM) for the source' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l dst-ca-file -d 'Trust this CA certificate (PEM) for the destination' -r -F
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l timeout -d 'Connect and I/O timeout, e.g. 30s, 2m' -r
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l color -d 'Color in the human display' -r -f -a "auto\t''
always\t''
never\t''"
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l strict -d 'Refuse to start when a row is malformed (default: report it and run the rest)'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l insecure -d 'Do not verify TLS certificates (dangerous; emits a warning)'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l plaintext -d 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -l json -d 'JSON lines on stdout; every account\'s events carry "job"'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -s q -l quiet -d 'Only errors and the summary'
complete -c btsx -n "__fish_btsx_using_subcommand batch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c btsx -n "__fish_btsx_using_subcommand status" -l json -d 'JSON on stdout'
complete -c btsx -n "__fish_btsx_using_subcommand status" -s h -l help -d 'Print help'
complete -c btsx -n "__fish_btsx_using_subcommand completions" -s h -l help -d 'Print help'
complete -c btsx -n "__fish_btsx_using_subcommand man" -l name -d 'Print the page\'s file name (btsx-migrate.1) instead of the page'
complete -c btsx -n "__fish_btsx_using_subcommand man" -s h -l help -d 'Print help'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "migrate" -d 'Copy every folder and message from SRC to DST'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "verify" -d 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "batch" -d 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "status" -d 'Show a saved or running job from its state file, or every job in a state directory'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "completions" -d 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "man" -d 'Print a man page (roff): btsx, or a subcommand\'s (migrate, verify, …)'
complete -c btsx -n "__fish_btsx_using_subcommand help; and not __fish_seen_subcommand_from migrate verify batch status completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
