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
empty-answer, truncated, malformed, io, mismatched, not-probed.
Exit status: 0 every probe healthy, 1 any unhealthy, 2 bad usage, 3 run-time error.";

/// Arguments of `hc-cli probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// DNS server to query: IP or IP:PORT; IPv6 as [::1]:53 or bare ::1, with a zone as
    /// fe80::1%eth0. Repeat for more.
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

    /// Time allowed for each attempt, e.g. 300ms, 2s (at most 1h).
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
    /// The IPv6 zone's interface index (`fe80::1%eth0`), 0 for none.
    pub(crate) scope_id: u32,
}

impl TargetArg {
    pub(crate) fn with_default_port(&self, port: u16) -> std::net::SocketAddr {
        let port = self.port.unwrap_or(port);
        match self.ip {
            IpAddr::V6(v6) => std::net::SocketAddrV6::new(v6, port, 0, self.scope_id).into(),
            IpAddr::V4(_) => std::net::SocketAddr::new(self.ip, port),
        }
    }
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT`, a bare IPv6 address, with an optional zone; dnsprobe's
/// `parse_target` decides (and refuses `::1:5399`, which looks like a port without brackets).
pub(crate) fn parse_target_arg(s: &str) -> Result<TargetArg, String> {
    let t = s.trim();
    let explicit_port = if t.starts_with('[') {
        t.contains("]:")
    } else {
        t.parse::<std::net::SocketAddrV4>().is_ok()
    };
    let addr = dnsprobe::parse_target(t, dnsprobe::DEFAULT_PORT).map_err(|e| e.to_string())?;
    if explicit_port && addr.port() == 0 {
        return Err("port 0 is not a DNS port: give 1-65535, or leave the port out".into());
    }
    Ok(TargetArg {
        ip: addr.ip(),
        port: explicit_port.then_some(addr.port()),
        scope_id: match addr {
            std::net::SocketAddr::V6(v6) => v6.scope_id(),
            std::net::SocketAddr::V4(_) => 0,
        },
    })
}

/// The value parser of every query-name flag (`value_parser = parse_name_arg`): dnsprobe's
/// `parse_name`, with the value shown once, quoted with escapes (a space, a tab, an empty label
/// show) and cut short when long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameArg;

/// Named as the function it replaced (see `parse_duration_arg`).
#[allow(non_upper_case_globals)]
pub(crate) const parse_name_arg: NameArg = NameArg;

impl clap::builder::TypedValueParser for NameArg {
    type Value = Name;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Name, clap::Error> {
        let text = value.to_string_lossy();
        dnsprobe::parse_name(&text).map_err(|e| {
            let why = match e {
                dnsprobe::SpecError::InvalidName { reason, .. } => reason,
                other => other.to_string(),
            };
            value_error(cmd, arg, "query name", &text, &why)
        })
    }
}

/// A value parser made of a function, its error stated as [`NameArg`]'s: the value once, quoted
/// and cut short. `Checked(what, parse)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked<T>(
    pub(crate) &'static str,
    pub(crate) fn(&str) -> Result<T, String>,
);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.1)(&text).map_err(|why| value_error(cmd, arg, self.0, &text, &why))
    }
}

/// `invalid WHAT "VALUE" for '--flag <V>': why`, the value quoted with escapes and cut short
/// when long, so that it is stated once and what is invisible shows.
fn value_error(
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    what: &str,
    value: &str,
    why: &str,
) -> clap::Error {
    const SHOWN: usize = 64;
    let shown = if value.chars().count() <= SHOWN {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head:?}... ({} bytes)", value.len())
    };
    let flag = arg.map(ToString::to_string).unwrap_or_else(|| "...".into());
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("invalid {what} {shown} for '{flag}': {why}\n"),
    )
    .with_cmd(cmd)
}

fn parse_type_arg(s: &str) -> Result<RecordType, String> {
    dnsprobe::parse_record_type(s).map_err(|e| e.to_string())
}

fn parse_rcode_arg(s: &str) -> Result<ResponseCode, String> {
    dnsprobe::parse_rcode(s).map_err(|e| e.to_string())
}

/// The longest timeout a flag accepts (`--timeout`, `--probe-pod-timeout`, ...).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest any other duration flag accepts (`--interval`, `--window`, ...).
const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// A positive duration (`300ms`, `2s`, `1m`), bounded by the flag it is given to: a timeout at
/// most 1h, anything else (an interval, a window) at most 1 day. Out of bounds is a usage error
/// (exit 2) naming the flag's limit, where a huge value used to overflow and abort.
fn duration_within(s: &str, flag: Option<&str>) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: write a duration such as 300ms, 2s or 1m"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    let (max, limit) = match flag {
        Some(f) if f.contains("timeout") => (MAX_TIMEOUT, "1h"),
        _ => (MAX_DURATION, "1 day"),
    };
    if d > max {
        let flag = flag
            .map(|f| format!("--{f}"))
            .unwrap_or_else(|| "it".into());
        return Err(format!("{flag} is at most {limit}"));
    }
    Ok(d)
}

/// The value parser of every duration flag (`value_parser = parse_duration_arg`): clap hands it
/// the flag, so each flag gets its own bound (see `duration_within`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationArg;

/// Named as the function it replaced, so that every `value_parser = parse_duration_arg` gets
/// the per-flag bound.
#[allow(non_upper_case_globals)]
pub(crate) const parse_duration_arg: DurationArg = DurationArg;

impl clap::builder::TypedValueParser for DurationArg {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Duration, clap::Error> {
        let flag = arg.and_then(clap::Arg::get_long);
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(clap::error::ErrorKind::InvalidUtf8, "not UTF-8\n").with_cmd(cmd)
        })?;
        duration_within(text, flag).map_err(|why| value_error(cmd, arg, "value", text, &why))
    }
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
    fn durations_are_bounded_per_flag() {
        assert_eq!(
            duration_within("2s", Some("timeout")),
            Ok(Duration::from_secs(2))
        );
        assert_eq!(
            duration_within("2h", Some("timeout")),
            Err("--timeout is at most 1h".into())
        );
        assert!(duration_within("2h", Some("interval")).is_ok());
        assert_eq!(
            duration_within("300000000000y", Some("interval")),
            Err("--interval is at most 1 day".into())
        );
        assert!(duration_within("0s", Some("interval")).is_err());
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
