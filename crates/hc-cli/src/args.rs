//! Arguments of the Linux-only commands. Every flag of `sweep`, `run` and `controller` has an
//! `HC_*` environment variable (lists comma-separated there).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use dnsprobe::hickory_proto::rr::Name;

use crate::cli::{Checked, TargetArg, parse_duration_arg, parse_name_arg, parse_target_arg};

/// `--query-budget`: a positive number of queries per second, at most 10,000.
fn parse_budget_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(q) if q > 0.0 && q <= 10_000.0 => Ok(q),
        _ => Err(format!(
            "{s:?} is not a query budget: give queries per second, more than 0 and at most 10000 (e.g. 1 or 0.5)"
        )),
    }
}

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
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "2s", value_parser = parse_duration_arg)]
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
    #[arg(short = 'q', long, env = "HC_NAME", value_parser = parse_name_arg)]
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
    /// Time between the starts of two rounds (in a cluster, the first after a random part of it).
    #[arg(long, value_name = "DURATION", env = "HC_INTERVAL", default_value = "15s", value_parser = parse_duration_arg)]
    pub(crate) interval: Duration,
    /// DNS queries per second on average, for everything this agent probes (docs/performance.md).
    #[arg(long, value_name = "QPS", env = "HC_QUERY_BUDGET", default_value_t = 1.0, value_parser = parse_budget_arg)]
    pub(crate) query_budget: f64,
    /// Probe the DNS Service over TCP instead of UDP every N rounds (0: never).
    #[arg(long, value_name = "N", env = "HC_TCP_EVERY", default_value_t = 4)]
    pub(crate) tcp_every: u32,
    /// Nodes that should probe each CoreDNS pod every minute (all nodes in smaller clusters).
    #[arg(long, value_name = "N", env = "HC_OBSERVERS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) observers: u32,
    /// Check every pod namespace at least this often (the budget permitting).
    #[arg(long, value_name = "DURATION", env = "HC_NETNS_EVERY", default_value = "2m", value_parser = parse_duration_arg)]
    pub(crate) netns_every: Duration,
    /// Time allowed for each attempt.
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "1s", value_parser = parse_duration_arg)]
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
    /// With --sweep-netns, resolve kubernetes.default through one pod's resolv.conf as glibc would this often (about 4 queries, paid from the budget).
    #[arg(long, value_name = "DURATION", env = "HC_CLIENT_PATH_EVERY", default_value = "5m", value_parser = parse_duration_arg)]
    pub(crate) client_path_every: Duration,
    /// Pod namespaces swept per round at most, whatever the budget leaves.
    #[arg(long, env = "HC_NETNS_PER_ROUND", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) netns_per_round: u32,
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

/// `--remediation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RemediationMode {
    /// Watch and report; plan nothing.
    Off,
    /// Plan, log and export the plan; change nothing.
    DryRun,
    /// Act (the Lease holder only).
    On,
}

impl From<RemediationMode> for hc_remedy::Mode {
    fn from(m: RemediationMode) -> Self {
        match m {
            RemediationMode::Off => hc_remedy::Mode::Off,
            RemediationMode::DryRun => hc_remedy::Mode::DryRun,
            RemediationMode::On => hc_remedy::Mode::On,
        }
    }
}

/// `--via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Probe the targets as addressed from this machine.
    Direct,
    /// A short-lived pod in the cluster probes them and reports back through its logs.
    ProbePod,
    /// Each CoreDNS pod over DNS-over-TCP through the API server's port-forward (TCP only).
    PortForward,
}

impl From<Via> for hc_remedy::Via {
    fn from(v: Via) -> Self {
        match v {
            Via::Direct => hc_remedy::Via::Direct,
            Via::ProbePod => hc_remedy::Via::ProbePod,
            Via::PortForward => hc_remedy::Via::PortForward,
        }
    }
}

/// The API connection, shared by `run`, `controller` and `status`.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Kubeconfig to use outside the cluster (KUBECONFIG is read too; ~/.kube/config never implicitly).
    #[arg(long, value_name = "PATH", env = "HC_KUBECONFIG")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Namespace of CoreDNS and its Service (and of the controller's Lease).
    #[arg(long, env = "HC_NAMESPACE", default_value = "kube-system")]
    pub(crate) namespace: String,
}

/// The agent in Kubernetes: read-only discovery, and the node's own condition.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes (on with --kubeconfig, KUBECONFIG, or inside a pod)")]
pub(crate) struct KubeArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The CoreDNS Service.
    #[arg(long, env = "HC_SERVICE", default_value = "kube-dns")]
    pub(crate) service: String,
    /// The cluster domain: the query is kubernetes.default.svc.<cluster-domain>.
    #[arg(long, env = "HC_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = Checked("cluster domain", parse_domain_arg))]
    pub(crate) cluster_domain: String,
    /// DNS port for UDP and TCP, replacing the discovered ones. (`--udp-port`, HC_UDP_PORT: old names.)
    #[arg(long, alias = "udp-port", env = "HC_DNS_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    dns_port: Option<u16>,
    /// The old name of HC_DNS_PORT, read when that is not set (clap takes one variable a flag).
    #[arg(long = "udp-port-from-env", hide = true, env = "HC_UDP_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    old_udp_port: Option<u16>,
    /// How to reach the targets: direct, probe-pod (a short-lived pod probes from inside), or
    /// port-forward (each CoreDNS pod over TCP through the API server).
    #[arg(long, value_enum, env = "HC_VIA", default_value = "direct")]
    pub(crate) via: Via,
    /// Image of the probe pod (`hc-cli` as its entrypoint).
    #[arg(
        long,
        env = "HC_PROBE_IMAGE",
        default_value = "ghcr.io/coredns-healthcheck/hc-cli:0.1.0"
    )]
    pub(crate) probe_image: String,
    /// How long a probe pod may take, from creation to its logs.
    #[arg(long, value_name = "DURATION", env = "HC_PROBE_POD_TIMEOUT", default_value = "60s", value_parser = parse_duration_arg)]
    pub(crate) probe_pod_timeout: Duration,
    /// Set a `ClusterDNSReachable` condition on this Node, on transitions (needs patch nodes/status).
    #[arg(long, env = "HC_NODE_CONDITION", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) node_condition: bool,
    /// This agent's Node: its reports say where they come from. [default: $NODE_NAME]
    #[arg(long, env = "HC_NODE_NAME")]
    pub(crate) node_name: Option<String>,
    /// Resolve kubernetes.default.svc through the DNS Service and complete a TLS handshake with
    /// the API server at that address, this often (the first time after a random part of it);
    /// 0: never. Counted in --query-budget.
    #[arg(long, value_name = "DURATION", env = "HC_API_DNS_EVERY", default_value = "5m", value_parser = parse_every_arg)]
    pub(crate) api_dns_every: Duration,
    #[command(flatten)]
    pub(crate) moved: MovedToController,
}

impl KubeArgs {
    /// `--dns-port` (`--udp-port`, HC_DNS_PORT), else HC_UDP_PORT.
    pub(crate) fn dns_port(&self) -> Option<u16> {
        self.dns_port.or(self.old_udp_port)
    }
}

/// `--remediation` of `run` from before the controller: accepted with a warning, so that old
/// manifests keep starting; remediation is `hc-cli controller`'s now.
#[derive(Debug, Args)]
pub(crate) struct MovedToController {
    #[arg(long, env = "HC_REMEDIATION", hide = true)]
    pub(crate) remediation: Option<String>,
}

/// The other flags of `run` that moved to `controller`: named in the usage error.
pub(crate) const MOVED_FLAGS: &[&str] = &[
    "--selector",
    "--lease-name",
    "--identity",
    "--max-memory",
    "--memory-factor",
    "--cooldown",
    "--grace-period",
    "--max-actions-per-hour",
    "--rollout-restart",
    "--delete-pods",
];

/// Arguments of `hc-cli controller`.
#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Label selector of the CoreDNS pods (and of their Deployment).
    #[arg(long, env = "HC_SELECTOR", default_value = "k8s-app=kube-dns")]
    pub(crate) selector: String,
    /// Namespace of the agent pods. [default: --namespace]
    #[arg(long, env = "HC_AGENT_NAMESPACE")]
    pub(crate) agent_namespace: Option<String>,
    /// Label selector of the agent pods.
    #[arg(
        long,
        env = "HC_AGENT_SELECTOR",
        default_value = "app.kubernetes.io/name=coredns-healthcheck,app.kubernetes.io/component=agent"
    )]
    pub(crate) agent_selector: String,
    /// The agents' admin port.
    #[arg(long, env = "HC_AGENT_PORT", default_value_t = 9890, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) agent_port: u16,
    /// Agents read per round at most (all when there are fewer): first those that probed a
    /// CoreDNS pod short of reports, then a rotation. Reads go to the agents, not the API server.
    #[arg(long, env = "HC_SAMPLE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) sample: u32,
    /// The share of reporting nodes that must agree on a verdict.
    #[arg(long, env = "HC_QUORUM", default_value_t = 0.6, value_parser = parse_quorum_arg)]
    pub(crate) quorum: f64,
    /// Time between rounds.
    #[arg(long, value_name = "DURATION", env = "HC_INTERVAL", default_value = "15s", value_parser = parse_duration_arg)]
    pub(crate) interval: Duration,
    /// How long a node's result counts.
    #[arg(long, value_name = "DURATION", env = "HC_WINDOW", default_value = "2m", value_parser = parse_duration_arg)]
    pub(crate) window: Duration,
    /// Consecutive rounds a pod verdict must hold before an eviction.
    #[arg(long, env = "HC_CONFIRM_ROUNDS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) confirm_rounds: u32,
    /// off: watch and report only; dry-run: plan, log and export, change nothing; on: act.
    #[arg(long, value_enum, env = "HC_REMEDIATION", default_value = "dry-run")]
    pub(crate) remediation: RemediationMode,
    /// The Lease that elects the one replica that decides.
    #[arg(long, env = "HC_LEASE_NAME", default_value = "coredns-healthcheck")]
    pub(crate) lease_name: String,
    /// This replica's name in the Lease and in Events. [default: $POD_NAME, else the hostname]
    #[arg(long, env = "HC_IDENTITY")]
    pub(crate) identity: Option<String>,
    /// Memory limit cap for raises (Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", env = "HC_MAX_MEMORY", default_value = "1Gi", value_parser = parse_memory_arg)]
    pub(crate) max_memory: u64,
    /// Memory limit growth factor (the new limit is max(old x factor, old + 100Mi)).
    #[arg(long, env = "HC_MEMORY_FACTOR", default_value_t = 2.0, value_parser = parse_factor_arg)]
    pub(crate) memory_factor: f64,
    /// Time between two actions.
    #[arg(long, value_name = "DURATION", env = "HC_COOLDOWN", default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) cooldown: Duration,
    /// Never act on a pod younger than this.
    #[arg(long, value_name = "DURATION", env = "HC_GRACE_PERIOD", default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) grace_period: Duration,
    /// Actions allowed per rolling hour.
    #[arg(long, env = "HC_MAX_ACTIONS_PER_HOUR", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_actions_per_hour: u32,
    /// When every CoreDNS pod fails from most nodes, allow a rollout restart (one per hour at most).
    #[arg(long, env = "HC_ROLLOUT_RESTART", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) rollout_restart: bool,
    /// Delete sick pods instead of evicting them (ignores PodDisruptionBudgets).
    #[arg(long, env = "HC_DELETE_PODS", action = clap::ArgAction::SetTrue, value_parser = env_flag!())]
    pub(crate) delete_pods: bool,
    #[command(flatten)]
    pub(crate) checks: ControllerChecks,
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

/// The controller's checks beside the view: Service freshness and CoreDNS's HTTP endpoints.
#[derive(Debug, Args)]
pub(crate) struct ControllerChecks {
    /// The DNS Service in --namespace: the freshness queries go to its ClusterIP.
    #[arg(long, env = "HC_SERVICE", default_value = "kube-dns")]
    pub(crate) service: String,
    /// The cluster domain: a Service's name is NAME.NAMESPACE.svc.<cluster-domain>.
    #[arg(long, env = "HC_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = parse_domain_arg)]
    pub(crate) cluster_domain: String,
    /// Service changes followed at once at most until they resolve (0: no freshness check, and
    /// no watch of Services).
    #[arg(long, value_name = "N", env = "HC_FRESHNESS_FOLLOW", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub(crate) freshness_follow: u32,
    /// A followed change that does not resolve right by then is reported (stale or not propagated).
    #[arg(long, value_name = "DURATION", env = "HC_FRESHNESS_GIVE_UP", default_value = "60s", value_parser = parse_give_up_arg)]
    pub(crate) freshness_give_up: Duration,
    /// Port of CoreDNS's health plugin (/health) on each CoreDNS pod (0: not read).
    #[arg(
        long,
        value_name = "PORT",
        env = "HC_COREDNS_HEALTH_PORT",
        default_value_t = 8080
    )]
    pub(crate) coredns_health_port: u16,
    /// Port of CoreDNS's ready plugin (/ready) on each CoreDNS pod (0: not read).
    #[arg(
        long,
        value_name = "PORT",
        env = "HC_COREDNS_READY_PORT",
        default_value_t = 8181
    )]
    pub(crate) coredns_ready_port: u16,
}

/// `--freshness-give-up`: from 1 s to 1 h.
fn parse_give_up_arg(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) => Ok(d),
        _ => Err(format!("{s:?}: give a duration from 1s to 1h, e.g. 60s")),
    }
}

/// `--api-dns-every`: 0 (off), or from 1 s to 1 day.
fn parse_every_arg(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        _ if s.trim() == "0" => Ok(Duration::ZERO),
        Ok(d) if (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&d) => Ok(d),
        _ => Err(format!(
            "{s:?}: give 0 (off) or a duration from 1s to 1 day, e.g. 5m"
        )),
    }
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
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_arg)]
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

fn parse_quorum_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(q) if q > 0.5 && q <= 1.0 => Ok(q),
        _ => Err("must be a share above 0.5 and at most 1, e.g. 0.6".into()),
    }
}

fn parse_memory_arg(s: &str) -> Result<u64, String> {
    match hc_remedy::parse_quantity(s) {
        Some(b) if b >= 1 << 20 => Ok(b),
        Some(_) => Err("must be at least 1Mi".into()),
        None => Err("not a Kubernetes quantity: write e.g. 512Mi or 1Gi".into()),
    }
}

fn parse_factor_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 1.0 && f <= 10.0 => Ok(f),
        _ => Err("must be a number above 1 and at most 10, e.g. 2".into()),
    }
}

/// A DNS domain (`cluster.local`): the query name must stay valid with it.
fn parse_domain_arg(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.');
    match dnsprobe::parse_name(&format!("kubernetes.default.svc.{d}")) {
        Ok(_) => Ok(d.to_owned()),
        Err(dnsprobe::SpecError::InvalidName { reason, .. }) => {
            Err(format!("not a DNS domain: {reason}"))
        }
        Err(e) => Err(format!("not a DNS domain: {e}")),
    }
}
