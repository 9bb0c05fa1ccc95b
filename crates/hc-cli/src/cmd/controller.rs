//! `hc-cli controller`: the configuration, the admin server and the loop around
//! `hc_remedy::Controller`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use hc_exporter::{Admin, ControllerMetrics, Registry};
use hc_remedy::{Controller, ControllerConfig, Policy};
use tracing::info;

use crate::cli::ControllerArgs;
use crate::exit::{self, Context};

fn config(args: &ControllerArgs) -> ControllerConfig {
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(ControllerConfig::default_identity);
    let mut c = ControllerConfig::new(&identity);
    c.namespace = args.api.namespace.clone();
    c.selector = args.selector.clone();
    c.agent_namespace = args
        .agent_namespace
        .clone()
        .unwrap_or_else(|| args.api.namespace.clone());
    c.agent_selector = args.agent_selector.clone();
    c.agent_port = args.agent_port;
    c.sample = args.sample as usize;
    c.quorum = args.quorum;
    c.window = args.window;
    c.confirm_rounds = args.confirm_rounds;
    c.mode = args.remediation.into();
    c.lease_name = args.lease_name.clone();
    c.delete_pods = args.delete_pods;
    let mut p = Policy::default();
    p.memory_factor = args.memory_factor;
    p.memory_cap = args.max_memory;
    p.rollout_restart = args.rollout_restart;
    p.grace_period = args.grace_period;
    p.cooldown = args.cooldown;
    p.max_actions_per_hour = args.max_actions_per_hour as usize;
    c.policy = p;
    // A read must end well within a round.
    c.read_timeout = (args.interval / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
    c
}

pub(crate) fn run(args: ControllerArgs) -> exit::Result {
    crate::service::init_logging(args.log_format, false);
    crate::block_on(serve(args))?
}

async fn serve(args: ControllerArgs) -> exit::Result {
    let source = hc_remedy::cluster_source(args.api.kubeconfig.as_deref(), |k| std::env::var(k).ok())
        .ok_or_else(|| anyhow!("the controller needs a cluster: give --kubeconfig PATH (or KUBECONFIG), or run it inside a pod"))
        .usage()?;
    let client = hc_remedy::connect(&source).await.usage()?;
    let mut registry = Registry::default();
    let metrics = ControllerMetrics::default().register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    let server = admin.bind(args.metrics_addr).await.runtime()?;
    tokio::spawn(server.run());
    let cfg = config(&args);
    info!(identity = %cfg.identity, remediation = cfg.mode.as_str(), agents = %cfg.agent_selector, sample = cfg.sample, quorum = cfg.quorum, "controller started");
    let mut ctl = Controller::start(client, cfg, Duration::from_secs(10)).await;
    let ended = crate::service::every(args.interval, std::time::Duration::ZERO, async || {
        let started = Instant::now();
        let status = ctl.round(Some(&metrics)).await;
        metrics.round_done(started.elapsed());
        admin.publish_document(status.healthy(), &status);
    })
    .await;
    admin.shutting_down();
    crate::service::log_shutdown(ended);
    // Bounded: the process must be gone within 2 s of the signal.
    let _ = tokio::time::timeout(Duration::from_secs(1), ctl.shutdown()).await;
    Ok(exit::HEALTHY)
}
