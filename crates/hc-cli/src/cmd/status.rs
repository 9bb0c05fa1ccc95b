//! `hc-cli status`: the controller's view, for a person (or `--json`).

use anyhow::anyhow;
use hc_exporter::ControllerStatus;
use hc_remedy::ControllerAt;

use crate::cli::StatusArgs;
use crate::exit::{self, Context};
use crate::output::Out;

pub(crate) fn run(args: StatusArgs) -> exit::Result {
    let at = match args.controller {
        Some(addr) => ControllerAt::Addr(addr),
        None => {
            let source = hc_remedy::cluster_source(args.api.kubeconfig.as_deref(), |k| {
                std::env::var(k).ok()
            });
            let source = source.ok_or_else(|| anyhow!("no controller to read: give --kubeconfig PATH (or KUBECONFIG), or --controller http://IP:PORT")).usage()?;
            ControllerAt::Service(source, args.api.namespace, args.controller_service)
        }
    };
    let body = crate::block_on(hc_remedy::controller_status(&at))?.runtime()?;
    let status: ControllerStatus = serde_json::from_slice(&body)
        .map_err(|e| anyhow!("the answer is not the controller's /status: {e}"))
        .runtime()?;
    let mut out = Out::new();
    if args.json {
        out.line(String::from_utf8_lossy(&body).trim_end())?;
    } else {
        out.line(&status)?;
    }
    Ok(exit::status(status.healthy()))
}
