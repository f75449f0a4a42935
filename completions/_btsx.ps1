
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'btsx' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'btsx'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'btsx' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy every folder and message from SRC to DST')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra')
            [CompletionResult]::new('batch', 'batch', [CompletionResultType]::ParameterValue, 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show a saved or running job from its state file, or every job in a state directory')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): btsx, or a subcommand''s (migrate, verify, …)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'btsx;migrate' {
            [CompletionResult]::new('--src-password-file', '--src-password-file', [CompletionResultType]::ParameterName, 'Read the source password from this file (first line)')
            [CompletionResult]::new('--src-password-command', '--src-password-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) and use its output as the source password')
            [CompletionResult]::new('--dst-password-file', '--dst-password-file', [CompletionResultType]::ParameterName, 'Read the destination password from this file (first line)')
            [CompletionResult]::new('--dst-password-command', '--dst-password-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) and use its output as the destination password')
            [CompletionResult]::new('--src-oauth2-token-file', '--src-oauth2-token-file', [CompletionResultType]::ParameterName, 'Read a source OAuth2 access token from this file (re-read on every reconnect)')
            [CompletionResult]::new('--src-oauth2-token-command', '--src-oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)')
            [CompletionResult]::new('--dst-oauth2-token-file', '--dst-oauth2-token-file', [CompletionResultType]::ParameterName, 'Read a destination OAuth2 access token from this file (re-read on every reconnect)')
            [CompletionResult]::new('--dst-oauth2-token-command', '--dst-oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) on both sides, besides the system roots')
            [CompletionResult]::new('--src-ca-file', '--src-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the source')
            [CompletionResult]::new('--dst-ca-file', '--dst-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the destination')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Connect and I/O timeout, e.g. 30s, 2m')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Worker threads, each with its own source+destination connection pair')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Worker threads, each with its own source+destination connection pair')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Reconnect attempts per folder after a dropped connection or timeout, counted in a row: a message copied in between gives them all back')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable')
            [CompletionResult]::new('--folder-map', '--folder-map', [CompletionResultType]::ParameterName, 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination''s separator). Repeatable')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)')
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Only messages that arrived before DATE')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped')
            [CompletionResult]::new('--all-mail', '--all-mail', [CompletionResultType]::ParameterName, 'The source''s All Mail (special use \All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the resume file goes (default: $XDG_STATE_HOME/btsx/<job>.json)')
            [CompletionResult]::new('--resume', '--resume', [CompletionResultType]::ParameterName, 'Continue the job saved in FILE; endpoints and options come from the file')
            [CompletionResult]::new('--max-messages-per-second', '--max-messages-per-second', [CompletionResultType]::ParameterName, 'Send at most N messages per second (providers that limit IMAP)')
            [CompletionResult]::new('--max-bytes-per-second', '--max-bytes-per-second', [CompletionResultType]::ParameterName, 'Send at most SIZE per second, e.g. 2MB')
            [CompletionResult]::new('--events-file', '--events-file', [CompletionResultType]::ParameterName, 'Also write the JSON event stream to FILE (for `tail -f`), whatever the display')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in the human display')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify TLS certificates (dangerous; emits a warning)')
            [CompletionResult]::new('--plaintext', '--plaintext', [CompletionResultType]::ParameterName, 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Connect, scan and plan; change nothing on either server')
            [CompletionResult]::new('--folders-only', '--folders-only', [CompletionResultType]::ParameterName, 'Create the folder tree; copy no messages')
            [CompletionResult]::new('--delete-source', '--delete-source', [CompletionResultType]::ParameterName, 'After each folder, delete from the source the messages whose copy on the destination was read back and proven the same (content hash and arrival date); the others stay and are reported (exit 1). The proof costs one download of what is deleted')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before --delete-source (needed when stdin is not a terminal)')
            [CompletionResult]::new('--no-flag-sync', '--no-flag-sync', [CompletionResultType]::ParameterName, 'Leave the flags of messages copied in earlier runs as they are (by default their flags and keywords follow the source on every run)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail: protocol-level steps (never secrets)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail: protocol-level steps (never secrets)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'JSON lines on stdout instead of the human display (schema: JSON EVENTS in ''btsx man migrate'')')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors and the summary on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors and the summary on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'btsx;verify' {
            [CompletionResult]::new('--src-password-file', '--src-password-file', [CompletionResultType]::ParameterName, 'Read the source password from this file (first line)')
            [CompletionResult]::new('--src-password-command', '--src-password-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) and use its output as the source password')
            [CompletionResult]::new('--dst-password-file', '--dst-password-file', [CompletionResultType]::ParameterName, 'Read the destination password from this file (first line)')
            [CompletionResult]::new('--dst-password-command', '--dst-password-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) and use its output as the destination password')
            [CompletionResult]::new('--src-oauth2-token-file', '--src-oauth2-token-file', [CompletionResultType]::ParameterName, 'Read a source OAuth2 access token from this file (re-read on every reconnect)')
            [CompletionResult]::new('--src-oauth2-token-command', '--src-oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) for a source OAuth2 access token (re-run on every reconnect)')
            [CompletionResult]::new('--dst-oauth2-token-file', '--dst-oauth2-token-file', [CompletionResultType]::ParameterName, 'Read a destination OAuth2 access token from this file (re-read on every reconnect)')
            [CompletionResult]::new('--dst-oauth2-token-command', '--dst-oauth2-token-command', [CompletionResultType]::ParameterName, 'Run this command (sh -c) for a destination OAuth2 access token (re-run on every reconnect)')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) on both sides, besides the system roots')
            [CompletionResult]::new('--src-ca-file', '--src-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the source')
            [CompletionResult]::new('--dst-ca-file', '--dst-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the destination')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Connect and I/O timeout, e.g. 30s, 2m')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Only folders matching PATTERN (glob on decoded names; `re:` for a regex). Repeatable')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Leave out folders matching PATTERN (glob, or `re:` regex). Repeatable')
            [CompletionResult]::new('--folder-map', '--folder-map', [CompletionResultType]::ParameterName, 'Rename a folder (and its subfolders) on the destination: OLD=NEW (OLD as the source or the destination names it; NEW with the destination''s separator). Repeatable')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only messages that arrived on or after DATE (2024-01-31, RFC 3339, or an age like 30days)')
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Only messages that arrived before DATE')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Leave out messages larger than this (e.g. 25MB); migrate reports them as skipped')
            [CompletionResult]::new('--all-mail', '--all-mail', [CompletionResultType]::ParameterName, 'The source''s All Mail (special use \All, as on Gmail): copy only its archived messages, those in no other folder (views such as Starred and Important are not copied as folders); or copy it and the views as folders; or skip them')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in the human display')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify TLS certificates (dangerous; emits a warning)')
            [CompletionResult]::new('--plaintext', '--plaintext', [CompletionResultType]::ParameterName, 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)')
            [CompletionResult]::new('--deep', '--deep', [CompletionResultType]::ParameterName, 'Also compare every message''s content (hash), arrival date and flags and name the messages the destination altered. Reads every message on both sides')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'JSON lines on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only the result')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only the result')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'btsx;batch' {
            [CompletionResult]::new('--accounts', '--accounts', [CompletionResultType]::ParameterName, 'Migrations run at once')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Connection pairs per migration')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Connection pairs per migration')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'One state file per account goes here (default: $XDG_STATE_HOME/btsx/batch)')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take a stable share of the rows: K/N, K counting from 1 (e.g. 2/3)')
            [CompletionResult]::new('--shard-from-env', '--shard-from-env', [CompletionResultType]::ParameterName, 'Read the shard index from this environment variable, counting from 0 (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID); needs --shards')
            [CompletionResult]::new('--shards', '--shards', [CompletionResultType]::ParameterName, 'Number of shards, with --shard-from-env')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Reconnect attempts per folder, counted in a row (a message copied in between gives them back)')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Skip messages larger than this')
            [CompletionResult]::new('--all-mail', '--all-mail', [CompletionResultType]::ParameterName, 'A source''s All Mail (special use \All, as on Gmail), as for migrate')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) on both sides, besides the system roots')
            [CompletionResult]::new('--src-ca-file', '--src-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the source')
            [CompletionResult]::new('--dst-ca-file', '--dst-ca-file', [CompletionResultType]::ParameterName, 'Trust this CA certificate (PEM) for the destination')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Connect and I/O timeout, e.g. 30s, 2m')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Color in the human display')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Refuse to start when a row is malformed (default: report it and run the rest)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify TLS certificates (dangerous; emits a warning)')
            [CompletionResult]::new('--plaintext', '--plaintext', [CompletionResultType]::ParameterName, 'Allow imap:// without STARTTLS: the password travels unencrypted (test servers only)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'JSON lines on stdout; every account''s events carry "job"')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors and the summary')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors and the summary')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'btsx;status' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'JSON on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'btsx;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'btsx;man' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Print the page''s file name (btsx-migrate.1) instead of the page')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'btsx;help' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Copy every folder and message from SRC to DST')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Compare SRC and DST folder by folder: what is missing in the destination, what is extra')
            [CompletionResult]::new('batch', 'batch', [CompletionResultType]::ParameterValue, 'Migrate many mailboxes listed in a CSV file, several at once; shardable across machines')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show a saved or running job from its state file, or every job in a state directory')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff): btsx, or a subcommand''s (migrate, verify, …)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'btsx;help;migrate' {
            break
        }
        'btsx;help;verify' {
            break
        }
        'btsx;help;batch' {
            break
        }
        'btsx;help;status' {
            break
        }
        'btsx;help;completions' {
            break
        }
        'btsx;help;man' {
            break
        }
        'btsx;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
