//! `hc-cli run`: the long-running agent (and `--once`): configuration, logs, the admin server,
//! signals and the loop around `crate::agent`.

use std::time::Instant;

use anyhow::anyhow;
use dnsprobe::{JsonReport, ProbeReport, Thresholds};
use hc_exporter::{Admin, Metrics, Registry};
use hc_netns::{NsReport, SweepConfig};
use serde::Serialize;
use tracing::info;

use crate::agent::{Agent, AgentConfig};
use crate::cli::{RunArgs, Via};
use crate::exit::{self, Context};
use crate::kube::Kube;
use crate::output::Out;

fn agent_config(args: &RunArgs) -> AgentConfig {
    let targets: Vec<_> = args
        .targets
        .iter()
        .map(|t| t.with_default_port(dnsprobe::DEFAULT_PORT))
        .collect();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| dnsprobe::ProbeSpec::new(([0, 0, 0, 0], 53).into()).name);
    let probe = crate::cli::probe_template(name, &args.expect, args.timeout, args.attempts);
    let sweep = args.sweep_netns.then(|| {
        let mut s = SweepConfig::new(targets.clone());
        s.probe = probe.clone();
        s.dns_service = args.dns_service.clone();
        s.netns_glob = args.netns_glob.clone();
        s.proc_root = args.proc.proc_root.clone();
        s.attempts = args.attempts;
        s
    });
    AgentConfig {
        targets,
        probe,
        name_given: args.name.is_some(),
        thresholds: Thresholds {
            failure: args
                .failure_threshold
                .try_into()
                .unwrap_or(std::num::NonZeroU32::MIN),
            success: args
                .success_threshold
                .try_into()
                .unwrap_or(std::num::NonZeroU32::MIN),
        },
        sweep,
        per_round: args.netns_per_round as usize,
    }
}

pub(crate) fn run(args: RunArgs) -> exit::Result {
    // --once prints its report, and only the warnings of the log.
    let level = if args.once {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    crate::service::init_logging(args.log_format, level);
    let buckets = if args.latency_buckets.is_empty() {
        hc_exporter::DEFAULT_LATENCY_BUCKETS.to_vec()
    } else {
        args.latency_buckets.clone()
    };
    let metrics = Metrics::new(&buckets)
        .map_err(|e| anyhow!("--latency-buckets: {e}"))
        .usage()?;
    crate::runtime()?.block_on(async move {
        let cluster = start_cluster(&args).await?;
        if args.once {
            return once(&args, cluster).await;
        }
        serve(&args, metrics, cluster).await
    })
}

async fn start_cluster(args: &RunArgs) -> exit::Result<Option<Kube>> {
    let source = hc_remedy::cluster_source(args.kube.api.kubeconfig.as_deref(), |k| {
        std::env::var(k).ok()
    });
    let Some(source) = source else {
        if args.targets.is_empty() {
            return Err(exit::usage(anyhow!(
                "no target: give --target IP[:PORT] (repeatable), or --kubeconfig PATH (or KUBECONFIG, or run inside a pod) to discover CoreDNS"
            )));
        }
        if args.kube.via != Via::Direct {
            return Err(exit::usage(anyhow!(
                "--via {} needs a cluster: give --kubeconfig PATH (or KUBECONFIG)",
                if args.kube.via == Via::ProbePod {
                    "probe-pod"
                } else {
                    "port-forward"
                }
            )));
        }
        return Ok(None);
    };
    Ok(Some(Kube::start(&args.kube, &source).await?))
}

async fn serve(args: &RunArgs, metrics: Metrics, cluster: Option<Kube>) -> exit::Result {
    let mut registry = Registry::default();
    let metrics = metrics.register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    let server = admin.bind(args.metrics_addr).await.runtime()?;
    let listening = server
        .local_addr()
        .map_or_else(|_| args.metrics_addr.to_string(), |a| a.to_string());
    tokio::spawn(server.run());
    let mut agent = Agent::new(agent_config(args), Some(metrics), cluster);
    info!(
        targets = %agent.targets().join(","),
        interval = %humantime::format_duration(args.interval),
        sweep_netns = args.sweep_netns,
        metrics_addr = %listening,
        "agent started"
    );
    let ended = crate::service::every(args.interval, async || {
        let started = Instant::now();
        match agent.round(false).await {
            Ok(_) => admin.publish(agent.status(started.elapsed())),
            Err(e) => tracing::warn!(error = %e, "round failed"),
        }
    })
    .await;
    admin.shutting_down();
    crate::service::log_shutdown(ended);
    Ok(exit::HEALTHY)
}

/// The `--once --json` document. Field names are a contract.
#[derive(Serialize)]
struct OnceJson<'a> {
    healthy: bool,
    /// How the targets were reached: `direct`, `probe-pod`, `port-forward`.
    via: &'static str,
    /// A caveat on the results, e.g. that UDP was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    targets: Vec<JsonReport>,
    namespaces: &'a [NsReport],
}

async fn once(args: &RunArgs, cluster: Option<Kube>) -> exit::Result {
    let mut agent = Agent::new(agent_config(args), None, cluster);
    let report = agent.round(true).await?;
    let healthy = report.host.iter().all(ProbeReport::healthy)
        && report.namespaces.iter().all(NsReport::healthy);
    let (via, note) = match args.kube.via {
        Via::Direct => ("direct", None),
        Via::ProbePod => ("probe-pod", None),
        Via::PortForward => (
            "port-forward",
            Some(
                "through a port-forward only TCP can be checked: UDP, what pods use, was not probed",
            ),
        ),
    };
    let mut out = Out::new();
    if args.json {
        out.json(&OnceJson {
            healthy,
            via,
            note,
            targets: report.host.iter().map(JsonReport::from).collect(),
            namespaces: &report.namespaces,
        })?;
    } else {
        for r in &report.host {
            out.status(r.healthy(), r)?;
        }
        for n in &report.namespaces {
            out.status(n.healthy(), n)?;
        }
        if let Some(n) = note {
            out.line(format_args!("note: {n}"))?;
        }
    }
    Ok(exit::status(healthy))
}
