//! The command line: the commands, `probe`'s arguments, and the parsers every command shares.
//! The other commands' arguments are in `args.rs`.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
pub(crate) use dnsprobe::cli::{
    DurationParser, NameParser, TargetArg, parse_rcode_arg, parse_target_arg, parse_type_arg,
};
use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::hickory_proto::rr::{Name, RecordType};

pub(crate) use crate::args::*;

/// Checks the cluster DNS of Kubernetes the way clients use it: DNS over UDP and TCP, with
/// strict reply matching, saying why a path fails. `hc-cli COMMAND --help` for each command;
/// docs/cli.md for the contracts.
#[derive(Debug, Parser)]
#[command(name = "hc-cli", version, propagate_version = true)]
pub(crate) struct Cli {
    /// When to colour output and logs: auto (a terminal, unless NO_COLOR is set or
    /// CLICOLOR_FORCE asks for it), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        hide_possible_values = true,
        display_order = 1000
    )]
    pub(crate) color: ColorChoice,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set; also when CLICOLOR_FORCE is.
    Auto,
    /// Always, whatever the environment.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send one DNS query to each target over UDP, TCP or both, and say whether it answered
    /// correctly.
    #[command(after_help = PROBE_HELP)]
    Probe(ProbeArgs),

    /// Network namespaces of this node.
    #[command(subcommand)]
    Netns(NetnsCommand),

    /// Probe the DNS targets from this namespace and from every pod network namespace at once,
    /// and say why each failing namespace fails.
    #[command(after_help = SWEEP_HELP)]
    Sweep(SweepArgs),

    /// The agent, on every node: probe and diagnose every interval, keep up/down state with
    /// thresholds, serve Prometheus metrics and a JSON status for the controller.
    #[command(after_help = RUN_HELP)]
    Run(Box<RunArgs>),

    /// Decide in one place: read a sample of the agents' status, build the node x CoreDNS-pod
    /// view, classify by quorum, and (on the Lease holder) repair CoreDNS when the fault is its.
    #[command(after_help = CONTROLLER_HELP)]
    Controller(Box<ControllerCmd>),

    /// The cluster view for a person: per CoreDNS pod how many nodes reach it over UDP and TCP,
    /// the nodes that reach none, the Service path, the verdicts and the last action.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),

    /// Watch the whole product work on this machine: a DNS server on loopback, the checking loop
    /// against it, a scripted UDP outage and its recovery, metrics; as root also a namespace
    /// sweep with a diagnosis. Ends by itself; no cluster, nothing left behind.
    Demo(DemoArgs),

    /// Print a shell completion script: bash, zsh or fish.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),

    /// Print the manual page (roff), or write one per command into a directory.
    #[command(
        after_help = "Examples:\n  hc-cli man | man -l -\n  hc-cli man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

const PROBE_HELP: &str = "\
Examples:
  # kubernetes.default.svc.cluster.local. A over UDP:
  hc-cli probe @10.96.0.10
  hc-cli probe @10.96.0.10 kubernetes.default.svc.cluster.local A
  # UDP dead while TCP answers?
  hc-cli probe --target 10.96.0.10 --both --expect 10.96.0.1
  hc-cli probe -s 10.244.0.5 -s 10.244.1.7 --tcp --json
  hc-cli probe @10.96.0.10 nope.default.svc.cluster.local --rcode NXDOMAIN

Words in any order, as dig takes them: @SERVER (repeatable), NAME, TYPE.

Healthy: a reply from the queried address and port, with the query's ID
and question, a response code in --rcode, and an answer holding every
--expect address (any answer without --expect). A truncated UDP reply is
retried over TCP, as dig does. With --both, a target whose UDP fails while
TCP works is named udp-blocked (tcp-blocked, dns-unreachable), as sweep
names it.
Failure kinds (JSON error.kind): timeout, refused, unreachable, rcode,
wrong-answer, empty-answer, truncated, malformed, io, mismatched,
not-probed.
Exit status: 0 every probe healthy, 1 any unhealthy, 2 bad usage,
3 run-time error.";

/// Arguments of `hc-cli probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// @SERVER, NAME and TYPE as dig takes them, in any order (beside the flags).
    #[arg(value_name = "@SERVER NAME TYPE")]
    pub(crate) words: Vec<String>,

    /// DNS server to query: IP or IP:PORT; IPv6 as [::1]:53 or bare ::1, with a zone as
    /// fe80::1%eth0. Repeat for more (or write @IP).
    #[arg(short = 's', long = "target", visible_alias = "ip", value_name = "IP[:PORT]", num_args = 1.., action = clap::ArgAction::Append, value_parser = parse_target_arg)]
    pub(crate) targets: Vec<TargetArg>,

    /// Port for targets given without one.
    #[arg(short, long, default_value_t = dnsprobe::DEFAULT_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) port: u16,

    /// Name to query (taken as fully qualified: no search list).
    /// [default: kubernetes.default.svc.cluster.local.]
    #[arg(short = 'q', long, value_parser = NameParser)]
    pub(crate) name: Option<Name>,

    /// Query type: A, AAAA, SRV, TXT, PTR, ... or TYPE<n>. [default: A]
    #[arg(short = 't', long = "type", value_name = "TYPE", value_parser = parse_type_arg)]
    pub(crate) query_type: Option<RecordType>,

    /// Query over TCP only.
    #[arg(short = 'T', long, conflicts_with = "both")]
    pub(crate) tcp: bool,

    /// Query over UDP and over TCP, each reported on its own.
    #[arg(long)]
    pub(crate) both: bool,

    /// An address the answer must contain. Repeat for more.
    #[arg(short = 'e', long = "expect", value_name = "IP")]
    pub(crate) expect: Vec<IpAddr>,

    /// With --expect: the answer must be exactly the --expect set, nothing more.
    #[arg(long, requires = "expect")]
    pub(crate) exact: bool,

    /// A response code counted as healthy (mnemonic or number). Repeat for more. [default: NOERROR]
    #[arg(long = "rcode", value_name = "CODE", value_parser = parse_rcode_arg)]
    pub(crate) rcodes: Vec<ResponseCode>,

    /// Time allowed for each attempt, e.g. 300ms, 2s (at most 1h).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = DurationParser)]
    pub(crate) timeout: Duration,

    /// Attempts per target and transport; each is a new query from a new port.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) attempts: u32,

    /// Do not retry a truncated UDP reply over TCP: report it as a failure.
    #[arg(long)]
    pub(crate) no_tcp_fallback: bool,

    /// Clear the RD (recursion desired) flag.
    #[arg(long)]
    pub(crate) no_recurse: bool,

    /// Send no EDNS(0) OPT record (plain 512-byte DNS).
    #[arg(long)]
    pub(crate) no_edns: bool,

    /// Print a JSON array, one object per target and transport.
    #[arg(short = 'j', long)]
    pub(crate) json: bool,
}

/// The query every probe of a sweep or an agent is made from: `name`, an answer that must hold
/// every `expect` address, `timeout` and `attempts` per probe.
pub(crate) fn probe_template(
    name: Name,
    expect: &[IpAddr],
    timeout: Duration,
    attempts: u32,
) -> dnsprobe::ProbeSpec {
    let any = std::net::SocketAddr::from(([0, 0, 0, 0], 53));
    (dnsprobe::ProbeSpec::new(any).with_name(name))
        .with_answer(dnsprobe::AnswerExpectation::all_of(expect))
        .with_timeout(timeout)
        .with_attempts(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
