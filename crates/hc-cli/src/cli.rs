//! The command line: the commands, `probe`'s arguments, and the parsers every command shares.
//! The other commands' arguments are in `args.rs`.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::hickory_proto::rr::{Name, RecordType};

pub(crate) use crate::args::*;

/// Checks the cluster DNS of Kubernetes the way clients use it: DNS over UDP and TCP, with
/// strict reply matching, saying why a path fails. `hc-cli COMMAND --help` for each command;
/// docs/cli.md for the contracts.
#[derive(Debug, Parser)]
#[command(name = "hc-cli", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
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
    Controller(Box<ControllerArgs>),

    /// The cluster view for a person: per CoreDNS pod how many nodes reach it over UDP and TCP,
    /// the nodes that reach none, the Service path, the verdicts and the last action.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),

    /// Watch the whole product work on this machine: a DNS server on loopback, the checking loop
    /// against it, a scripted UDP outage and its recovery, metrics; as root also a namespace
    /// sweep with a diagnosis. Ends by itself; no cluster, nothing left behind.
    Demo(DemoArgs),
}

const PROBE_HELP: &str = "\
Examples:
  hc-cli probe --target 10.96.0.10                  # kubernetes.default.svc.cluster.local A over UDP
  hc-cli probe --target 10.96.0.10 --both --expect 10.96.0.1   # UDP dead while TCP answers?
  hc-cli probe --target 10.244.0.5 --target 10.244.1.7 --tcp --json
  hc-cli probe --target 10.96.0.10 --name nope.default.svc.cluster.local --rcode NXDOMAIN

Healthy: a reply from the queried address and port, with the query's ID and question, a
response code in --rcode, and an answer holding every --expect address (any answer without
--expect). A truncated UDP reply is retried over TCP, as dig does.
Failure kinds (JSON error.kind): timeout, refused, unreachable, rcode, wrong-answer,
empty-answer, truncated, malformed, io.
Exit status: 0 every probe healthy, 1 any unhealthy, 2 bad usage, 3 run-time error.";

/// Arguments of `hc-cli probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// DNS server to query: IP or IP:PORT; IPv6 as [::1]:53 or bare ::1. Repeat for more.
    #[arg(long = "target", visible_alias = "ip", value_name = "IP[:PORT]", required = true, num_args = 1.., action = clap::ArgAction::Append, value_parser = parse_target_arg)]
    pub(crate) targets: Vec<TargetArg>,

    /// Port for targets given without one.
    #[arg(long, default_value_t = dnsprobe::DEFAULT_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) port: u16,

    /// Name to query (taken as fully qualified: no search list).
    #[arg(long, default_value = dnsprobe::DEFAULT_QUERY_NAME, value_parser = parse_name_arg)]
    pub(crate) name: Name,

    /// Query type: A, AAAA, SRV, TXT, PTR, ... or TYPE<n>.
    #[arg(long = "type", value_name = "TYPE", default_value = "A", value_parser = parse_type_arg)]
    pub(crate) query_type: RecordType,

    /// Query over TCP only.
    #[arg(long, conflicts_with = "both")]
    pub(crate) tcp: bool,

    /// Query over UDP and over TCP, each reported on its own.
    #[arg(long)]
    pub(crate) both: bool,

    /// An address the answer must contain. Repeat for more.
    #[arg(long = "expect", value_name = "IP")]
    pub(crate) expect: Vec<IpAddr>,

    /// With --expect: the answer must be exactly the --expect set, nothing more.
    #[arg(long, requires = "expect")]
    pub(crate) exact: bool,

    /// A response code counted as healthy (mnemonic or number). Repeat for more. [default: NOERROR]
    #[arg(long = "rcode", value_name = "CODE", value_parser = parse_rcode_arg)]
    pub(crate) rcodes: Vec<ResponseCode>,

    /// Time allowed for each attempt, e.g. 300ms, 2s.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg)]
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
    #[arg(long)]
    pub(crate) json: bool,
}

/// A target as typed: the port is filled from a default when absent.
#[derive(Debug, Clone)]
pub(crate) struct TargetArg {
    pub(crate) ip: IpAddr,
    pub(crate) port: Option<u16>,
}

impl TargetArg {
    pub(crate) fn with_default_port(&self, port: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ip, self.port.unwrap_or(port))
    }
}

pub(crate) fn parse_target_arg(s: &str) -> Result<TargetArg, String> {
    if let Ok(addr) = s.trim().parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err("port 0 is not a DNS port: give 1-65535, or leave the port out".into());
        }
        return Ok(TargetArg {
            ip: addr.ip(),
            port: Some(addr.port()),
        });
    }
    let addr = dnsprobe::parse_target(s, 0).map_err(|e| e.to_string())?;
    Ok(TargetArg {
        ip: addr.ip(),
        port: None,
    })
}

pub(crate) fn parse_name_arg(s: &str) -> Result<Name, String> {
    dnsprobe::parse_name(s).map_err(|e| e.to_string())
}

fn parse_type_arg(s: &str) -> Result<RecordType, String> {
    dnsprobe::parse_record_type(s).map_err(|e| e.to_string())
}

fn parse_rcode_arg(s: &str) -> Result<ResponseCode, String> {
    dnsprobe::parse_rcode(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write a duration such as 300ms, 2s or 1m"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
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

    #[test]
    fn targets_keep_whether_a_port_was_given() {
        assert_eq!(parse_target_arg("10.0.0.1").unwrap().port, None);
        assert_eq!(parse_target_arg("::1").unwrap().port, None);
        assert_eq!(parse_target_arg("[::1]").unwrap().port, None);
        assert_eq!(parse_target_arg("[::1]:5353").unwrap().port, Some(5353));
        assert!(
            parse_target_arg("10.0.0.1:0")
                .unwrap_err()
                .contains("port 0")
        );
        assert!(
            parse_target_arg("coredns")
                .unwrap_err()
                .contains("invalid target")
        );
    }
}
