//! Command-line interface definitions.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::hickory_proto::rr::{Name, RecordType};

/// Checks the cluster DNS of Kubernetes the way clients use it: DNS over UDP and TCP, with
/// strict reply matching, saying why a path fails.
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
    #[command(after_help = PROBE_EXAMPLES, after_long_help = PROBE_LONG)]
    Probe(ProbeArgs),

    /// Network namespaces of this node.
    #[cfg(target_os = "linux")]
    #[command(subcommand)]
    Netns(NetnsCommand),

    /// Probe the DNS targets from this namespace and from every pod network namespace at once,
    /// and say why each failing namespace fails.
    #[cfg(target_os = "linux")]
    #[command(after_help = SWEEP_EXAMPLES, after_long_help = SWEEP_LONG)]
    Sweep(SweepArgs),

    /// Run the agent: probe the targets every interval from this namespace (and, with
    /// --sweep-netns, from the pod namespaces), keep up/down state with thresholds, and serve
    /// Prometheus metrics and a JSON status.
    #[cfg(target_os = "linux")]
    #[command(after_help = RUN_EXAMPLES, after_long_help = RUN_LONG)]
    Run(Box<RunArgs>),

    /// Decide in one place: read a sample of agents' status, build the node x CoreDNS-pod view,
    /// classify by quorum, and (on the Lease holder) repair CoreDNS when the fault is CoreDNS's.
    #[cfg(target_os = "linux")]
    #[command(after_long_help = CONTROLLER_LONG)]
    Controller(Box<ControllerArgs>),

    /// The cluster view for a person: per CoreDNS pod how many nodes reach it over UDP and TCP,
    /// the nodes that reach none, the Service path, the verdicts and the last action.
    #[cfg(target_os = "linux")]
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),

    /// Watch the whole product work on this machine: a DNS server on loopback, the checking loop
    /// against it, a scripted UDP outage and its recovery, metrics; as root also a namespace
    /// sweep with a diagnosis. Ends by itself; no cluster, nothing left behind.
    #[cfg(target_os = "linux")]
    Demo(DemoArgs),
}

/// Arguments of `hc-cli demo`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Time between rounds (12 rounds in all).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_arg)]
    pub(crate) interval: Duration,

    /// Where to serve the metrics (a free port is used if it is taken).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9890")]
    pub(crate) metrics_addr: std::net::SocketAddr,

    /// Skip the network-namespace part even as root.
    #[arg(long)]
    pub(crate) no_netns: bool,
}

#[cfg(target_os = "linux")]
const RUN_EXAMPLES: &str = "\
Examples:
  hc-cli run --target 10.96.0.10 --expect 10.96.0.1
  hc-cli run --target 10.96.0.10 --sweep-netns --dns-service 10.96.0.10 --proc-root /host/proc
  hc-cli run --target 10.96.0.10 --once --json";

#[cfg(target_os = "linux")]
const RUN_LONG: &str = "\
Examples:
  # The agent: UDP and TCP to kube-dns every 5s, metrics on :9890
  hc-cli run --target 10.96.0.10 --expect 10.96.0.1

  # In a DaemonSet: also sweep the pod namespaces, 16 per round
  hc-cli run --target 10.96.0.10 --target 10.244.0.5 --sweep-netns --dns-service 10.96.0.10 \\
             --proc-root /host/proc

  # One round, for a cron job or a shell: exit 0 healthy, 1 unhealthy
  hc-cli run --target 10.96.0.10 --once --json

Every round probes every target over UDP and over TCP from this namespace. A target is down after
--failure-threshold consecutive failed rounds and up again after --success-threshold successful
ones (like kubelet probes); state changes are logged once. Rounds never overlap: a round that
runs past the interval delays the next one.

With --sweep-netns, each round also sweeps at most --netns-per-round pod namespaces, rotating,
so every namespace is visited at least once every ceil(namespaces / netns-per-round) rounds
(110 pods at 16 per round and a 5s interval: every 7 rounds, 35s). --once sweeps them all.

Endpoints on --metrics-addr: /metrics (OpenMetrics), /healthz (200 while running), /readyz
(200 after the first round, 503 before and during shutdown), /status (JSON of the last round;
200 when everything is up, 503 otherwise). SIGTERM or SIGINT: /readyz turns 503, the round in
progress is abandoned, exit 0.

Every flag can also be set from the environment variable named in its help ([env: HC_...]);
lists are comma-separated there (HC_TARGET=10.96.0.10,10.244.0.5).
Exit status (--once): 0 all healthy, 1 any unhealthy, 2 bad usage, 3 run-time error (nothing to probe,
the metrics port taken, the API unreachable).";

/// Log line format.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Arguments of `hc-cli run`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// DNS server to probe: IP or IP:PORT (port 53 when absent). Repeat for more. With
    /// Kubernetes these are added to the discovered ones.
    #[arg(long = "target", value_name = "IP[:PORT]", env = "HC_TARGET", value_delimiter = ',', num_args = 1.., action = clap::ArgAction::Append, value_parser = parse_target_arg)]
    pub(crate) targets: Vec<TargetArg>,

    /// Name to query. [default: kubernetes.default.svc.<cluster-domain>.]
    #[arg(long, env = "HC_NAME", value_parser = parse_name_arg)]
    pub(crate) name: Option<Name>,

    /// An address the answer must contain (e.g. the ClusterIP of default/kubernetes). Repeat for more.
    #[arg(
        long = "expect",
        value_name = "IP",
        env = "HC_EXPECT",
        value_delimiter = ','
    )]
    pub(crate) expect: Vec<IpAddr>,

    /// Time between the starts of two rounds.
    #[arg(long, value_name = "DURATION", env = "HC_INTERVAL", default_value = "5s", value_parser = parse_duration_arg)]
    pub(crate) interval: Duration,

    /// Time allowed for each attempt.
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "1s", value_parser = parse_duration_arg)]
    pub(crate) timeout: Duration,

    /// Attempts per probe in a round.
    #[arg(long, env = "HC_ATTEMPTS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) attempts: u32,

    /// Consecutive failed rounds before a target is down (in Kubernetes, also before a failing
    /// CoreDNS pod may be evicted).
    #[arg(long, env = "HC_FAILURE_THRESHOLD", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) failure_threshold: u32,

    /// Consecutive successful rounds before a target is up again.
    #[arg(long, env = "HC_SUCCESS_THRESHOLD", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) success_threshold: u32,

    /// Also sweep the pod network namespaces (needs CAP_SYS_ADMIN and CAP_SYS_PTRACE).
    #[arg(long, env = "HC_SWEEP_NETNS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) sweep_netns: bool,

    /// Sweep only the namespaces whose /run/netns name matches this glob (e.g. 'cni-*').
    #[arg(long, value_name = "GLOB", env = "HC_NETNS_GLOB", value_parser = parse_glob_arg)]
    pub(crate) netns_glob: Option<glob::Pattern>,

    #[command(flatten)]
    pub(crate) proc: ProcRootArg,

    /// An address each pod's resolv.conf must name (kube-dns ClusterIP, or a node-local cache). Repeat for more.
    #[arg(
        long = "dns-service",
        value_name = "IP",
        env = "HC_DNS_SERVICE",
        value_delimiter = ','
    )]
    pub(crate) dns_service: Vec<IpAddr>,

    /// Pod namespaces swept per round at most (the rest wait for later rounds).
    #[arg(long, env = "HC_NETNS_PER_ROUND", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) netns_per_round: u32,

    /// Where to serve /metrics, /healthz, /readyz and /status.
    #[arg(
        long,
        value_name = "ADDR",
        env = "HC_METRICS_ADDR",
        default_value = "0.0.0.0:9890"
    )]
    pub(crate) metrics_addr: std::net::SocketAddr,

    /// Latency histogram buckets in seconds, comma-separated. [default: 0.0005,0.001,...,4.5,5.5,10]
    #[arg(
        long,
        value_name = "SECONDS,...",
        env = "HC_LATENCY_BUCKETS",
        value_delimiter = ','
    )]
    pub(crate) latency_buckets: Vec<f64>,

    /// Run one round, print the report, exit 0 (healthy) or 1 (unhealthy). No server.
    #[arg(long, env = "HC_ONCE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) once: bool,

    /// With --once: print JSON.
    #[arg(long, env = "HC_JSON", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) json: bool,

    /// Log format.
    #[arg(long, value_enum, env = "HC_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,

    #[command(flatten)]
    pub(crate) kube: KubeArgs,
}

/// `--remediation`.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RemediationMode {
    /// Do not plan.
    Off,
    /// Plan, log and export the plan; change nothing.
    DryRun,
    /// Act (the Lease holder only).
    On,
}

#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Probe the targets as addressed from this machine.
    Direct,
    /// A short-lived pod in the cluster probes them and reports back through its logs.
    ProbePod,
    /// Each CoreDNS pod over DNS-over-TCP through the API server's port-forward. UDP cannot be
    /// checked this way: the results are TCP only, and say so.
    PortForward,
}

/// Kubernetes mode of the agent: read-only discovery, and the node's own condition.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes (on with --kubeconfig, KUBECONFIG, or inside a pod)")]
pub(crate) struct KubeArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,

    /// The CoreDNS Service.
    #[arg(long, env = "HC_SERVICE", default_value = "kube-dns")]
    pub(crate) service: String,

    /// The cluster domain: the query is kubernetes.default.svc.<cluster-domain>.
    #[arg(long, env = "HC_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = parse_domain_arg)]
    pub(crate) cluster_domain: String,

    /// DNS port for UDP and TCP, replacing the discovered ones (the Service's `dns`/`dns-tcp`
    /// ports and the pods'). `--udp-port` and HC_UDP_PORT are old names of it.
    #[arg(long, alias = "udp-port", env = "HC_DNS_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) dns_port: Option<u16>,

    /// How to reach the targets: direct (as addressed); probe-pod (a short-lived pod in the
    /// cluster runs `hc-cli probe --json` against them); port-forward (each CoreDNS pod over TCP
    /// through the API server). The last two are for machines outside the pod network.
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

    /// Set a `ClusterDNSReachable` condition on this agent's Node, on transitions only (needs
    /// `patch` on `nodes/status`).
    #[arg(long, env = "HC_NODE_CONDITION", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) node_condition: bool,

    /// This agent's Node: its reports say where they come from. [default: $NODE_NAME]
    #[arg(long, env = "HC_NODE_NAME")]
    pub(crate) node_name: Option<String>,

    #[command(flatten)]
    pub(crate) moved: MovedToController,
}

/// The API connection, shared by `run`, `controller` and `status`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Kubeconfig to use outside the cluster (KUBECONFIG is read too; ~/.kube/config never implicitly).
    #[arg(long, value_name = "PATH", env = "HC_KUBECONFIG")]
    pub(crate) kubeconfig: Option<std::path::PathBuf>,

    /// Namespace of CoreDNS and its Service (and of the controller's Lease).
    #[arg(long, env = "HC_NAMESPACE", default_value = "kube-system")]
    pub(crate) namespace: String,
}

/// Flags of `run` from before the controller: accepted, with a warning, so that old manifests
/// keep starting; remediation is `hc-cli controller`'s now.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct MovedToController {
    #[arg(long, env = "HC_REMEDIATION", hide = true)]
    pub(crate) remediation: Option<String>,
    #[arg(long, env = "HC_SELECTOR", hide = true)]
    pub(crate) selector: Option<String>,
    #[arg(long, env = "HC_LEASE_NAME", hide = true)]
    pub(crate) lease_name: Option<String>,
    #[arg(long, env = "HC_IDENTITY", hide = true)]
    pub(crate) identity: Option<String>,
    #[arg(long, env = "HC_MAX_MEMORY", hide = true)]
    pub(crate) max_memory: Option<String>,
    #[arg(long, env = "HC_MEMORY_FACTOR", hide = true)]
    pub(crate) memory_factor: Option<String>,
    #[arg(long, env = "HC_COOLDOWN", hide = true)]
    pub(crate) cooldown: Option<String>,
    #[arg(long, env = "HC_GRACE_PERIOD", hide = true)]
    pub(crate) grace_period: Option<String>,
    #[arg(long, env = "HC_MAX_ACTIONS_PER_HOUR", hide = true)]
    pub(crate) max_actions_per_hour: Option<String>,
    #[arg(long, env = "HC_ROLLOUT_RESTART", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) rollout_restart: Option<String>,
    #[arg(long, env = "HC_DELETE_PODS", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) delete_pods: Option<String>,
}

#[cfg(target_os = "linux")]
impl MovedToController {
    /// The flags given, by name.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let all = [
            ("--remediation", &self.remediation),
            ("--selector", &self.selector),
            ("--lease-name", &self.lease_name),
            ("--identity", &self.identity),
            ("--max-memory", &self.max_memory),
            ("--memory-factor", &self.memory_factor),
            ("--cooldown", &self.cooldown),
            ("--grace-period", &self.grace_period),
            ("--max-actions-per-hour", &self.max_actions_per_hour),
            ("--rollout-restart", &self.rollout_restart),
            ("--delete-pods", &self.delete_pods),
        ];
        all.into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| n)
            .collect()
    }
}

#[cfg(target_os = "linux")]
const CONTROLLER_LONG: &str = "\
Examples:
  # In the cluster (deploy/base): two replicas, one Lease, dry-run
  hc-cli controller

  # From a laptop, watching only
  hc-cli controller --kubeconfig ~/.kube/config --remediation off --metrics-addr 127.0.0.1:9891

Every --interval it reads the /status of at most --sample agents (rotating over every node),
keeps what each node last saw of each CoreDNS pod (by UID) and of the Service for --window, and
classifies by --quorum: a pod most nodes cannot reach while they reach its peers (evicted, after
--confirm-rounds rounds); a node that reaches no pod (an Event on the Node); the Service failing
while the pods answer (reported); every pod failing (reported; a rollout restart only with
--rollout-restart). Memory is raised only for an OOMKilled container that finished within the
last 10 minutes. One disruption at a time; the cooldown, the hourly budget and what was set are
kept on the Lease, so a restart or a new leader continues them.

Endpoints on --metrics-addr: /metrics, /healthz, /readyz, /status (the view as JSON; 200 when
healthy, 503 otherwise). Exit status: 0 after SIGTERM/SIGINT, 2 bad usage, 3 run-time error.";

/// Arguments of `hc-cli controller`.
#[cfg(target_os = "linux")]
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

    /// Agents read per round at most (all when there are fewer).
    #[arg(long, env = "HC_SAMPLE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
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

    /// When every CoreDNS pod fails from most nodes, allow a rollout restart (at most one per hour).
    #[arg(long, env = "HC_ROLLOUT_RESTART", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) rollout_restart: bool,

    /// Delete sick pods instead of evicting them (ignores PodDisruptionBudgets).
    #[arg(long, env = "HC_DELETE_PODS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) delete_pods: bool,

    /// Where to serve /metrics, /healthz, /readyz and /status.
    #[arg(
        long,
        value_name = "ADDR",
        env = "HC_METRICS_ADDR",
        default_value = "0.0.0.0:9891"
    )]
    pub(crate) metrics_addr: std::net::SocketAddr,

    /// Log format.
    #[arg(long, value_enum, env = "HC_LOG_FORMAT", default_value = "text")]
    pub(crate) log_format: LogFormat,
}

#[cfg(target_os = "linux")]
const STATUS_EXAMPLES: &str = "\
Examples:
  hc-cli status --kubeconfig ~/.kube/config          # through the API server's service proxy
  hc-cli status --controller http://127.0.0.1:9891   # e.g. after kubectl port-forward
  hc-cli status --json

Exit status: 0 healthy, 1 not healthy, 2 bad usage, 3 the controller cannot be read.";

/// Arguments of `hc-cli status`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,

    /// Read the controller at this address instead (http://IP:PORT).
    #[arg(long, value_name = "URL", env = "HC_CONTROLLER", value_parser = parse_controller_arg)]
    pub(crate) controller: Option<std::net::SocketAddr>,

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

#[cfg(target_os = "linux")]
fn parse_controller_arg(s: &str) -> Result<std::net::SocketAddr, String> {
    let hostport = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    hostport.parse().map_err(|_| {
        format!("expected http://IP:PORT (an address: this tool does not use the cluster DNS it checks), got {s:?}")
    })
}

#[cfg(target_os = "linux")]
fn parse_quorum_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(q) if q > 0.5 && q <= 1.0 => Ok(q),
        _ => Err("must be a share above 0.5 and at most 1, e.g. 0.6".into()),
    }
}

#[cfg(target_os = "linux")]
fn parse_memory_arg(s: &str) -> Result<u64, String> {
    match hc_remedy::parse_quantity(s) {
        Some(b) if b >= 1 << 20 => Ok(b),
        Some(_) => Err("must be at least 1Mi".into()),
        None => Err("not a Kubernetes quantity: write e.g. 512Mi or 1Gi".into()),
    }
}

#[cfg(target_os = "linux")]
fn parse_factor_arg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 1.0 && f <= 10.0 => Ok(f),
        _ => Err("must be a number above 1 and at most 10, e.g. 2".into()),
    }
}

/// A DNS domain (`cluster.local`): the query name must stay valid with it.
#[cfg(target_os = "linux")]
fn parse_domain_arg(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.');
    dnsprobe::parse_name(&format!("kubernetes.default.svc.{d}"))
        .map(|_| d.to_owned())
        .map_err(|e| format!("not a DNS domain: {e}"))
}

/// `hc-cli netns ...`
#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct ProcRootArg {
    /// The node's proc filesystem (the host's /proc mounted into a DaemonSet pod, e.g. /host/proc).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/proc",
        env = "HC_PROC_ROOT"
    )]
    pub(crate) proc_root: std::path::PathBuf,
}

/// Arguments of `hc-cli netns list`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct NetnsListArgs {
    #[command(flatten)]
    pub(crate) proc: ProcRootArg,

    /// Print a JSON array of {inode, pid, process, name, path, pod_uid, container_id}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(target_os = "linux")]
const SWEEP_EXAMPLES: &str = "\
Examples:
  hc-cli sweep --target 10.96.0.10 --expect 10.96.0.1 --dns-service 10.96.0.10
  hc-cli sweep --target 10.96.0.10 --target 10.244.0.5 --netns-glob 'cni-*' --json
  hc-cli sweep --target 10.96.0.10 --netns /proc/4242/ns/net";

#[cfg(target_os = "linux")]
const SWEEP_LONG: &str = "\
Examples:
  # Every pod on this node: can it resolve through the kube-dns Service, and is its resolv.conf right?
  hc-cli sweep --target 10.96.0.10 --expect 10.96.0.1 --dns-service 10.96.0.10

  # The Service and each CoreDNS pod, from CNI-named namespaces only, as JSON
  hc-cli sweep --target 10.96.0.10 --target 10.244.0.5 --target 10.244.1.7 --netns-glob 'cni-*' --json

  # In a DaemonSet with the host's /proc at /host/proc
  hc-cli sweep --target 10.96.0.10 --proc-root /host/proc

How it works: the namespaces are found in /proc (one per distinct ns/net inode) and under
/run/netns; sockets are opened inside each (on a dedicated thread), then every probe runs at
once. A target that fails over UDP is probed again over TCP. Each failing namespace is
diagnosed over rtnetlink: route to the target, default route, interfaces up and addressed,
the node-side veth peer present, up and bridged (or routed).

Findings: no-route, no-default-route, link-down, no-address, veth-peer-missing,
veth-peer-down, veth-detached, resolv-conf-missing, resolv-conf-nameserver,
resolv-conf-too-many-nameservers, resolv-conf-too-many-search, udp-blocked, tcp-blocked,
dns-unreachable, netns-unavailable, and the probe failure kinds (timeout, refused, rcode,
wrong-answer, ...).

Needs CAP_SYS_ADMIN (enter namespaces) and CAP_SYS_PTRACE (see other users' processes).
Exit status: 0 every namespace healthy, 1 any unhealthy, 2 bad usage, 3 run-time error.";

/// Arguments of `hc-cli sweep`.
#[cfg(target_os = "linux")]
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// DNS server to probe: IP or IP:PORT (port 53 when absent). Repeat for more.
    #[arg(long = "target", value_name = "IP[:PORT]", env = "HC_TARGET", value_delimiter = ',', required = true, num_args = 1.., action = clap::ArgAction::Append, value_parser = parse_target_arg)]
    pub(crate) targets: Vec<TargetArg>,

    /// Name to query.
    #[arg(long, env = "HC_NAME", default_value = dnsprobe::DEFAULT_QUERY_NAME, value_parser = parse_name_arg)]
    pub(crate) name: Name,

    /// An address the answer must contain (e.g. the ClusterIP of default/kubernetes). Repeat for more.
    #[arg(
        long = "expect",
        value_name = "IP",
        env = "HC_EXPECT",
        value_delimiter = ','
    )]
    pub(crate) expect: Vec<IpAddr>,

    /// An address a pod's resolv.conf must name (kube-dns ClusterIP, or a node-local cache). Repeat for more.
    #[arg(
        long = "dns-service",
        value_name = "IP",
        env = "HC_DNS_SERVICE",
        value_delimiter = ','
    )]
    pub(crate) dns_service: Vec<IpAddr>,

    /// Sweep this namespace: a name under /run/netns, or a path such as /proc/PID/ns/net. Repeat for more.
    #[arg(
        long = "netns",
        value_name = "NAME|PATH",
        env = "HC_NETNS",
        value_delimiter = ','
    )]
    pub(crate) netns: Vec<String>,

    /// Sweep the namespaces whose /run/netns name matches this glob (e.g. 'cni-*').
    #[arg(long, value_name = "GLOB", env = "HC_NETNS_GLOB", value_parser = parse_glob_arg)]
    pub(crate) netns_glob: Option<glob::Pattern>,

    #[command(flatten)]
    pub(crate) proc: ProcRootArg,

    /// Time allowed for each probe, e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", env = "HC_TIMEOUT", default_value = "2s", value_parser = parse_duration_arg)]
    pub(crate) timeout: Duration,

    /// Print a JSON array, one object per namespace.
    #[arg(long, env = "HC_JSON", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) json: bool,
}

#[cfg(target_os = "linux")]
fn parse_glob_arg(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s).map_err(|e| format!("invalid glob: {e}"))
}

const PROBE_EXAMPLES: &str = "\
Examples:
  hc-cli probe --target 10.96.0.10                  # kubernetes.default.svc.cluster.local A over UDP
  hc-cli probe --target 10.96.0.10 --both --expect 10.96.0.1
  hc-cli probe --target 10.244.0.5 --target 10.244.1.7 --tcp --json
  hc-cli probe --target [fd00::a]:53 --type AAAA --name kubernetes.default.svc.cluster.local";

const PROBE_LONG: &str = "\
Examples:
  # Is the kube-dns Service answering over UDP? (what pods use)
  hc-cli probe --target 10.96.0.10

  # UDP and TCP separately, and the answer must be the API server's ClusterIP:
  # shows the 'UDP dead, TCP and HTTP health alive' failure the liveness probe cannot see
  hc-cli probe --target 10.96.0.10 --both --expect 10.96.0.1

  # Every CoreDNS pod directly, machine-readable
  hc-cli probe --target 10.244.0.5 --target 10.244.1.7 --both --json

  # A name that must not exist: NXDOMAIN is the healthy answer
  hc-cli probe --target 10.96.0.10 --name nope.default.svc.cluster.local --rcode NXDOMAIN

Healthy means: a reply from the queried address and port, with the query's ID and question, a
response code in --rcode (default NOERROR), and an answer that contains every --expect address
(or, without --expect, any answer at all). A truncated UDP reply is retried over TCP, as dig does.

Exit status: 0 every probe healthy, 1 any probe unhealthy, 2 bad usage or configuration,
3 run-time error.
Failure kinds (JSON error.kind): timeout, refused, unreachable, rcode, wrong-answer,
empty-answer, truncated, malformed, io.";

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

/// A target as typed: the port is filled from --port when absent.
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

fn parse_target_arg(s: &str) -> Result<TargetArg, String> {
    if let Ok(addr) = s.trim().parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err(
                "port 0 is not a DNS port: give 1-65535, or leave the port out to use --port"
                    .into(),
            );
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

fn parse_name_arg(s: &str) -> Result<Name, String> {
    dnsprobe::parse_name(s).map_err(|e| e.to_string())
}

fn parse_type_arg(s: &str) -> Result<RecordType, String> {
    dnsprobe::parse_record_type(s).map_err(|e| e.to_string())
}

fn parse_rcode_arg(s: &str) -> Result<ResponseCode, String> {
    dnsprobe::parse_rcode(s).map_err(|e| e.to_string())
}

/// The query every probe of a sweep or an agent is made from: `name`, an answer that must hold
/// every `expect` address (any answer when there is none), `timeout` and `attempts` per probe.
pub(crate) fn probe_template(
    name: Name,
    expect: &[IpAddr],
    timeout: Duration,
    attempts: u32,
) -> dnsprobe::ProbeSpec {
    let answer = if expect.is_empty() {
        dnsprobe::AnswerExpectation::NonEmpty
    } else {
        dnsprobe::AnswerExpectation::Contains(expect.to_vec())
    };
    dnsprobe::ProbeSpec::new(std::net::SocketAddr::from(([0, 0, 0, 0], 53)))
        .with_name(name)
        .with_answer(answer)
        .with_timeout(timeout)
        .with_attempts(attempts)
}

pub(crate) fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write a duration such as 300ms, 2s or 1m"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
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
