//! The command-line flags of `hc-cli`'s Kubernetes side as [clap] flag groups (feature `clap`),
//! each with its `HC_*` environment variable, its default and its bounds, and the configuration
//! it makes: [`KubeArgs::config`] for the agent ([`AgentClusterConfig`]), [`ControllerArgs::config`]
//! for the controller ([`ControllerConfig`]). Flatten them into a command of your own to run the
//! agent's discovery or the controller with the same flags as `hc-cli run` and `hc-cli
//! controller` (docs/cli.md).
//!
//! ```
//! use clap::Parser;
//! use hc_remedy::cli::ControllerArgs;
//!
//! #[derive(Debug, Parser)]
//! struct Cmd {
//!     #[command(flatten)]
//!     controller: ControllerArgs,
//! }
//!
//! let cmd = Cmd::parse_from(["x", "--identity", "r1", "--quorum", "0.75", "--grace-period", "0s"]);
//! let cfg = cmd.controller.config();
//! assert_eq!((cfg.identity.as_str(), cfg.quorum), ("r1", 0.75));
//! assert_eq!(cfg.mode, hc_remedy::Mode::DryRun);
//! assert!(Cmd::try_parse_from(["x", "--quorum", "0.5"]).is_err());
//! ```

// The fields' docs are the flags' help text too, where `<cluster-domain>` is a placeholder.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use dnsprobe::cli::{Checked, DurationParser};

use crate::{AgentClusterConfig, ControllerConfig, DiscoveryConfig, Mode, Via};

/// The API connection, shared by `run`, `controller` and `status`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct ApiArgs {
    /// Kubeconfig to use outside the cluster (KUBECONFIG is read too; ~/.kube/config never implicitly).
    #[arg(long, value_name = "PATH", env = "HC_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of CoreDNS and its Service (and of the controller's Lease).
    #[arg(long, env = "HC_NAMESPACE", default_value = "kube-system")]
    pub namespace: String,
}

/// The agent in Kubernetes: read-only discovery, and the node's own condition.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kubernetes (on with --kubeconfig, KUBECONFIG, or inside a pod)")]
#[non_exhaustive]
pub struct KubeArgs {
    /// The API connection.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The CoreDNS Service.
    #[arg(long, env = "HC_SERVICE", default_value = "kube-dns")]
    pub service: String,
    /// The cluster domain: the query is kubernetes.default.svc.<cluster-domain>.
    #[arg(long, env = "HC_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = Checked("cluster domain", parse_domain))]
    pub cluster_domain: String,
    /// DNS port for UDP and TCP, replacing the discovered ones. (`--udp-port`, HC_UDP_PORT: old names.)
    #[arg(long, alias = "udp-port", env = "HC_DNS_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    dns_port: Option<u16>,
    /// The old name of HC_DNS_PORT, read when that is not set (clap takes one variable a flag).
    #[arg(long = "udp-port-from-env", hide = true, env = "HC_UDP_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    old_udp_port: Option<u16>,
    /// How to reach the targets: direct, probe-pod (a short-lived pod probes from inside), or
    /// port-forward (each CoreDNS pod over TCP through the API server).
    #[arg(long, value_enum, env = "HC_VIA", default_value = "direct")]
    pub via: Via,
    /// Image of the probe pod (`hc-cli` as its entrypoint).
    #[arg(
        long,
        env = "HC_PROBE_IMAGE",
        default_value = "ghcr.io/coredns-healthcheck/hc-cli:0.1.0"
    )]
    pub probe_image: String,
    /// How long a probe pod may take, from creation to its logs.
    #[arg(long, value_name = "DURATION", env = "HC_PROBE_POD_TIMEOUT", default_value = "60s", value_parser = DurationParser)]
    pub probe_pod_timeout: Duration,
    /// Set a `ClusterDNSReachable` condition on this Node, on transitions (needs patch nodes/status).
    #[arg(long, env = "HC_NODE_CONDITION", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub node_condition: bool,
    /// This agent's Node: its reports say where they come from. [default: $NODE_NAME]
    #[arg(long, env = "HC_NODE_NAME")]
    pub node_name: Option<String>,
    /// Resolve kubernetes.default.svc through the DNS Service and complete a TLS handshake with
    /// the API server at that address, this often (the first time after a random part of it);
    /// 0: never. Counted in --query-budget.
    #[arg(long, value_name = "DURATION", env = "HC_API_DNS_EVERY", default_value = "5m", value_parser = Checked("value", parse_every))]
    pub api_dns_every: Duration,
    /// `--remediation` from before the controller: accepted so that old manifests keep starting
    /// (see [`KubeArgs::ignored`]).
    #[arg(long, env = "HC_REMEDIATION", hide = true)]
    pub remediation: Option<String>,
}

/// The flags of the agent that moved to the controller: an old command line that gives one is
/// refused, naming where it went.
pub const MOVED_FLAGS: &[&str] = &[
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

impl KubeArgs {
    /// `--dns-port` (`--udp-port`, HC_DNS_PORT), else HC_UDP_PORT.
    pub fn dns_port(&self) -> Option<u16> {
        self.dns_port.or(self.old_udp_port)
    }

    /// The agent's Kubernetes configuration; `var` reads the environment (`NODE_NAME`, set by the
    /// downward API, names the node when `--node-name` does not).
    pub fn config(&self, var: impl Fn(&str) -> Option<String>) -> AgentClusterConfig {
        let mut c = AgentClusterConfig::new(DiscoveryConfig {
            namespace: self.api.namespace.clone(),
            service: self.service.clone(),
        });
        c.cluster_domain = self.cluster_domain.clone();
        c.dns_port = self.dns_port();
        c.via = self.via;
        c.probe_pod.image = self.probe_image.clone();
        c.probe_pod.timeout = self.probe_pod_timeout;
        let node = || var("NODE_NAME").filter(|v| !v.is_empty());
        c.node = self.node_name.clone().or_else(node);
        c.node_condition = self.node_condition;
        c
    }

    /// What an old manifest sets that the agent ignores now, one warning each: `--remediation`,
    /// and the variables of the [`MOVED_FLAGS`] that `is_set` says are set.
    pub fn ignored(&self, is_set: impl Fn(&str) -> bool) -> Vec<String> {
        let flag = self.remediation.as_ref().map(|_| {
            "--remediation (HC_REMEDIATION) has no effect on the agent: remediation is `hc-cli controller`'s".to_owned()
        });
        let vars = MOVED_FLAGS.iter().map(|f| {
            let name = f.trim_start_matches('-').replace('-', "_").to_uppercase();
            format!("HC_{name}")
        });
        let vars = vars
            .filter(|v| is_set(v))
            .map(|v| format!("{v} has no effect on the agent: it is read by `hc-cli controller`"));
        flag.into_iter().chain(vars).collect()
    }
}

/// The flags of `hc-cli controller` that make its [`ControllerConfig`] (the admin address and
/// the log format are the command's).
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct ControllerArgs {
    /// The API connection.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Label selector of the CoreDNS pods (and of their Deployment).
    #[arg(long, env = "HC_SELECTOR", default_value = "k8s-app=kube-dns")]
    pub selector: String,
    /// Namespace of the agent pods. [default: --namespace]
    #[arg(long, env = "HC_AGENT_NAMESPACE")]
    pub agent_namespace: Option<String>,
    /// Label selector of the agent pods.
    #[arg(
        long,
        env = "HC_AGENT_SELECTOR",
        default_value = "app.kubernetes.io/name=coredns-healthcheck,app.kubernetes.io/component=agent"
    )]
    pub agent_selector: String,
    /// The agents' admin port.
    #[arg(long, env = "HC_AGENT_PORT", default_value_t = 9890, value_parser = clap::value_parser!(u16).range(1..))]
    pub agent_port: u16,
    /// Agents read per round at most (all when there are fewer): first those that probed a
    /// CoreDNS pod short of reports, then a rotation. Reads go to the agents, not the API server.
    #[arg(long, env = "HC_SAMPLE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub sample: u32,
    /// The share of reporting nodes that must agree on a verdict.
    #[arg(long, env = "HC_QUORUM", default_value_t = 0.6, value_parser = parse_quorum)]
    pub quorum: f64,
    /// Time between rounds.
    #[arg(long, value_name = "DURATION", env = "HC_INTERVAL", default_value = "15s", value_parser = DurationParser)]
    pub interval: Duration,
    /// How long a node's result counts.
    #[arg(long, value_name = "DURATION", env = "HC_WINDOW", default_value = "2m", value_parser = DurationParser)]
    pub window: Duration,
    /// Consecutive rounds a pod verdict must hold before an eviction.
    #[arg(long, env = "HC_CONFIRM_ROUNDS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub confirm_rounds: u32,
    /// off: watch and report only; dry-run: plan, log and export, change nothing; on: act.
    #[arg(long, value_enum, env = "HC_REMEDIATION", default_value = "dry-run")]
    pub remediation: Mode,
    /// The Lease that elects the one replica that decides.
    #[arg(long, env = "HC_LEASE_NAME", default_value = "coredns-healthcheck")]
    pub lease_name: String,
    /// This replica's name in the Lease and in Events. [default: $POD_NAME, else the hostname]
    #[arg(long, env = "HC_IDENTITY")]
    pub identity: Option<String>,
    /// Memory limit cap for raises (Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", env = "HC_MAX_MEMORY", default_value = "1Gi", value_parser = parse_memory)]
    pub max_memory: u64,
    /// Memory limit growth factor (the new limit is max(old x factor, old + 100Mi)).
    #[arg(long, env = "HC_MEMORY_FACTOR", default_value_t = 2.0, value_parser = parse_factor)]
    pub memory_factor: f64,
    /// Time between two actions.
    #[arg(long, value_name = "DURATION", env = "HC_COOLDOWN", default_value = "60s", value_parser = Checked("value", parse_day))]
    pub cooldown: Duration,
    /// Never act on a pod younger than this.
    #[arg(long, value_name = "DURATION", env = "HC_GRACE_PERIOD", default_value = "60s", value_parser = Checked("value", parse_day))]
    pub grace_period: Duration,
    /// Actions allowed per rolling hour.
    #[arg(long, env = "HC_MAX_ACTIONS_PER_HOUR", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_actions_per_hour: u32,
    /// When every CoreDNS pod fails from most nodes, allow a rollout restart (one per hour at most).
    #[arg(long, env = "HC_ROLLOUT_RESTART", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub rollout_restart: bool,
    /// Delete sick pods instead of evicting them (ignores PodDisruptionBudgets).
    #[arg(long, env = "HC_DELETE_PODS", action = clap::ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub delete_pods: bool,
    /// The checks beside the view.
    #[command(flatten)]
    pub checks: ControllerChecks,
}

/// The controller's checks beside the view: Service freshness and CoreDNS's HTTP endpoints.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct ControllerChecks {
    /// The DNS Service in --namespace: the freshness queries go to its ClusterIP.
    #[arg(long, env = "HC_SERVICE", default_value = "kube-dns")]
    pub service: String,
    /// The cluster domain: a Service's name is NAME.NAMESPACE.svc.<cluster-domain>.
    #[arg(long, env = "HC_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = parse_domain)]
    pub cluster_domain: String,
    /// Service changes followed at once at most until they resolve (0: no freshness check, and
    /// no watch of Services).
    #[arg(long, value_name = "N", env = "HC_FRESHNESS_FOLLOW", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub freshness_follow: u32,
    /// A followed change that does not resolve right by then is reported (stale or not propagated).
    #[arg(long, value_name = "DURATION", env = "HC_FRESHNESS_GIVE_UP", default_value = "60s", value_parser = Checked("value", parse_give_up))]
    pub freshness_give_up: Duration,
    /// Port of CoreDNS's health plugin (/health) on each CoreDNS pod (0: not read).
    #[arg(
        long,
        value_name = "PORT",
        env = "HC_COREDNS_HEALTH_PORT",
        default_value_t = 8080
    )]
    pub coredns_health_port: u16,
    /// Port of CoreDNS's ready plugin (/ready) on each CoreDNS pod (0: not read).
    #[arg(
        long,
        value_name = "PORT",
        env = "HC_COREDNS_READY_PORT",
        default_value_t = 8181
    )]
    pub coredns_ready_port: u16,
}

impl ControllerArgs {
    /// The controller's configuration. A read of an agent or of CoreDNS ends well within a
    /// round: half the interval, from 100 ms to 2 s.
    pub fn config(&self) -> ControllerConfig {
        let identity = (self.identity.clone()).unwrap_or_else(ControllerConfig::default_identity);
        let mut c = ControllerConfig::new(&identity);
        c.namespace = self.api.namespace.clone();
        c.selector = self.selector.clone();
        c.agent_namespace = (self.agent_namespace.clone()).unwrap_or_else(|| c.namespace.clone());
        c.agent_selector = self.agent_selector.clone();
        c.agent_port = self.agent_port;
        c.sample = self.sample as usize;
        c.quorum = self.quorum;
        c.window = self.window;
        c.confirm_rounds = self.confirm_rounds;
        c.mode = self.remediation;
        c.lease_name = self.lease_name.clone();
        c.delete_pods = self.delete_pods;
        let p = &mut c.policy;
        p.memory_factor = self.memory_factor;
        p.memory_cap = self.max_memory;
        p.rollout_restart = self.rollout_restart;
        p.grace_period = self.grace_period;
        p.cooldown = self.cooldown;
        p.max_actions_per_hour = self.max_actions_per_hour as usize;
        c.read_timeout =
            (self.interval / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let (a, f) = (&self.checks, &mut c.freshness);
        f.follow = a.freshness_follow as usize;
        f.give_up = a.freshness_give_up;
        f.cluster_domain = a.cluster_domain.clone();
        f.dns_namespace = self.api.namespace.clone();
        f.dns_service = a.service.clone();
        f.timeout = c.read_timeout;
        let port = |p: u16| (p != 0).then_some(p);
        c.http.health_port = port(a.coredns_health_port);
        c.http.ready_port = port(a.coredns_ready_port);
        c.http.timeout = c.read_timeout;
        c
    }
}

/// A duration from `min` to `max`, else `hint`.
fn span(s: &str, min: Duration, max: Duration, hint: &str) -> Result<Duration, String> {
    match dnsprobe::cli::parse_duration(s) {
        Ok(d) if (min..=max).contains(&d) => Ok(d),
        _ => Err(hint.to_owned()),
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// `--freshness-give-up`: from 1 s to 1 h.
fn parse_give_up(s: &str) -> Result<Duration, String> {
    let hint = "give a duration from 1s to 1h, e.g. 60s";
    span(s, SECOND, dnsprobe::cli::MAX_TIMEOUT, hint)
}

/// `--api-dns-every`: 0 (off), or from 1 s to 1 day.
fn parse_every(s: &str) -> Result<Duration, String> {
    let hint = "give 0 (off) or a duration from 1s to 1 day, e.g. 5m";
    match s.trim() {
        "0" => Ok(Duration::ZERO),
        _ => span(s, SECOND, dnsprobe::cli::MAX_DURATION, hint),
    }
}

/// `--cooldown`, `--grace-period`: from 0 to 1 day.
fn parse_day(s: &str) -> Result<Duration, String> {
    let hint = "give a duration from 0s to 1 day, e.g. 60s";
    span(s, Duration::ZERO, dnsprobe::cli::MAX_DURATION, hint)
}

fn parse_quorum(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(q) if q > 0.5 && q <= 1.0 => Ok(q),
        _ => Err("must be a share above 0.5 and at most 1, e.g. 0.6".into()),
    }
}

fn parse_memory(s: &str) -> Result<u64, String> {
    match crate::parse_quantity(s) {
        Some(b) if b >= 1 << 20 => Ok(b),
        Some(_) => Err("must be at least 1Mi".into()),
        None => Err("not a Kubernetes quantity: write e.g. 512Mi or 1Gi".into()),
    }
}

fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 1.0 && f <= 10.0 => Ok(f),
        _ => Err("must be a number above 1 and at most 10, e.g. 2".into()),
    }
}

/// A DNS domain (`cluster.local`): the query name must stay valid with it.
fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.');
    match dnsprobe::parse_name(&format!("kubernetes.default.svc.{d}")) {
        Ok(_) => Ok(d.to_owned()),
        Err(dnsprobe::SpecError::InvalidName { reason, .. }) => {
            Err(format!("not a DNS domain: {reason}"))
        }
        Err(e) => Err(format!("not a DNS domain: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Agent {
        #[command(flatten)]
        kube: KubeArgs,
    }

    #[test]
    fn the_agent_config_takes_the_node_from_the_downward_api_and_names_what_moved() {
        let a = Agent::parse_from(["x", "--udp-port", "5353", "--remediation", "on"]);
        let env = |k: &str| (k == "NODE_NAME").then(|| "node-1".to_owned());
        let c = a.kube.config(env);
        assert_eq!(
            (c.node.as_deref(), c.dns_port),
            (Some("node-1"), Some(5353))
        );
        let ignored = a.kube.ignored(|v| v == "HC_COOLDOWN");
        assert_eq!(ignored.len(), 2, "{ignored:?}");
        assert!(ignored[1].starts_with("HC_COOLDOWN has no effect"));
        let given = Agent::parse_from(["x", "--node-name", "n2"])
            .kube
            .config(env);
        assert_eq!(given.node.as_deref(), Some("n2"));
    }

    #[test]
    fn durations_keep_their_bounds() {
        assert_eq!(parse_every("0"), Ok(Duration::ZERO));
        assert!(parse_every("500ms").unwrap_err().contains("give 0 (off)"));
        assert!(parse_give_up("2h").is_err());
        assert_eq!(parse_day("0s"), Ok(Duration::ZERO));
        assert!(parse_day("300000000000y").unwrap_err().contains("1 day"));
    }
}
