//! `hc-cli run`: the long-running agent (and `--once`): configuration, logs, the admin server,
//! signals and the loop around `crate::agent`.

use std::time::Instant;

use anyhow::anyhow;
use dnsprobe::{JsonReport, Thresholds};
use hc_exporter::{Admin, Metrics, Registry};
use hc_netns::SweepConfig;
use tracing::info;

use crate::cli::RunArgs;
use crate::exit::{self, Context};
use crate::output::Out;
use hc_agent::{Agent, AgentConfig, AgentError};
use hc_remedy::{AgentCluster, Via};

fn agent_config(args: &RunArgs) -> AgentConfig {
    let targets = args.query.addrs();
    let name = args.query.name_or_default();
    let probe = crate::cli::probe_template(name, &args.query.expect, args.timeout, args.attempts);
    let sweep = args.sweep_netns.then(|| {
        let mut s = SweepConfig::new(targets.clone());
        s.probe = probe.clone();
        s.dns_service = args.select.dns_service.clone();
        s.netns_glob = args.select.netns_glob.clone();
        s.proc_root = args.select.proc.proc_root.clone();
        s.attempts = args.attempts;
        s.own_nameservers = true;
        s
    });
    let mut c = AgentConfig::new(targets, probe);
    c.name_given = args.query.name.is_some();
    c.thresholds = Thresholds::new(args.failure_threshold, args.success_threshold);
    c.sweep = sweep;
    c.budget = args.budget.budget();
    c.budget.api_dns_every = args.kube.api_dns_every;
    c
}

pub(crate) fn run(args: RunArgs) -> exit::Result {
    // --once prints its report, and only the warnings of the log.
    crate::service::init_logging(args.log_format, args.once);
    let buckets = if args.latency_buckets.is_empty() {
        hc_exporter::DEFAULT_LATENCY_BUCKETS.to_vec()
    } else {
        args.latency_buckets.clone()
    };
    let metrics = Metrics::new(&buckets)
        .map_err(|e| anyhow!("--latency-buckets: {e}"))
        .usage()?;
    crate::block_on(async move {
        let cluster = start_cluster(&args).await?;
        if args.once {
            return once(&args, cluster).await;
        }
        serve(&args, metrics, cluster).await
    })?
}

async fn start_cluster(args: &RunArgs) -> exit::Result<Option<AgentCluster>> {
    let source = hc_remedy::cluster_source(args.kube.api.kubeconfig.as_deref(), |k| {
        std::env::var(k).ok()
    });
    let Some(source) = source else {
        if args.query.targets.is_empty() {
            return Err(exit::usage(anyhow!(
                "no target: give --target IP[:PORT] (repeatable), or --kubeconfig PATH (or KUBECONFIG, or run inside a pod) to discover CoreDNS"
            )));
        }
        if args.kube.via != Via::Direct {
            let via = args.kube.via.as_str();
            return Err(exit::usage(anyhow!(
                "--via {via} needs a cluster: give --kubeconfig PATH (or KUBECONFIG)"
            )));
        }
        return Ok(None);
    };
    for warning in args.kube.ignored(|v| std::env::var_os(v).is_some()) {
        tracing::warn!("{warning}");
    }
    let cfg = args.kube.config(|k| std::env::var(k).ok());
    let client = hc_remedy::connect(&source).await.usage()?;
    Ok(Some(AgentCluster::start(client, cfg).await.usage()?))
}

async fn serve(args: &RunArgs, metrics: Metrics, cluster: Option<AgentCluster>) -> exit::Result {
    let mut registry = Registry::default();
    let metrics = metrics.register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    // Before the first round, /status has the shape of every later document.
    admin.publish_initial(&hc_exporter::Status {
        nothing_checked: Some("no round completed yet".into()),
        ..Default::default()
    });
    let server = admin.bind(args.metrics_addr).await.runtime()?;
    let listening = server
        .local_addr()
        .map_or_else(|_| args.metrics_addr.to_string(), |a| a.to_string());
    tokio::spawn(server.run());
    // In a cluster, the first round waits a random part of the interval: a DaemonSet rollout
    // does not make every node probe in step.
    let start = match &cluster {
        Some(_) => hc_agent::schedule::jitter(args.budget.interval),
        None => std::time::Duration::ZERO,
    };
    if let Some(c) = &cluster {
        let found = c.snapshot().describe(args.kube.dns_port());
        info!(targets = %found, "discovered");
    }
    let mut agent = Agent::new(agent_config(args), Some(metrics), cluster);
    info!(
        targets = %agent.targets().join(","),
        interval = %humantime::format_duration(args.budget.interval),
        query_budget = args.budget.query_budget,
        first_round_in = %humantime::format_duration(start),
        sweep_netns = args.sweep_netns,
        metrics_addr = %listening,
        "agent started"
    );
    let ended = crate::service::every(args.budget.interval, start, async || {
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

async fn once(args: &RunArgs, cluster: Option<AgentCluster>) -> exit::Result {
    let mut agent = Agent::new(agent_config(args), None, cluster);
    let report = agent.round(true).await.map_err(|e| match e {
        // RBAC is configuration (2); a probe pod that cannot start is a run-time failure (3).
        AgentError::ProbePod(hc_remedy::ProbePodError::Forbidden { .. }) => exit::usage(e),
        e => exit::runtime(e),
    })?;
    if let Some(why) = agent.nothing_checked() {
        return Err(exit::runtime(anyhow!("nothing was checked: {why}")));
    }
    let healthy = report.healthy();
    let via = args.kube.via;
    let note = via.caveat();
    let mut out = Out::new();
    if args.json {
        out.json(&hc_exporter::OnceReport {
            healthy,
            via: via.as_str(),
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
