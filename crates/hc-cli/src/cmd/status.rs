//! `hc-cli status`: the controller's view, for a person (or `--json`).

use anyhow::anyhow;
use hc_exporter::ControllerStatus;
use hc_remedy::MAX_STATUS_BYTES;

use crate::cli::StatusArgs;
use crate::exit::{self, Context};
use crate::output::Out;

pub(crate) fn run(args: StatusArgs) -> exit::Result {
    let body = crate::runtime()?.block_on(fetch(&args))?;
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

async fn fetch(args: &StatusArgs) -> exit::Result<Vec<u8>> {
    if let Some(addr) = args.controller {
        let body = hc_remedy::http_get(addr, "/status", MAX_STATUS_BYTES)
            .await
            .runtime()?;
        return Ok(body.to_vec());
    }
    let source = hc_remedy::cluster_source(args.api.kubeconfig.as_deref(), |k| std::env::var(k).ok())
        .ok_or_else(|| anyhow!("no controller to read: give --kubeconfig PATH (or KUBECONFIG), or --controller http://IP:PORT"))
        .usage()?;
    let client = hc_remedy::connect(&source).await.usage()?;
    let (code, body) = hc_remedy::service_proxy_get(
        &client,
        &args.api.namespace,
        &args.controller_service,
        "/status",
        MAX_STATUS_BYTES,
    )
    .await
    .runtime()?;
    if code != 200 && code != 503 {
        let text = String::from_utf8_lossy(&body);
        return Err(exit::runtime(anyhow!(
            "the controller's Service {} in {} answered HTTP {code} through the API server's proxy: {}",
            args.controller_service,
            args.api.namespace,
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(body)
}
