//! `hc-cli controller`: the configuration, the admin server and the loop around
//! `hc_remedy::Controller`.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use hc_exporter::{Admin, ControllerMetrics, Registry};
use hc_remedy::Controller;
use tracing::info;

use crate::cli::ControllerCmd;
use crate::exit::{self, Context};

pub(crate) fn run(args: ControllerCmd) -> exit::Result {
    crate::service::init_logging(args.log_format, false);
    crate::block_on(serve(args))?
}

async fn serve(args: ControllerCmd) -> exit::Result {
    let source = hc_remedy::cluster_source(args.controller.api.kubeconfig.as_deref(), |k| std::env::var(k).ok())
        .ok_or_else(|| anyhow!("the controller needs a cluster: give --kubeconfig PATH (or KUBECONFIG), or run it inside a pod"))
        .usage()?;
    let client = hc_remedy::connect(&source).await.usage()?;
    let mut registry = Registry::default();
    let metrics = ControllerMetrics::default().register(&mut registry, env!("CARGO_PKG_VERSION"));
    let admin = Admin::new(registry);
    let server = admin.bind(args.metrics_addr).await.runtime()?;
    tokio::spawn(server.run());
    let cfg = args.controller.config();
    info!(identity = %cfg.identity, remediation = cfg.mode.as_str(), agents = %cfg.agent_selector, sample = cfg.sample, quorum = cfg.quorum, "controller started");
    let mut ctl = Controller::start(client, cfg, Duration::from_secs(10)).await;
    let ended = crate::service::every(
        args.controller.interval,
        std::time::Duration::ZERO,
        async || {
            let started = Instant::now();
            let status = ctl.round(Some(&metrics)).await;
            metrics.round_done(started.elapsed());
            admin.publish_document(status.healthy(), &status);
        },
    )
    .await;
    admin.shutting_down();
    crate::service::log_shutdown(ended);
    // Bounded: the process must be gone within 2 s of the signal.
    let _ = tokio::time::timeout(Duration::from_secs(1), ctl.shutdown()).await;
    Ok(exit::HEALTHY)
}
