//! Arguments of the Linux-only commands. Every flag of `sweep`, `run` and `controller` has an
//! `HC_*` environment variable (lists comma-separated there).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use dnsprobe::hickory_proto::rr::Name;

use hc_remedy::cli::{ApiArgs, KubeArgs};

use crate::cli::{DurationParser, NameParser, TargetArg, parse_target_arg};

/// Boolean flags that an environment variable may also set (`HC_X=true`).
macro_rules! env_flag {
    () => {
        clap::builder::BoolishValueParser::new()
    };
}

pub(crate) const SWEEP_HELP: &str = "\
Examples:
  hc-cli sweep -s 10.96.0.10 --expect 10.96.0.1 --dns-service 10.96.0.10
  hc-cli sweep -s 10.96.0.10 -s 10.244.0.5 --netns-glob 'cni-*' --json
  hc-cli sweep -s 10.96.0.10 --netns /proc/4242/ns/net \\
      --proc-root /host/proc

Sockets are opened inside each namespace (one setns per namespace, on a
thread of its own), then every probe runs at once; a target that fails over
UDP is probed again over TCP; each failing namespace is diagnosed over
rtnetlink. Finding codes: docs/netns.md.
Needs CAP_SYS_ADMIN (enter namespaces) and CAP_SYS_PTRACE (see other
users' processes).
Exit status: 0 every namespace healthy, 1 any unhealthy, 2 bad usage,
3 run-time error.";

pub(crate) const RUN_HELP: &str = "\
Examples:
  hc-cli run --target 10.96.0.10 --expect 10.96.0.1
  # in the DaemonSet (deploy/base):
  hc-cli run --sweep-netns --proc-root /host/proc
  # one round, exit 0 healthy, 1 not:
  hc-cli run --target 10.96.0.10 --once --json

A target is down after --failure-threshold failed rounds and up after
--success-threshold good ones; transitions are logged once. Rounds never
overlap. The agent's DNS queries stay within --query-budget: given
targets over UDP and TCP every round; the DNS Service every round (over
TCP every --tcp-every-th); a rotating sample of CoreDNS pods so each is
probed by --observers nodes a minute; with --sweep-netns, one query per
pod namespace to the nameserver it uses, each namespace at least every
--netns-every while the budget lasts; in Kubernetes, the API server
through cluster DNS every --api-dns-every (a TLS handshake; apart from
DNS health). Endpoints on --metrics-addr: /metrics, /healthz, /readyz,
/status (the last round; the controller reads it). SIGTERM/SIGINT:
/readyz turns 503, the round is abandoned, exit 0. Details: docs/cli.md,
docs/metrics.md.
Exit status (--once): 0 healthy, 1 unhealthy, 2 bad usage, 3 run-time error.";

pub(crate) const CONTROLLER_HELP: &str = "\
Examples:
  # in the cluster (deploy/base):
  hc-cli controller
  hc-cli controller --kubeconfig ~/.kube/config --remediation off \\
      --metrics-addr 127.0.0.1:9891

Every --interval: read at most --sample agents (those that, by the
probing plan it publishes, probed a CoreDNS pod it lacks reports on;
then rotating over the nodes), keep each node's last result per CoreDNS
pod (by UID) and for the Service over --window, and classify by
--quorum: pod (evicted after --confirm-rounds), node (an Event on it),
service (reported), all (reported; a rollout restart only with
--rollout-restart). Memory only for an OOM kill of the last 10 minutes.
The cooldown, the budget and what was set live on the Lease. Beside the
view: Service changes followed until they resolve (--freshness-follow,
--freshness-give-up; stale records named), and each CoreDNS pod's
/health and /ready against the verdicts. docs/remediation.md.
Exit status: 0 after SIGTERM/SIGINT, 2 bad usage, 3 run-time error.";

pub(crate) const STATUS_HELP: &str = "\
Examples:
  # through the API server's service proxy:
  hc-cli status --kubeconfig ~/.kube/config
  # e.g. after kubectl port-forward:
  hc-cli status --controller http://127.0.0.1:9891
Exit status: 0 healthy, 1 not healthy, 2 bad usage, 3 the controller
cannot be read.";

/// `hc-cli netns ...`
#[derive(Debug, Subcommand)]
pub(crate) enum NetnsCommand {
    /// One row per network namespace: inode, a process in it, its name under /run/netns, and the
    /// Kubernetes pod UID and container ID from its cgroup.
    #[command(
        after_help = "Examples:\n  hc-cli netns list\n  hc-cli netns list --proc-root /host/proc --json\n\nNeeds CAP_SYS_PTRACE to see other users' processes.\nExit status: 0 listed, 2 unreadable proc root, 3 run-time error."
    )]
    List(NetnsListArgs),
}

/// `--proc-root`, shared by the commands that read the node's processes.
#[derive(Debug, Args)]
pub(crate) struct ProcRootArg {
    /// The node's proc filesystem (the host's /proc mounted into a DaemonSet pod, e.g. /host/proc).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/proc",
        env = "HC_PROC_ROOT"
    )]
    pub(crate) proc_root: PathBuf,
}

/// Arguments of `hc-cli netns list`.
#[derive(Debug, Args)]
pub(crate) struct NetnsListArgs {
    #[command(flatten)]
    pub(crate) proc: ProcRootArg,
    /// Print a JSON array of {inode, pid, process, name, path, pod_uid, container_id}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What to sweep, shared by `sweep` and `run --sweep-netns`.
#[derive(Debug, Args)]
pub(crate) struct SweepSelect {
    /// An address a pod's resolv.conf must name (kube-dns ClusterIP, or a node-local cache). Repeat for more.
    #[arg(
        long = "dns-service",
        value_name = "IP",
        env = "HC_DNS_SERVICE",
        value_delimiter = ','
    )]
    pub(crate) dns_service: Vec<IpAddr>,
    /// Sweep the namespaces whose /run/netns name matches this glob (e.g. 'cni-*').
    #[arg(long, value_name = "GLOB", env = "HC_NETNS_GLOB", value_parser = parse_glob_arg)]
    pub(crate) netns_glob: Option<glob::Pattern>,
    #[command(flatten)]
    pub(crate) proc: ProcRootArg,
}

/// Arguments of `hc-cli sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    #[command(flatten)]
    pub(crate) query: QueryArgs,
    /// Sweep this namespace: a name under /run/netns, or a path such as /proc/PID/ns/net. Repeat for more.
    #[arg(
        long = "netns",
        value_name = "NAME|PATH",
        env = "HC_NETNS",
        value_delimiter = ','
    )]
    pub(crate) netns: Vec<String>,
    #[command(flatten)]
    pub(crate) select: SweepSelect,
    /// Time allowed for each probe, e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "2s", value_parser = DurationParser)]
    pub(crate) timeout: Duration,
    /// Send each UDP query's AAAA companion right after it from the same socket, as glibc does,
    /// and report a lost answer (parallel-answer-lost). One query more per probe.
    #[arg(long, env = "HC_PARALLEL_A_AAAA", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) parallel_a_aaaa: bool,
    /// Print a JSON array, one object per namespace.
    #[arg(short = 'j', long, env = "HC_JSON", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) json: bool,
    /// Also resolve kubernetes.default through each pod's own resolv.conf as glibc would (search list, ndots, timeout, attempts, rotate, single-request): the queries it takes and how long a client waits. About 4 queries per pod.
    #[arg(long, env = "HC_CLIENT_PATH", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) client_path: bool,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// What to ask whom: shared by `sweep` (which needs a target) and `run` (which may discover
/// them).
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// DNS server to probe: IP or IP:PORT (port 53 when absent). Repeat for more. In Kubernetes
    /// (`run`) these are added to the discovered ones.
    #[arg(short = 's', long = "target", value_name = "IP[:PORT]", env = "HC_TARGET", value_delimiter = ',', num_args = 1.., action = clap::ArgAction::Append, value_parser = parse_target_arg)]
    pub(crate) targets: Vec<TargetArg>,
    /// Name to query. [default: kubernetes.default.svc.cluster.local., with --cluster-domain in Kubernetes]
    #[arg(short = 'q', long, env = "HC_NAME", value_parser = NameParser)]
    pub(crate) name: Option<Name>,
    /// An address the answer must contain (e.g. the ClusterIP of default/kubernetes). Repeat for more.
    #[arg(
        short = 'e',
        long = "expect",
        value_name = "IP",
        env = "HC_EXPECT",
        value_delimiter = ','
    )]
    pub(crate) expect: Vec<IpAddr>,
}

impl QueryArgs {
    /// The targets, port 53 where none was given.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.targets
            .iter()
            .map(|t| t.with_default_port(dnsprobe::DEFAULT_PORT))
            .collect()
    }

    /// The name, or `kubernetes.default.svc.cluster.local.`.
    pub(crate) fn name_or_default(&self) -> Name {
        let default = || dnsprobe::ProbeSpec::new(SocketAddr::from(([0, 0, 0, 0], 53))).name;
        self.name.clone().unwrap_or_else(default)
    }
}

/// Arguments of `hc-cli run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) query: QueryArgs,
    #[command(flatten)]
    pub(crate) budget: hc_agent::cli::BudgetArgs,
    /// Time allowed for each attempt.
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "1s", value_parser = DurationParser)]
    pub(crate) timeout: Duration,
    /// Attempts per probe in a round.
    #[arg(long, env = "HC_ATTEMPTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) attempts: u32,
    /// Consecutive failed rounds before a target is down.
    #[arg(long, env = "HC_FAILURE_THRESHOLD", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) failure_threshold: u32,
    /// Consecutive successful rounds before a target is up again.
    #[arg(long, env = "HC_SUCCESS_THRESHOLD", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) success_threshold: u32,
    /// Also sweep the pod network namespaces (needs CAP_SYS_ADMIN and CAP_SYS_PTRACE).
    #[arg(long, env = "HC_SWEEP_NETNS", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) sweep_netns: bool,
    #[command(flatten)]
    pub(crate) select: SweepSelect,
    /// Where to serve /metrics, /healthz, /readyz and /status.
    #[arg(
        long,
        value_name = "ADDR",
        env = "HC_METRICS_ADDR",
        default_value = "0.0.0.0:9890"
    )]
    pub(crate) metrics_addr: SocketAddr,
    /// Latency histogram buckets in seconds, comma-separated. [default: 0.0005,0.001,...,4.5,5.5,10]
    #[arg(
        long,
        value_name = "SECONDS,...",
        env = "HC_LATENCY_BUCKETS",
        value_delimiter = ','
    )]
    pub(crate) latency_buckets: Vec<f64>,
    /// Run one round, print the report, exit 0 (healthy) or 1 (unhealthy). No server.
    #[arg(long, env = "HC_ONCE", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) once: bool,
    /// With --once: print JSON.
    #[arg(long, env = "HC_JSON", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) json: bool,
    /// Log format.
    #[arg(long, value_enum, env = "HC_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,
    #[command(flatten)]
    pub(crate) kube: KubeArgs,
}

/// Arguments of `hc-cli controller`: the controller's flags, its admin address and log format.
#[derive(Debug, Args)]
pub(crate) struct ControllerCmd {
    #[command(flatten)]
    pub(crate) controller: hc_remedy::cli::ControllerArgs,
    /// Where to serve /metrics, /healthz, /readyz and /status.
    #[arg(
        long,
        value_name = "ADDR",
        env = "HC_METRICS_ADDR",
        default_value = "0.0.0.0:9891"
    )]
    pub(crate) metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, env = "HC_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,
}

/// Arguments of `hc-cli status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Read the controller at this address instead (http://IP:PORT).
    #[arg(long, value_name = "URL", env = "HC_CONTROLLER", value_parser = parse_controller_arg)]
    pub(crate) controller: Option<SocketAddr>,
    /// The controller's Service and port (read through the API server's proxy).
    #[arg(
        long,
        env = "HC_CONTROLLER_SERVICE",
        default_value = "coredns-healthcheck-controller:9891"
    )]
    pub(crate) controller_service: String,
    /// Print the controller's JSON as it is.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) const COMPLETIONS_HELP: &str = "\
Examples:
  hc-cli completions bash > /etc/bash_completion.d/hc-cli
  hc-cli completions zsh > \"${fpath[1]}/_hc-cli\"
  hc-cli completions fish > ~/.config/fish/completions/hc-cli.fish";

/// Arguments of `hc-cli completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// A shell `hc-cli completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// Arguments of `hc-cli man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write hc-cli.1 and one page per command (hc-cli-probe.1, ...) into this directory,
    /// instead of printing hc-cli.1.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Arguments of `hc-cli demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Time between rounds (12 rounds in all).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = DurationParser)]
    pub(crate) interval: Duration,
    /// Where to serve the metrics (a free port is used if it is taken).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9890")]
    pub(crate) metrics_addr: SocketAddr,
    /// Skip the network-namespace part even as root.
    #[arg(long)]
    pub(crate) no_netns: bool,
}

fn parse_glob_arg(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s).map_err(|e| format!("invalid glob: {e}"))
}

fn parse_controller_arg(s: &str) -> Result<SocketAddr, String> {
    let hostport = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    hostport.parse().map_err(|_| {
        format!("expected http://IP:PORT (an address: this tool does not use the cluster DNS it checks), got {s:?}")
    })
}
