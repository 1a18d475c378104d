//! `cachetool`: the command line over a directory of persisted code caches
//! and its index. Each command's work is in the library; this file parses
//! the command line, and `commands/` prints each command's results
//! (tables, or JSON with `--json`).
//!
//! Exit statuses: 0 done (verify: every file valid), 1 a problem (verify
//! found one, a missing directory, a corrupt bundle...), 2 usage.

mod commands;
mod output;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use cachetool::units;
use clap::{Args, Parser, Subcommand};

use session::{fail, Fail, Result};

#[derive(Parser)]
#[command(name = "cachetool", version, about = "Inspect, verify, prune, export, import, push and pull dbirun's persisted code caches")]
struct Cli {
    /// The cache directory (the per-user one dbirun writes into:
    /// `<persist_dir>/<uid>`); default `$XDG_CACHE_HOME/dbirun/<uid>`
    /// (else `~/.cache/dbirun/<uid>`).
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "persist_dir")]
    dir: Option<PathBuf>,
    /// Like dbirun's -persist_dir: use `BASE/<uid>`.
    #[arg(long, global = true, value_name = "BASE")]
    persist_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One row per cache file: module, blocks, size, last use, status
    /// (fits 100 columns; --wide adds the key and the file name).
    List {
        /// Every column, at full width.
        #[arg(long)]
        wide: bool,
    },
    /// A file's header, key, zones (with checksums), client data, blocks.
    Inspect {
        /// A cache file (path or name), or a module (path or file name).
        what: String,
        /// List the blocks (module offset, size, exits).
        #[arg(long)]
        blocks: bool,
        /// List the traces (head, where their code is, the blocks they hold, exits).
        #[arg(long)]
        traces: bool,
        /// Disassemble the block at this module offset next to the app code.
        #[arg(long, value_name = "OFFSET", value_parser = parse_offset)]
        disasm: Option<u64>,
    },
    /// Check every file's checksums, structure and key against the modules
    /// on disk; exit status 1 with one line per problem.
    Verify {
        /// Also translate every block again from its module's bytes and
        /// compare the code (slow: an AOT translation per file).
        #[arg(long)]
        deep: bool,
        /// With --deep, only these cache files (path or name) or modules.
        #[arg(requires = "deep")]
        what: Vec<String>,
    },
    /// Delete cache files by policy (files being written are skipped).
    Prune(PruneArgs),
    /// Hit rates per module and overall, from the recorded runs.
    Stats {
        /// Forget the recorded runs first (the cache files stay).
        #[arg(long)]
        zero: bool,
    },
    /// The recorded runs, newest first: when, status, duration, hit rate, command.
    Runs {
        /// How many runs to show.
        #[arg(long, value_name = "N", default_value_t = 20)]
        last: u32,
    },
    /// Write valid caches to a bundle (tar + zstd with a manifest).
    Export {
        bundle: PathBuf,
        /// Only the files of this module (repeatable).
        #[arg(long, value_name = "PATH")]
        module: Vec<String>,
    },
    /// Take the files of a bundle that fit this machine.
    Import {
        bundle: PathBuf,
        /// Overwrite valid local files too.
        #[arg(long)]
        replace: bool,
    },
    /// Send valid cache files to a remote store (S3 bucket or bazel-remote
    /// HTTP cache), for other machines to pull (docs/remote.md).
    Push {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Only the files of these modules (paths); default every valid file.
        #[arg(value_name = "MODULE")]
        modules: Vec<String>,
        /// Files sent at once.
        #[arg(long, value_name = "N", default_value_t = 4)]
        jobs: usize,
    },
    /// Fetch from a remote store the files of these programs (with the
    /// libraries they load) or modules, checked in full before use.
    Pull {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Programs (the interpreter and libraries they load at start come
        /// with them) or shared libraries.
        #[arg(value_name = "PROGRAM|MODULE", required_unless_present = "all_known")]
        what: Vec<PathBuf>,
        /// Also every module this directory's files were made from.
        #[arg(long)]
        all_known: bool,
        /// Overwrite valid local files too.
        #[arg(long)]
        replace: bool,
        /// Take only files whose manifests this ed25519 public key (hex)
        /// signed (repeatable; also $DBIRUN_TRUSTED_KEYS, comma-separated).
        #[arg(long, value_name = "PUBLIC_KEY")]
        trust: Vec<String>,
        /// Publish a file only once its blocks, translated again on this
        /// machine, match (slow: an AOT translation per file).
        #[arg(long)]
        deep: bool,
    },
    /// Make an ed25519 key pair for signed pushes: prints
    /// DBIRUN_SIGNING_KEY=... (keep it secret: the pushing job's
    /// environment) and DBIRUN_TRUSTED_KEYS=... (for pulling machines).
    Keygen,
    /// Recreate the index from the files (keeps run history when readable).
    RebuildIndex,
    /// Show or set the directory's settings: `config max-size 2G` (a size
    /// budget every dbirun -persist run enforces, least recently used
    /// files first; `none` to clear it).
    Config {
        key: Option<String>,
        value: Option<String>,
    },
    /// Translate programs ahead of time into the cache (dbirun -persist -aot), so their first runs are warm
    Aot {
        /// Translate with this client and its options, as `dbirun -c NAME OPTIONS` would run (repeat for several), e.g. --client 'bbcount -top 5'
        #[arg(long = "client", value_name = "'NAME [OPTIONS]'")]
        clients: Vec<String>,
        /// Translate again every module the directory's files know, for every configuration (clients, options) they were built with, from the blocks they hold plus static discovery: after a dbirun upgrade, the next runs are warm
        #[arg(long = "from-index", conflicts_with_all = ["clients", "programs"])]
        from_index: bool,
        /// The programs (their libraries come with them), or libraries alone
        #[arg(required_unless_present = "from_index", value_name = "PROGRAM|LIBRARY")]
        programs: Vec<PathBuf>,
    },
    /// The cache server of the directory (dbicached): start, status, stop.
    Server {
        #[command(subcommand)]
        action: commands::server::Action,
    },
    /// Print cachetool's manual page (roff).
    #[command(hide = true)]
    Man,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Files not used for this long (e.g. 30d, 12h).
    #[arg(long, value_name = "AGE", value_parser = units::parse_age)]
    pub older_than: Option<i64>,
    /// Then the least recently used until the rest fits (e.g. 500M).
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub max_size: Option<u64>,
    /// Files whose module changed or is gone, and corrupt files (every
    /// checksum read, as verify does).
    #[arg(long)]
    pub stale: bool,
    /// Corrupt files and files the runtime refuses (owner, mode): what
    /// verify reports besides stale files and other versions.
    #[arg(long)]
    pub corrupt: bool,
    /// Files of other runtime or format versions.
    #[arg(long)]
    pub other_versions: bool,
    /// Files of this module: its path (through symlinks) or base name
    /// (repeatable).
    #[arg(long, value_name = "PATH")]
    pub module: Vec<String>,
    /// Every cache file.
    #[arg(long)]
    pub all: bool,
    /// Print what would go, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct RemoteArgs {
    /// The store: s3://BUCKET[/PREFIX] (credentials, region and endpoint
    /// from the AWS_* environment) or http[s]://HOST[:PORT][/PREFIX] (a
    /// cache in bazel-remote's layout); default $DBIRUN_REMOTE.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Seconds each request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

impl RemoteArgs {
    fn open(&self) -> Result<(Box<dyn remote::Store>, String)> {
        let location = match remote::Location::from_option_or_env(self.remote.as_deref()) {
            Ok(Some(l)) => l,
            Ok(None) => return fail(format_args!("no remote store: give --remote URL or set {}", remote::location::ENV)),
            Err(why) => return fail(why),
        };
        let store = remote::open(&location, std::time::Duration::from_secs(self.timeout.max(1))).map_err(|e| Fail(e.to_string()))?;
        Ok((store, location.to_string()))
    }
}

fn parse_offset(s: &str) -> std::result::Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad offset '{s}' (decimal or 0x hex)"))
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `cachetool list | head -1` would panic on the
    // closed pipe; Unix tools die of the signal quietly instead.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(&cli) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("cachetool: {msg}");
            ExitCode::from(1)
        }
    }
}

/// clap's errors span several lines; the documented form is one line
/// `cachetool: ...` pointing at --help, exit status 2. Help and version
/// requests print as clap formats them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { 2 } else { 0 });
    }
    let rendered = e.render().to_string();
    // The message and what it lists (a missing argument's name), without
    // clap's tips and usage block.
    let what: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let line = what.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    eprintln!("cachetool: {line} (see cachetool --help)");
    ExitCode::from(2)
}

fn cache_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.dir {
        return Ok(d.clone());
    }
    let base = cli.persist_dir.clone().or_else(cachetool::cache_dir::default_base);
    match base {
        Some(b) => Ok(cachetool::cache_dir::user_dir(&b)),
        None => fail("no cache directory (set HOME, or give --dir)"),
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    if let Command::Man = cli.command {
        let mut out = Vec::new();
        clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out).map_err(|e| Fail(e.to_string()))?;
        std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(|e| Fail(e.to_string()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = cache_dir(cli)?;
    match &cli.command {
        Command::List { wide } => commands::list::run(&dir, *wide, cli.json),
        Command::Inspect { what, blocks, traces, disasm } => commands::inspect::run(&dir, what, *blocks, *traces, *disasm, cli.json),
        Command::Verify { deep: false, .. } => commands::verify::run(&dir, cli.json),
        Command::Verify { deep: true, what } => commands::verify::deep(&dir, what, cli.json),
        Command::Prune(args) => commands::prune::run(&dir, args, cli.json),
        Command::Stats { zero } => commands::stats::run(&dir, *zero, cli.json),
        Command::Runs { last } => commands::runs::run(&dir, *last, cli.json),
        Command::Export { bundle, module } => commands::export::run(&dir, bundle, module, cli.json),
        Command::Import { bundle, replace } => commands::import::run(&dir, bundle, *replace, cli.json),
        Command::Push { remote, modules, jobs } => {
            let (store, url) = remote.open()?;
            commands::push::run(&dir, store.as_ref(), &url, modules, *jobs, cli.json)
        }
        Command::Pull { remote, what, all_known, replace, trust, deep } => {
            let (store, url) = remote.open()?;
            let wanted = commands::pull::Wanted { what, all_known: *all_known, replace: *replace, trust, deep: *deep };
            commands::pull::run(&dir, store.as_ref(), &url, &wanted, cli.json)
        }
        Command::Keygen => commands::keygen::run(cli.json),
        Command::RebuildIndex => commands::rebuild_index::run(&dir, cli.json),
        Command::Config { key, value } => commands::config::run(&dir, key.as_deref(), value.as_deref(), cli.json),
        Command::Server { action } => commands::server::run(&dir, action, cli.json),
        Command::Aot { clients, programs, from_index: false } => commands::aot::run(&dir, clients, programs, cli.json),
        Command::Aot { from_index: true, .. } => commands::aot::from_index(&dir, cli.json),
        Command::Man => unreachable!("handled before the directory is needed"),
    }
}
