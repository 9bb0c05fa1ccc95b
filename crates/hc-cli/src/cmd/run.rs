//! `hc-cli run`: the long-running agent (and `--once`): configuration, logs, the admin server,
//! signals and the loop around `crate::agent`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use dnsprobe::{JsonReport, ProbeReport, Thresholds};
use hc_exporter::{Admin, Metrics, Registry};
use hc_netns::{NsReport, SweepConfig};
use serde::Serialize;
use tracing::info;

use crate::agent::{Agent, AgentConfig};
use crate::cli::{LogFormat, RunArgs, Via};
use crate::cluster::Cluster;
use crate::exit::{self, Context};
use crate::output::Out;

pub(crate) fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(crate::output::colour(std::io::stderr().is_terminal()))
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

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
    // --once prints its report; logs are for the agent.
    if !args.once {
        init_logging(args.log_format);
    }
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

async fn start_cluster(args: &RunArgs) -> exit::Result<Option<Cluster>> {
    let source =
        hc_remedy::cluster_source(args.kube.kubeconfig.as_deref(), |k| std::env::var(k).ok());
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
    let c = Cluster::start(&args.kube, &source, args.once, args.failure_threshold).await?;
    Ok(Some(c))
}

async fn serve(args: &RunArgs, metrics: Metrics, cluster: Option<Cluster>) -> exit::Result {
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
    let mut ticks = tokio::time::interval(args.interval);
    // A round that overruns the interval delays the next one; rounds never stack.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let (sig, mid_round) = loop {
        tokio::select! {
            s = &mut shutdown => break (s, false),
            _ = ticks.tick() => {}
        }
        let started = Instant::now();
        tokio::select! {
            s = &mut shutdown => break (s, true),
            r = agent.round(false) => match r {
                Ok(_) => admin.publish(agent.status(started.elapsed())),
                Err(e) => tracing::warn!(error = %e, "round failed"),
            },
        }
    };
    admin.shutting_down();
    if mid_round {
        info!(
            signal = sig,
            "shutting down; the round in progress is abandoned"
        );
    } else {
        info!(signal = sig, "shutting down");
    }
    if let Some(c) = &agent.cluster {
        // Bounded: the process must be gone within 2 s of the signal.
        let _ = tokio::time::timeout(Duration::from_secs(1), c.shutdown()).await;
    }
    Ok(exit::HEALTHY)
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => std::future::pending().await,
    }
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

async fn once(args: &RunArgs, cluster: Option<Cluster>) -> exit::Result {
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
