//! Command line of `dbirun`: DynamoRIO spellings are normalised, client groups are cut out, then clap parses the rest.
//!
//! clap cannot parse single-dash long names (`-persist_dir`) nor "every argument
//! up to the next `-c` or `--`" client option lists, so a pre-pass walks the
//! arguments before the application, rewrites each known option to one
//! canonical `--name[=value]` form, collects the client groups itself, and
//! rejects anything else with a one-line error (clap would read `-bogus` as
//! the short flags `-b -o -g ...` and print a multi-line report).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};

/// Printed in usage errors: clap's generated usage line cannot show `--` before APP.
pub const USAGE: &str = "dbirun [options] [-c CLIENT [client options]] -- APP [ARGS...]";

/// What the launcher was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub verbose: bool,
    /// -stats, or implied by -stats_file / -stats_per_process.
    pub stats: bool,
    pub stats_file: Option<PathBuf>,
    pub stats_per_process: bool,
    pub persist: bool,
    /// As typed; made absolute only when the runtime argv is built, since that needs the cwd.
    pub persist_dir: Option<PathBuf>,
    /// -no_persist_server: write cache files in this process tree, without
    /// the directory's cache server.
    pub no_persist_server: bool,
    /// -aot: translate the program ahead of time instead of running it.
    pub aot: bool,
    /// -aot_seeds FILE: with -aot, the modules to translate and the block
    /// offsets earlier runs built (written by `cachetool aot --from-index`).
    pub aot_seeds: Option<PathBuf>,
    /// -aot_progress: with -aot, a progress line on stderr every 16,384
    /// blocks of a module (for cachetool's progress bar).
    pub aot_progress: bool,
    /// -aot_batch N: with -aot, blocks translated between writes to the
    /// module's file (the translating process's memory is about 1 KiB per
    /// block of a batch).
    pub aot_batch: Option<u64>,
    pub no_follow_children: bool,
    pub no_native_exec: bool,
    /// -traces: join hot paths of blocks into traces (under -persist,
    /// files keep them); the default, so this only says it again.
    pub traces: bool,
    /// -no_traces (DynamoRIO's -disable_traces): no traces, even with
    /// -traces (from DBIRUN_OPTIONS, say).
    pub no_traces: bool,
    /// -predicted_returns: blocks' calls and returns in the form the
    /// CPU's return stack predicts (not the default: it pays on
    /// call-heavy compilers, not on interpreters).
    pub predicted_returns: bool,
    /// Where clients write their output files; made absolute like persist_dir.
    pub logdir: Option<PathBuf>,
    pub clients: Vec<ClientSpec>,
    /// APP exactly as typed: it becomes the application's argv[0].
    pub app: OsString,
    pub app_args: Vec<OsString>,
}

impl Options {
    /// Whether the run is one with traces: the default, as in DynamoRIO,
    /// unless -no_traces turns them off. It builds them, or with -aot
    /// translates for runs that do (their files are keyed apart from
    /// runs without: a file for them has its exits readied for traces).
    pub fn with_traces(&self) -> bool {
        !self.no_traces
    }
}

/// One `-c NAME opts...` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    pub name: String,
    pub options: Vec<OsString>,
}

/// Result of a successful parse.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Print(String),
}

/// A command-line mistake: one line on stderr, exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dbirun: {}", self.0)
    }
}

const HINT: &str = "(see dbirun --help)";

/// Shown after the option list; the client list is added at run time.
const AFTER_HELP: &str =
    "Every option also has its DynamoRIO single-dash spelling (-v, -stats, -persist, \
-persist_dir DIR, -no_follow_children, ...); in long names '_' and '-' are interchangeable.
The '--' before APP may be left out when no client is given and APP is the first argument \
that is not an option.";

/// The clap view of the options, after normalisation. `-c` appears only so
/// that `--help` documents it: the pre-pass removes every client group first.
#[derive(Parser, Debug)]
#[command(
    name = "dbirun",
    version,
    about = "Run an application under the dbi runtime.",
    override_usage = USAGE,
    args_override_self = true,
)]
struct Cli {
    /// Log what the runtime does (to stderr)
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print translation statistics when the application exits: one
    /// summary for every process it started (to dbirun's stderr)
    #[arg(long = "stats")]
    stats: bool,
    /// Write the -stats summary to FILE instead of stderr
    #[arg(long = "stats_file", value_name = "FILE")]
    stats_file: Option<PathBuf>,
    /// With -stats, also print each process's own counters, labelled with its pid and program
    #[arg(long = "stats_per_process")]
    stats_per_process: bool,
    /// Reuse translated code across runs (persistent code cache)
    #[arg(long = "persist")]
    persist: bool,
    /// Directory of the persistent code cache
    #[arg(long = "persist_dir", value_name = "DIR")]
    persist_dir: Option<PathBuf>,
    /// With -persist, write cache files in the run's own processes instead of handing them to the cache server
    #[arg(long = "no_persist_server")]
    no_persist_server: bool,
    /// With -persist: do not run the program; translate its code (and its libraries') ahead of time into the cache, so its first run is warm
    #[arg(long = "aot")]
    aot: bool,
    /// With -aot: translate only the modules FILE names, from the block offsets it lists too (written by cachetool aot --from-index)
    #[arg(long = "aot_seeds", value_name = "FILE")]
    aot_seeds: Option<PathBuf>,
    /// With -aot: print a progress line every 16,384 blocks of a module
    #[arg(long = "aot_progress", hide = true)]
    aot_progress: bool,
    /// With -aot: write a module's blocks to its file every N blocks and reuse their memory (default 262144; about 1 KiB each)
    #[arg(long = "aot_batch", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    aot_batch: Option<u64>,
    /// Run child processes natively instead of under the runtime
    #[arg(long = "no_follow_children")]
    no_follow_children: bool,
    /// Test only: never run any code natively (disables the runtime's native-execution shortcuts)
    #[arg(long = "no_native_exec", hide = true)]
    no_native_exec: bool,
    /// Join hot paths of blocks into traces (code built from the path a loop actually runs, indirect branches checked in line); with -persist, files keep them. The default
    #[arg(long = "traces")]
    traces: bool,
    /// No traces (DynamoRIO's -disable_traces), even with -traces (from DBIRUN_OPTIONS, say)
    #[arg(long = "no_traces")]
    no_traces: bool,
    /// Calls and returns in the form the CPU's return stack predicts (a few percent faster on call-heavy compilers, slower on interpreters)
    #[arg(long = "predicted_returns")]
    predicted_returns: bool,
    /// Directory for client output files (default: the current directory)
    #[arg(long = "logdir", value_name = "DIR")]
    logdir: Option<PathBuf>,
    /// Run with built-in client CLIENT; the arguments after it, up to the next -c or '--', are its options
    #[arg(short = 'c', long = "client", value_name = "CLIENT")]
    client: Vec<String>,
    /// Print dbirun's manual page (roff) and exit
    #[arg(long = "man", hide = true)]
    man: bool,
}

/// Canonical long name (as clap knows it) and whether the option takes a value.
struct Known {
    canonical: &'static str,
    spellings: &'static [&'static str],
    takes_value: bool,
}

const KNOWN: &[Known] = &[
    Known {
        canonical: "--verbose",
        spellings: &["-v", "--v", "-verbose", "--verbose"],
        takes_value: false,
    },
    Known {
        canonical: "--stats",
        spellings: &["-stats", "--stats"],
        takes_value: false,
    },
    Known {
        canonical: "--stats_file",
        spellings: &["-stats_file", "--stats_file", "--stats-file"],
        takes_value: true,
    },
    Known {
        canonical: "--stats_per_process",
        spellings: &["-stats_per_process", "--stats_per_process", "--stats-per-process"],
        takes_value: false,
    },
    Known {
        canonical: "--persist",
        spellings: &["-persist", "--persist"],
        takes_value: false,
    },
    Known {
        canonical: "--persist_dir",
        spellings: &["-persist_dir", "--persist_dir", "--persist-dir"],
        takes_value: true,
    },
    Known {
        canonical: "--no_persist_server",
        spellings: &["-no_persist_server", "--no_persist_server", "--no-persist-server"],
        takes_value: false,
    },
    Known {
        canonical: "--aot",
        spellings: &["-aot", "--aot"],
        takes_value: false,
    },
    Known {
        canonical: "--aot_progress",
        spellings: &["-aot_progress", "--aot_progress", "--aot-progress"],
        takes_value: false,
    },
    Known {
        canonical: "--aot_batch",
        spellings: &["-aot_batch", "--aot_batch", "--aot-batch"],
        takes_value: true,
    },
    Known {
        canonical: "--aot_seeds",
        spellings: &["-aot_seeds", "--aot_seeds", "--aot-seeds"],
        takes_value: true,
    },
    Known {
        canonical: "--no_follow_children",
        spellings: &[
            "-no_follow_children",
            "--no_follow_children",
            "--no-follow-children",
        ],
        takes_value: false,
    },
    Known {
        canonical: "--no_native_exec",
        spellings: &["-no_native_exec", "--no_native_exec", "--no-native-exec"],
        takes_value: false,
    },
    Known {
        canonical: "--traces",
        spellings: &["-traces", "--traces"],
        takes_value: false,
    },
    Known {
        canonical: "--no_traces",
        spellings: &["-no_traces", "--no_traces", "--no-traces", "-disable_traces"],
        takes_value: false,
    },
    Known {
        canonical: "--predicted_returns",
        spellings: &["-predicted_returns", "--predicted_returns", "--predicted-returns"],
        takes_value: false,
    },
    Known {
        canonical: "--logdir",
        spellings: &["-logdir", "--logdir"],
        takes_value: true,
    },
    Known {
        canonical: "--man",
        spellings: &["-man", "--man"],
        takes_value: false,
    },
    Known {
        canonical: "--help",
        spellings: &["-h", "-help", "--help"],
        takes_value: false,
    },
    Known {
        canonical: "--version",
        spellings: &["-V", "-version", "--version"],
        takes_value: false,
    },
];

const CLIENT_SPELLINGS: &[&str] = &["-c", "--client"];

/// The arguments split into the three parts the pre-pass recognises.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    /// Starts with the program name; only canonical `--name[=value]` forms follow.
    launcher: Vec<OsString>,
    clients: Vec<(OsString, Vec<OsString>)>,
    /// APP and its arguments.
    command: Vec<OsString>,
}

fn is_client_flag(arg: &OsStr) -> bool {
    CLIENT_SPELLINGS
        .iter()
        .any(|s| arg.as_bytes() == s.as_bytes())
}

fn join(a: &str, b: &OsStr) -> OsString {
    let mut bytes = a.as_bytes().to_vec();
    bytes.extend_from_slice(b.as_bytes());
    OsString::from_vec(bytes)
}

fn split(args: &[OsString]) -> Result<Split, UsageError> {
    let mut launcher = vec![OsString::from("dbirun")];
    let mut clients = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_os_str();
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            i += 1;
            break;
        }
        // A lone "-" is not an option in any tool's convention: take it as APP.
        if !bytes.starts_with(b"-") || bytes == b"-" {
            break;
        }
        if is_client_flag(arg) {
            let name = match args.get(i + 1) {
                Some(n) if n.as_bytes() != b"--" => n.clone(),
                _ => {
                    return Err(UsageError(format!(
                        "option '{}' requires a client name {HINT}",
                        arg.to_string_lossy()
                    )))
                }
            };
            i += 2;
            let start = i;
            while i < args.len() && args[i].as_bytes() != b"--" && !is_client_flag(&args[i]) {
                i += 1;
            }
            clients.push((name, args[start..i].to_vec()));
            continue;
        }
        let (head, inline_value) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) => (&bytes[..eq], Some(OsStr::from_bytes(&bytes[eq + 1..]))),
            None => (bytes, None),
        };
        let known = KNOWN.iter().find(|k| {
            let spelled = |s: &&str| s.as_bytes() == if k.takes_value { head } else { bytes };
            k.spellings.iter().any(spelled)
        });
        let Some(known) = known else {
            return Err(UsageError(format!(
                "unknown option '{}' {HINT}",
                arg.to_string_lossy()
            )));
        };
        if known.takes_value {
            // Always glued with '=' so clap never mistakes a value such as "-x" for an option.
            let value = match inline_value {
                Some(v) => v.to_os_string(),
                None => match args.get(i + 1) {
                    Some(v) if v.as_bytes() != b"--" => {
                        i += 1;
                        v.clone()
                    }
                    _ => {
                        return Err(UsageError(format!(
                            "option '{}' requires a value {HINT}",
                            arg.to_string_lossy()
                        )))
                    }
                },
            };
            if value.is_empty() {
                return Err(UsageError(format!(
                    "option '{}' requires a non-empty value {HINT}",
                    String::from_utf8_lossy(head)
                )));
            }
            launcher.push(join(&format!("{}=", known.canonical), &value));
        } else {
            launcher.push(OsString::from(known.canonical));
        }
        i += 1;
    }
    let command = args.get(i..).unwrap_or(&[]).to_vec();
    Ok(Split {
        launcher,
        clients,
        command,
    })
}

fn available_clients() -> String {
    if clients::BUILT_IN.is_empty() {
        "none".to_string()
    } else {
        clients::BUILT_IN.join(", ")
    }
}

/// dbirun's manual page (roff), from the same definitions as `--help`.
fn manual() -> String {
    let command = Cli::command().after_help(format!("{AFTER_HELP}\n{}", clients_help()));
    let mut out = Vec::new();
    clap_mangen::Man::new(command).render(&mut out).expect("rendering into memory");
    String::from_utf8_lossy(&out).into_owned()
}

/// The clients and their options, for `--help`.
fn clients_help() -> String {
    let mut text = String::from("Built-in clients (-c NAME -help for one):\n");
    for (name, what, options) in clients::HELP {
        let opts: Vec<&str> = options.iter().map(|(o, _)| *o).collect();
        let usage = if opts.is_empty() { name.to_string() } else { format!("{name} [{}]", opts.join("] [")) };
        text.push_str(&format!("  {usage:<32} {what}\n"));
    }
    text
}

fn clap_error(e: clap::Error) -> UsageError {
    // The pre-pass already rejected everything clap could object to; keep one line anyway.
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    UsageError(format!("{first} {HINT}"))
}

/// Parses dbirun's own argv (`args[0]` is the program name).
pub fn parse(args: &[OsString]) -> Result<Parsed, UsageError> {
    let split = split(args)?;
    let command = Cli::command();
    // The help text lists the clients: built only when it is shown.
    let asks_for_help = split.launcher.iter().any(|a| a == "--help");
    let command = if asks_for_help { command.after_help(format!("{AFTER_HELP}\n{}", clients_help())) } else { command };
    let matches = match command.try_get_matches_from(&split.launcher) {
        Ok(matches) => matches,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(Parsed::Print(e.render().to_string()));
        }
        Err(e) => return Err(clap_error(e)),
    };
    let cli = Cli::from_arg_matches(&matches).map_err(clap_error)?;
    if cli.man {
        return Ok(Parsed::Print(manual()));
    }

    // `-c NAME -help`: that client's options, nothing run.
    if let Some((name, _)) = split.clients.iter().find(|(_, o)| o.iter().any(|a| a == "-help" || a == "--help" || a == "-h")) {
        return match name.to_str().and_then(clients::help) {
            Some(text) => Ok(Parsed::Print(text)),
            None => Err(UsageError(format!("unknown client '{}' (available: {})", name.to_string_lossy(), available_clients()))),
        };
    }
    let mut clients = Vec::new();
    for (name, options) in split.clients {
        let name = match name.to_str() {
            Some(n) if clients::BUILT_IN.contains(&n) => n.to_string(),
            _ => {
                return Err(UsageError(format!(
                    "unknown client '{}' (available: {})",
                    name.to_string_lossy(),
                    available_clients()
                )))
            }
        };
        clients.push(ClientSpec { name, options });
    }

    let mut command = split.command.into_iter();
    let Some(app) = command.next() else {
        let why = if clients.is_empty() {
            "no application given"
        } else {
            "no application given (client options run until '--')"
        };
        return Err(UsageError(format!("{why}; usage: {USAGE}")));
    };

    Ok(Parsed::Run(Options {
        verbose: cli.verbose,
        stats: cli.stats || cli.stats_file.is_some() || cli.stats_per_process,
        stats_file: cli.stats_file,
        stats_per_process: cli.stats_per_process,
        persist: cli.persist,
        persist_dir: cli.persist_dir,
        no_persist_server: cli.no_persist_server,
        aot: cli.aot,
        aot_seeds: cli.aot_seeds,
        aot_progress: cli.aot_progress,
        aot_batch: cli.aot_batch,
        no_follow_children: cli.no_follow_children,
        no_native_exec: cli.no_native_exec,
        traces: cli.traces,
        no_traces: cli.no_traces,
        predicted_returns: cli.predicted_returns,
        logdir: cli.logdir,
        clients,
        app,
        app_args: command.collect(),
    }))
}

/// The environment variable holding default options for every run (as
/// DynamoRIO's `DYNAMORIO_OPTIONS`): a CI job sets `-persist` once.
pub const ENV_OPTIONS: &str = "DBIRUN_OPTIONS";

/// [`parse`] with the default options of `env_options` (the value of
/// [`ENV_OPTIONS`], words split at whitespace) beneath the command line's:
/// flags add up, the command line's `-persist_dir`/`-logdir` win, and
/// clients given on the command line replace the default ones.
pub fn parse_with_defaults(args: &[OsString], env_options: Option<&OsStr>) -> Result<Parsed, UsageError> {
    let parsed = parse(args)?;
    let (Parsed::Run(opts), Some(env)) = (&parsed, env_options) else { return Ok(parsed) };
    let words: Vec<OsString> = env.as_bytes().split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(|w| OsString::from_vec(w.to_vec())).collect();
    if words.is_empty() {
        return Ok(parsed);
    }
    if words.iter().any(|w| w == "--") {
        return Err(UsageError(format!("{ENV_OPTIONS}: holds options only, not '--' or an application")));
    }
    // Parsed as a command line of their own, with a stand-in application.
    let own: Vec<OsString> = std::iter::once(OsString::from("dbirun")).chain(words).chain(["--".into(), "app".into()]).collect();
    let defaults = match parse(&own) {
        Ok(Parsed::Run(d)) => d,
        Ok(Parsed::Print(_)) => return Err(UsageError(format!("{ENV_OPTIONS}: holds options only, not help or version requests"))),
        Err(UsageError(why)) => return Err(UsageError(format!("{ENV_OPTIONS}: {why}"))),
    };
    let o = opts.clone();
    Ok(Parsed::Run(Options {
        verbose: o.verbose || defaults.verbose,
        stats: o.stats || defaults.stats,
        stats_file: o.stats_file.or(defaults.stats_file),
        stats_per_process: o.stats_per_process || defaults.stats_per_process,
        persist: o.persist || defaults.persist,
        persist_dir: o.persist_dir.or(defaults.persist_dir),
        no_persist_server: o.no_persist_server || defaults.no_persist_server,
        aot: o.aot || defaults.aot,
        aot_seeds: o.aot_seeds.or(defaults.aot_seeds),
        aot_progress: o.aot_progress || defaults.aot_progress,
        aot_batch: o.aot_batch.or(defaults.aot_batch),
        no_follow_children: o.no_follow_children || defaults.no_follow_children,
        no_native_exec: o.no_native_exec || defaults.no_native_exec,
        traces: o.traces || defaults.traces,
        no_traces: o.no_traces || defaults.no_traces,
        predicted_returns: o.predicted_returns || defaults.predicted_returns,
        logdir: o.logdir.or(defaults.logdir),
        clients: if o.clients.is_empty() { defaults.clients } else { o.clients },
        app: o.app,
        app_args: o.app_args,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(list: &[&str], env: &str) -> Result<Parsed, UsageError> {
        parse_with_defaults(&args(list), Some(OsStr::new(env)))
    }

    #[test]
    fn manual_page() {
        let Ok(Parsed::Print(man)) = parse(&args(&["-man"])) else { panic!() };
        assert!(man.starts_with(".ie") || man.contains(".TH dbirun 1"), "{}", &man[..200.min(man.len())]);
        for want in ["persist_dir", "stats_file", "logdir", "inscount"] {
            assert!(man.contains(want), "{want} in the manual");
        }
    }

    #[test]
    fn client_help() {
        let Ok(Parsed::Print(text)) = parse(&args(&["-c", "bbcount", "-help"])) else { panic!() };
        assert!(text.starts_with("client bbcount: ") && text.contains("-top N"), "{text}");
        let Ok(Parsed::Print(text)) = parse(&args(&["-c", "null", "--help", "--", "ls"])) else { panic!() };
        assert!(text.contains("options: none"), "{text}");
        let Ok(Parsed::Print(all)) = parse(&args(&["-help"])) else { panic!() };
        for (name, _, options) in clients::HELP {
            assert!(all.contains(name), "{name} in {all}");
            for (o, _) in options.iter() {
                assert!(all.contains(o), "{o} in {all}");
            }
        }
        assert!(clients::BUILT_IN.iter().all(|n| clients::help(n).is_some()), "every client has help");
        assert!(parse(&args(&["-c", "nosuch", "-help"])).is_err());
    }

    #[test]
    fn default_options_from_the_environment() {
        let Ok(Parsed::Run(o)) = with_env(&["-stats", "--", "ls"], " -persist  -persist_dir /tmp/d -c bbcount -top 3 ") else { panic!() };
        assert!(o.persist && o.stats);
        assert_eq!(o.persist_dir.as_deref(), Some(std::path::Path::new("/tmp/d")));
        assert_eq!(o.clients, [ClientSpec { name: "bbcount".into(), options: vec!["-top".into(), "3".into()] }]);
        // The command line wins where both say something.
        let Ok(Parsed::Run(o)) = with_env(&["-persist_dir", "/x", "-c", "inscount", "--", "ls"], "-persist_dir /tmp/d -c bbcount") else { panic!() };
        assert_eq!(o.persist_dir.as_deref(), Some(std::path::Path::new("/x")));
        assert_eq!(o.clients.len(), 1);
        assert_eq!(o.clients[0].name, "inscount");
        assert_eq!(o.app, "ls");
        // Mistakes name the variable.
        for bad in ["-bogus", "-- ls", "-c nosuchclient", "--help"] {
            let e = with_env(&["--", "ls"], bad).unwrap_err().to_string();
            assert!(e.starts_with("dbirun: DBIRUN_OPTIONS: "), "{bad}: {e}");
        }
        // Empty is nothing.
        assert_eq!(with_env(&["--", "ls"], "  "), parse(&args(&["--", "ls"])));
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("dbirun")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn run(list: &[&str]) -> Options {
        match parse(&args(list)) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{list:?} did not parse to a run: {other:?}"),
        }
    }

    fn err(list: &[&str]) -> String {
        match parse(&args(list)) {
            Err(e) => e.to_string(),
            other => panic!("{list:?} did not fail: {other:?}"),
        }
    }

    #[test]
    fn plain_app() {
        let o = run(&["--", "ls", "-la", "--", "x"]);
        assert_eq!(o.app, "ls");
        assert_eq!(o.app_args, ["-la", "--", "x"]);
        assert!(!o.verbose && !o.stats && !o.persist && o.persist_dir.is_none());
        assert!(o.clients.is_empty());
    }

    #[test]
    fn app_without_double_dash_stops_option_parsing() {
        let o = run(&["-stats", "ls", "-v", "-stats"]);
        assert!(o.stats && !o.verbose);
        assert_eq!(o.app, "ls");
        assert_eq!(o.app_args, ["-v", "-stats"]);
    }

    #[test]
    fn every_flag_spelling() {
        for s in ["-v", "--v", "-verbose", "--verbose"] {
            assert!(run(&[s, "--", "a"]).verbose, "{s}");
        }
        for s in ["-stats", "--stats"] {
            assert!(run(&[s, "--", "a"]).stats, "{s}");
        }
        for s in ["-persist", "--persist"] {
            assert!(run(&[s, "--", "a"]).persist, "{s}");
        }
        for s in [
            "-no_follow_children",
            "--no_follow_children",
            "--no-follow-children",
        ] {
            assert!(run(&[s, "--", "a"]).no_follow_children, "{s}");
        }
        for s in ["-no_native_exec", "--no_native_exec", "--no-native-exec"] {
            assert!(run(&[s, "--", "a"]).no_native_exec, "{s}");
        }
    }

    #[test]
    fn persist_dir_spellings() {
        let cases: &[&[&str]] = &[
            &["-persist_dir", "/tmp/x"],
            &["--persist_dir", "/tmp/x"],
            &["--persist-dir", "/tmp/x"],
            &["--persist_dir=/tmp/x"],
            &["--persist-dir=/tmp/x"],
            &["-persist_dir=/tmp/x"],
        ];
        for case in cases {
            let mut list = case.to_vec();
            list.extend(["--", "a"]);
            assert_eq!(
                run(&list).persist_dir,
                Some(PathBuf::from("/tmp/x")),
                "{case:?}"
            );
        }
    }

    #[test]
    fn persist_dir_value_may_look_like_an_option() {
        assert_eq!(
            run(&["-persist_dir", "-weird", "a"]).persist_dir,
            Some(PathBuf::from("-weird"))
        );
        assert_eq!(
            run(&["--persist-dir=a=b", "a"]).persist_dir,
            Some(PathBuf::from("a=b"))
        );
    }

    #[test]
    fn repeated_options_are_accepted() {
        let o = run(&[
            "-v",
            "--verbose",
            "-persist_dir",
            "/a",
            "--persist-dir=/b",
            "--",
            "x",
        ]);
        assert!(o.verbose);
        assert_eq!(o.persist_dir, Some(PathBuf::from("/b")));
    }

    #[test]
    fn missing_values() {
        assert!(err(&["-persist_dir"]).contains("requires a value"));
        assert!(err(&["-persist_dir", "--", "a"]).contains("requires a value"));
        assert!(err(&["--persist-dir="]).contains("requires a non-empty value"));
        assert!(err(&["-persist_dir", ""]).contains("requires a non-empty value"));
        assert!(err(&["-c"]).contains("requires a client name"));
        assert!(err(&["-c", "--", "a"]).contains("requires a client name"));
    }

    #[test]
    fn unknown_options() {
        assert_eq!(
            err(&["-bogus", "--", "a"]),
            "dbirun: unknown option '-bogus' (see dbirun --help)"
        );
        assert_eq!(
            err(&["--bogus"]),
            "dbirun: unknown option '--bogus' (see dbirun --help)"
        );
        // Flags take no value, and short flags do not combine.
        assert!(err(&["--stats=1", "a"]).contains("unknown option '--stats=1'"));
        assert!(err(&["-vh"]).contains("unknown option '-vh'"));
        // Options after APP belong to APP; before it the check applies even then.
        assert_eq!(run(&["a", "-bogus"]).app_args, ["-bogus"]);
    }

    #[test]
    fn clients_and_their_options() {
        let o = run(&[
            "-v", "-c", "null", "-x", "--y", "z", "-c", "null", "--client", "null", "q", "--",
            "app", "arg",
        ]);
        assert!(o.verbose);
        let got: Vec<(String, Vec<OsString>)> =
            o.clients.into_iter().map(|c| (c.name, c.options)).collect();
        let want: Vec<(String, Vec<OsString>)> = vec![
            ("null".into(), vec!["-x".into(), "--y".into(), "z".into()]),
            ("null".into(), vec![]),
            ("null".into(), vec!["q".into()]),
        ];
        assert_eq!(got, want);
        assert_eq!(o.app, "app");
        assert_eq!(o.app_args, ["arg"]);
    }

    #[test]
    fn client_options_can_spell_launcher_options() {
        // "-stats" after -c belongs to the client, not to dbirun.
        let o = run(&["-c", "null", "-stats", "--", "a"]);
        assert!(!o.stats);
        assert_eq!(o.clients[0].options, ["-stats"]);
    }

    #[test]
    fn unknown_client() {
        assert_eq!(
            err(&["-c", "nosuch", "--", "/bin/true"]),
            format!(
                "dbirun: unknown client 'nosuch' (available: {})",
                clients::BUILT_IN.join(", ")
            )
        );
    }

    #[test]
    fn missing_app() {
        assert!(err(&[]).contains("no application given"));
        assert!(err(&["-v", "--"]).contains("no application given"));
        // Without '--' the client swallows the rest.
        assert!(err(&["-c", "null", "/bin/true"]).contains("client options run until '--'"));
        for e in [err(&[]), err(&["-c", "null", "/bin/true"])] {
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn lone_dash_is_the_app() {
        assert_eq!(run(&["-stats", "-", "x"]).app, "-");
    }

    #[test]
    fn help_and_version() {
        for s in ["-h", "-help", "--help"] {
            match parse(&args(&[s])) {
                Ok(Parsed::Print(text)) => {
                    assert!(text.contains("--persist_dir"), "{text}");
                    assert!(text.contains("Usage: dbirun [options]"), "{text}");
                    assert!(
                        !text.contains("no_native_exec"),
                        "test-only option must stay hidden"
                    );
                    assert!(text.contains("Built-in clients (-c NAME -help for one):"), "{text}");
                    assert!(clients::BUILT_IN.iter().all(|c| text.contains(&format!("\n  {c}"))), "{text}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        for s in ["-V", "-version", "--version"] {
            match parse(&args(&[s])) {
                Ok(Parsed::Print(text)) => assert!(text.starts_with("dbirun "), "{text}"),
                other => panic!("{s}: {other:?}"),
            }
        }
        // Help wins over a missing APP, as users expect.
        assert!(matches!(
            parse(&args(&["-stats", "-h"])),
            Ok(Parsed::Print(_))
        ));
    }

    #[test]
    fn non_utf8_arguments_pass_through() {
        let weird = OsString::from_vec(vec![b'a', 0xff, b'b']);
        let mut list = args(&["-persist_dir"]);
        list.push(weird.clone());
        list.push("--".into());
        list.push(weird.clone());
        list.push(weird.clone());
        match parse(&list) {
            Ok(Parsed::Run(o)) => {
                assert_eq!(o.persist_dir, Some(PathBuf::from(weird.clone())));
                assert_eq!(o.app, weird);
                assert_eq!(o.app_args, [weird]);
            }
            other => panic!("{other:?}"),
        }
    }
}
