//! What the tour shows of the admin endpoints while the outage is on: a few lines of `/metrics`
//! and of `/status`, read over HTTP from the running server as a scraper or the controller
//! reads them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::server::DemoError;

/// `GET path` as the controller reads an agent (`hc_remedy::http_get_any`, 1 MiB at most,
/// 5 s): the status code and the body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), DemoError> {
    let io = |source| DemoError::Io {
        what: "reading the admin server",
        source,
    };
    let read = hc_remedy::http_get_any(addr, path, 1 << 20);
    let (code, body) = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| io(std::io::ErrorKind::TimedOut.into()))?
        .map_err(|e| io(std::io::Error::other(e)))?;
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// The samples of `/metrics` that tell the outage: `target_up`, and the query and failure
/// counts that are not 0.
pub(crate) fn metrics(body: &str) -> Vec<String> {
    let moved = |l: &str| l.rsplit(' ').next().is_some_and(|v| v != "0");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with("coredns_healthcheck_target_up{")
                || (l.starts_with("coredns_healthcheck_dns_queries_total{")
                    || l.starts_with("coredns_healthcheck_failures_total{"))
                    && moved(l)
        })
        .map(str::to_owned)
        .collect()
}

/// `/status` in a few lines: whether it is healthy, then each target's state and last error.
pub(crate) fn status(body: &str) -> Result<Vec<String>, DemoError> {
    let s: hc_exporter::Status = serde_json::from_str(body).map_err(DemoError::other)?;
    let mut out = vec![format!(
        "\"healthy\": {}, \"round\": {}",
        s.healthy(),
        s.round
    )];
    for t in &s.targets {
        let state = serde_json::to_value(t.state).map_err(DemoError::other)?;
        let mut line = format!(
            "{} {}: {}, {} consecutive failures",
            t.target,
            t.transport,
            state.as_str().unwrap_or("?"),
            t.consecutive_failures
        );
        if let Some(e) = &t.last_error {
            line.push_str(&format!(", last error {}: {}", e.kind, e.message));
        }
        out.push(line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_excerpt_keeps_what_moved() {
        let body = "\
# TYPE coredns_healthcheck_target_up gauge
coredns_healthcheck_target_up{target=\"127.0.0.1:53\",transport=\"udp\"} 0
coredns_healthcheck_dns_queries_total{target=\"127.0.0.1:53\",transport=\"udp\",source=\"host\",result=\"timeout\"} 3
coredns_healthcheck_dns_queries_total{target=\"127.0.0.1:53\",transport=\"udp\",source=\"host\",result=\"refused\"} 0
coredns_healthcheck_failures_total{target=\"127.0.0.1:53\",transport=\"udp\",reason=\"timeout\"} 3
coredns_healthcheck_rounds_total 6
";
        let lines = metrics(body);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].ends_with("} 0"), "target_up shows even at 0");
        assert!(lines.iter().all(|l| !l.contains("refused")));
    }
}
