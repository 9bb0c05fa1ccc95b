//! The agent's query budget as a [clap] flag group (feature `clap`): the flags of `hc-cli run`
//! that size what a round probes, with their `HC_*` variables, defaults and bounds
//! (docs/performance.md has the arithmetic).
//!
//! ```
//! use clap::Parser;
//! use hc_agent::cli::BudgetArgs;
//!
//! #[derive(Debug, Parser)]
//! struct Cmd {
//!     #[command(flatten)]
//!     budget: BudgetArgs,
//! }
//!
//! let b = Cmd::parse_from(["x", "--query-budget", "0.5", "--netns-every", "5m"]).budget.budget();
//! assert_eq!((b.qps, b.netns_every.as_secs(), b.observers), (0.5, 300, 3));
//! assert!(Cmd::try_parse_from(["x", "--query-budget", "0"]).is_err());
//! ```

use std::time::Duration;

use clap::Args;
use dnsprobe::cli::DurationParser;

use crate::Budget;

/// The flags that make a [`Budget`] (the API check's period is Kubernetes's:
/// `hc_remedy::cli::KubeArgs`).
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct BudgetArgs {
    /// Time between the starts of two rounds (in a cluster, the first after a random part of it).
    #[arg(long, value_name = "DURATION", env = "HC_INTERVAL", default_value = "15s", value_parser = DurationParser)]
    pub interval: Duration,
    /// DNS queries per second on average, for everything this agent probes (docs/performance.md).
    #[arg(long, value_name = "QPS", env = "HC_QUERY_BUDGET", default_value_t = 1.0, value_parser = parse_budget)]
    pub query_budget: f64,
    /// Probe the DNS Service over TCP instead of UDP every N rounds (0: never).
    #[arg(long, value_name = "N", env = "HC_TCP_EVERY", default_value_t = 4)]
    pub tcp_every: u32,
    /// Nodes that should probe each CoreDNS pod every minute (all nodes in smaller clusters).
    #[arg(long, value_name = "N", env = "HC_OBSERVERS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub observers: u32,
    /// Check every pod namespace at least this often (the budget permitting).
    #[arg(long, value_name = "DURATION", env = "HC_NETNS_EVERY", default_value = "2m", value_parser = DurationParser)]
    pub netns_every: Duration,
    /// Pod namespaces swept per round at most, whatever the budget leaves.
    #[arg(long, env = "HC_NETNS_PER_ROUND", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub netns_per_round: u32,
    /// With --sweep-netns, resolve kubernetes.default through one pod's resolv.conf as glibc would this often (about 4 queries, paid from the budget).
    #[arg(long, value_name = "DURATION", env = "HC_CLIENT_PATH_EVERY", default_value = "5m", value_parser = DurationParser)]
    pub client_path_every: Duration,
}

impl BudgetArgs {
    /// The budget these flags give, the rest as [`Budget::default`].
    pub fn budget(&self) -> Budget {
        Budget {
            qps: self.query_budget,
            interval: self.interval,
            tcp_every: self.tcp_every,
            observers: self.observers as usize,
            netns_every: self.netns_every,
            netns_max_per_round: self.netns_per_round as usize,
            client_every: self.client_path_every,
            ..Budget::default()
        }
    }
}

/// `--query-budget`: a positive number of queries per second, at most 10,000.
fn parse_budget(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(q) if q > 0.0 && q <= 10_000.0 => Ok(q),
        _ => Err(format!(
            "{s:?} is not a query budget: give queries per second, more than 0 and at most 10000 (e.g. 1 or 0.5)"
        )),
    }
}
