//! The sweep's netfilter steps: conntrack counters read around the probes, the dropping rule
//! named for a failing path (its counter read around a probe sent again), and stale conntrack
//! entries to the DNS Service. Each step reads kernel state on dedicated threads (off the
//! runtime's), bounded in the namespaces it visits.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use dnsprobe::Transport;

use crate::conntrack::{ConntrackStats, StaleDestination, stale_entries};
use crate::finding::Finding;
use crate::nftables::{Fit, Flow, NftRule, culprit_finding, culprits};
use crate::sweep::{Entry, SweepConfig, blocking, probe_entries};

/// Namespaces whose dropping rules one check looks for at most: each costs two ruleset dumps
/// and a probe sent again.
pub(crate) const MAX_RULE_SEARCHES: usize = 16;

/// The conntrack statistics of the caller's namespace (the node's) and of each of `paths`
/// (`None`: the caller's own again), read on one thread that enters each in turn.
pub(crate) async fn conntrack_readings(
    paths: Vec<Option<PathBuf>>,
) -> (Option<ConntrackStats>, Vec<Option<ConntrackStats>>) {
    let n = paths.len();
    let read = move || {
        let node = std::thread::scope(|s| s.spawn(crate::conntrack::stats_here).join())
            .ok()
            .flatten();
        let pods: Vec<PathBuf> = paths.iter().flatten().cloned().collect();
        let mut inside = crate::run_in_each(&pods, |_| crate::conntrack::stats_here()).into_iter();
        let each = (paths.iter())
            .map(|p| match p {
                None => node.clone(),
                Some(_) => inside.next().and_then(Result::ok).flatten(),
            })
            .collect();
        (node, each)
    };
    blocking("reading conntrack statistics", read)
        .await
        .unwrap_or_else(|_| (None, vec![None; n]))
}

/// One namespace whose path failed: its index among the reports, where it is (`None`: the
/// caller's own), and the failing (transport, target) pairs.
pub(crate) type Failing = (usize, Option<PathBuf>, Vec<(Transport, SocketAddr)>);

/// The rulesets of the node and of each failing namespace (the node's stands in for the
/// caller's own namespace). `None` where it could not be read (no CAP_NET_ADMIN, no nf_tables).
async fn rulesets(failing: &[Failing]) -> (Option<Vec<NftRule>>, Vec<Option<Vec<NftRule>>>) {
    let paths: Vec<Option<PathBuf>> = failing.iter().map(|(_, p, _)| p.clone()).collect();
    let n = paths.len();
    let read = move || {
        let node = crate::nftables::read_ruleset(None).ok();
        let each = (paths.iter())
            .map(|p| match p {
                None => None,
                Some(p) => crate::nftables::read_ruleset(Some(p)).ok(),
            })
            .collect();
        (node, each)
    };
    blocking("reading nftables rulesets", read)
        .await
        .unwrap_or_else(|_| (None, vec![None; n]))
}

/// Whether any rule of `rules` may match the DNS packets of the failing pairs.
fn may_match(
    rules: Option<&Vec<NftRule>>,
    pairs: &[(Transport, SocketAddr)],
    eps: &[IpAddr],
) -> bool {
    let Some(rules) = rules else { return false };
    pairs.iter().any(|(t, target)| {
        let mut servers = vec![*target];
        servers.extend(eps.iter().map(|e| SocketAddr::new(*e, target.port())));
        servers
            .iter()
            .flat_map(|s| Flow::dns(*t, *s))
            .any(|f| rules.iter().any(|r| r.fits(&f) != Fit::No))
    })
}

/// For each failing namespace (at most [`MAX_RULE_SEARCHES`]), the `nftables-drop` findings: the
/// rulesets are read, and when some dropping or rejecting rule may match, the failing probes are
/// sent again and the rulesets read once more, so that a rule is named on its counter's growth.
/// Returns (report index, findings).
pub(crate) async fn dropping_rules(
    cfg: &SweepConfig,
    mut failing: Vec<Failing>,
) -> Vec<(usize, Vec<Finding>)> {
    failing.truncate(MAX_RULE_SEARCHES);
    if failing.is_empty() {
        return Vec::new();
    }
    let eps = &cfg.endpoints[..];
    let (node_before, own_before) = rulesets(&failing).await;
    let any = failing.iter().zip(&own_before).any(|((_, _, pairs), own)| {
        may_match(node_before.as_ref(), pairs, eps) || may_match(own.as_ref(), pairs, eps)
    });
    if !any {
        return Vec::new();
    }
    // The failing probes once more, while the counters are watched.
    for transport in [Transport::Udp, Transport::Tcp] {
        let entries: Vec<Entry> = (failing.iter())
            .map(|(_, path, pairs)| {
                let specs = (pairs.iter())
                    .filter(|(t, _)| *t == transport)
                    .map(|(_, a)| cfg.spec(*a, transport))
                    .collect();
                (path.clone(), specs)
            })
            .filter(|(_, t): &Entry| !t.is_empty())
            .collect();
        if !entries.is_empty() {
            let _ = probe_entries(cfg, &entries, transport).await;
        }
    }
    let (node_after, own_after) = rulesets(&failing).await;
    let mut out = Vec::new();
    for (((i, path, pairs), own_before), own_after) in failing.iter().zip(own_before).zip(own_after)
    {
        let mut found = Vec::new();
        if let (Some(b), Some(a)) = (&own_before, &own_after) {
            found.extend(culprits(b, a, pairs, eps, "this namespace"));
        }
        if let (Some(b), Some(a)) = (&node_before, &node_after) {
            let place = if path.is_none() {
                "this namespace"
            } else {
                "the node's namespace"
            };
            found.extend(culprits(b, a, pairs, eps, place));
        }
        if !found.is_empty() {
            out.push((*i, found.iter().map(culprit_finding).collect()));
        }
    }
    out
}

/// The stale destinations of the caller's namespace's conntrack table: UDP entries to a DNS
/// Service address (a target that is not an endpoint, or a `dns_service` address) that lead to
/// an address that is not one of `cfg.endpoints`. Nothing without endpoints, or when the table
/// cannot be read.
pub(crate) async fn stale_destinations(cfg: &SweepConfig) -> Vec<StaleDestination> {
    let eps = cfg.endpoints.clone();
    if eps.is_empty() {
        return Vec::new();
    }
    let mut services: Vec<SocketAddr> = (cfg.targets.iter())
        .filter(|t| !eps.contains(&t.ip()))
        .copied()
        .collect();
    let mut ports: Vec<u16> = cfg.targets.iter().map(SocketAddr::port).collect();
    ports.push(dnsprobe::DEFAULT_PORT);
    ports.sort_unstable();
    ports.dedup();
    for ip in &cfg.dns_service {
        for p in &ports {
            let s = SocketAddr::new(*ip, *p);
            if !services.contains(&s) {
                services.push(s);
            }
        }
    }
    let read = move || crate::conntrack::dump_udp_entries(None, &ports);
    match blocking("reading the conntrack table", read).await {
        Ok(Ok(entries)) => stale_entries(&entries, &services, &eps),
        _ => Vec::new(),
    }
}
