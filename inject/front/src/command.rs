//! The part of dbirun's command line the front takes itself: the options
//! of a plain run, in every spelling dbirun-full accepts
//! (`inject/src/options.rs`, `KNOWN` and `split`), from the command line
//! and from `DBIRUN_OPTIONS`: clients that print no summary, with their
//! options, and `-logdir` among them. Anything else (a client that
//! summarises, `-stats`, `-v`, `-aot`, help, an unknown or malformed
//! option, no APP) is `None`: handed over to dbirun-full, which runs it or
//! says what is wrong.

use alloc::vec::Vec;

/// What a plain run asks for.
#[derive(Default)]
pub struct Request {
    pub persist: bool,
    /// As typed (absolute or not).
    pub persist_dir: Option<&'static [u8]>,
    pub no_persist_server: bool,
    pub no_follow_children: bool,
    pub no_traces: bool,
    pub predicted_returns: bool,
    /// As typed (absolute or not).
    pub logdir: Option<&'static [u8]>,
    /// Each client's name and options, in order.
    pub clients: Vec<(&'static [u8], Vec<&'static [u8]>)>,
    /// APP as typed, then its arguments.
    pub command: Vec<&'static [u8]>,
}

enum Flag {
    Persist,
    NoPersistServer,
    NoFollowChildren,
    Traces,
    NoTraces,
    PredictedReturns,
}

const FLAGS: &[(Flag, &[&[u8]])] = &[
    (Flag::Persist, &[b"-persist", b"--persist"]),
    (Flag::NoPersistServer, &[b"-no_persist_server", b"--no_persist_server", b"--no-persist-server"]),
    (Flag::NoFollowChildren, &[b"-no_follow_children", b"--no_follow_children", b"--no-follow-children"]),
    (Flag::Traces, &[b"-traces", b"--traces"]),
    (Flag::NoTraces, &[b"-no_traces", b"--no_traces", b"--no-traces", b"-disable_traces"]),
    (Flag::PredictedReturns, &[b"-predicted_returns", b"--predicted_returns", b"--predicted-returns"]),
];

const PERSIST_DIR: &[&[u8]] = &[b"-persist_dir", b"--persist_dir", b"--persist-dir"];
const LOGDIR: &[&[u8]] = &[b"-logdir", b"--logdir"];
const CLIENT: &[&[u8]] = &[b"-c", b"--client"];

/// The built-in clients but those that print a summary after the app
/// (`clients::SUMMARIZING`, for which dbirun-full waits):
/// `inject/tests/launcher.rs` checks every built-in client is either here
/// or handed over.
const QUIET_CLIENTS: &[&[u8]] = &[b"null", b"bbcount", b"opcodes", b"drcov", b"instrace", b"memtrace"];

/// What asks dbirun-full for a client's help.
const HELP: &[&[u8]] = &[b"-help", b"--help", b"-h"];

impl Request {
    fn set(&mut self, flag: &Flag) {
        match flag {
            Flag::Persist => self.persist = true,
            Flag::NoPersistServer => self.no_persist_server = true,
            Flag::NoFollowChildren => self.no_follow_children = true,
            // The default: saying it again changes nothing.
            Flag::Traces => {}
            Flag::NoTraces => self.no_traces = true,
            Flag::PredictedReturns => self.predicted_returns = true,
        }
    }

    /// Takes the options at the start of `args` (stopping at `--`, or at
    /// the first word that is not an option); the index after them, or
    /// None for anything the front leaves to dbirun-full.
    fn take_options(&mut self, args: &[&'static [u8]]) -> Option<usize> {
        let mut i = 0;
        while let Some(&arg) = args.get(i) {
            if arg == b"--" {
                return Some(i + 1);
            }
            // A lone "-" is APP, as in dbirun-full.
            if !arg.starts_with(b"-") || arg == b"-" {
                return Some(i);
            }
            if let Some((flag, _)) = FLAGS.iter().find(|(_, spellings)| spellings.contains(&arg)) {
                self.set(flag);
                i += 1;
                continue;
            }
            if CLIENT.contains(&arg) {
                let name = *args.get(i + 1).filter(|n| QUIET_CLIENTS.contains(n))?;
                i += 2;
                let start = i;
                // Its options run until `--` or the next client, as in dbirun-full.
                while args.get(i).is_some_and(|a| *a != b"--" && !CLIENT.contains(a)) {
                    i += 1;
                }
                let options = &args[start..i];
                if options.iter().any(|o| HELP.contains(o)) {
                    return None;
                }
                self.clients.push((name, options.to_vec()));
                continue;
            }
            let (head, inline) = match arg.iter().position(|&b| b == b'=') {
                Some(eq) => (&arg[..eq], Some(&arg[eq + 1..])),
                None => (arg, None),
            };
            let is_logdir = LOGDIR.contains(&head);
            if !is_logdir && !PERSIST_DIR.contains(&head) {
                return None;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    *args.get(i).filter(|v| **v != b"--")?
                }
            };
            if value.is_empty() {
                return None;
            }
            // Given twice, the last wins (clap's `args_override_self`).
            if is_logdir {
                self.logdir = Some(value);
            } else {
                self.persist_dir = Some(value);
            }
            i += 1;
        }
        Some(i)
    }
}

/// The request of `args` (argv without the program name) with the
/// defaults of `env_options` (`DBIRUN_OPTIONS`) beneath: flags add up, the
/// command line's `-persist_dir` and `-logdir` win, and its clients replace
/// the defaults', as in dbirun-full.
pub fn parse(args: &[&'static [u8]], env_options: Option<&'static [u8]>) -> Option<Request> {
    let mut request = Request::default();
    let after = request.take_options(args)?;
    request.command = args[after..].to_vec();
    if request.command.is_empty() {
        return None;
    }
    let words: Vec<&'static [u8]> =
        env_options.unwrap_or_default().split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect();
    if !words.is_empty() {
        let mut defaults = Request::default();
        // Options only: `--` or a word that is no option is dbirun-full's to report.
        if words.iter().any(|w| *w == b"--") || defaults.take_options(&words)? != words.len() {
            return None;
        }
        request.persist |= defaults.persist;
        request.persist_dir = request.persist_dir.or(defaults.persist_dir);
        request.no_persist_server |= defaults.no_persist_server;
        request.no_follow_children |= defaults.no_follow_children;
        request.no_traces |= defaults.no_traces;
        request.predicted_returns |= defaults.predicted_returns;
        request.logdir = request.logdir.or(defaults.logdir);
        if request.clients.is_empty() {
            request.clients = defaults.clients;
        }
    }
    Some(request)
}
