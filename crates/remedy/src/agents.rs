//! Reading the agents: which agent pods to read this round (a rotating sample, so the cost per
//! round stays the same whatever the number of nodes), and reading one agent's `/status` over
//! HTTP with a deadline and a size limit (an agent is a process on a node; it may be slow,
//! gone, or compromised).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;

use hc_exporter::Status;

/// One agent: its pod, its node and where its admin server listens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentRef {
    /// The node it runs on (the key of its reports).
    pub node: String,
    /// The agent pod's name.
    pub pod: String,
    /// Its admin server.
    pub addr: SocketAddr,
}

/// The agents among `pods`: running, with an address (the node's: agents use the host network)
/// and a node; sorted by node.
pub fn agents_of(pods: &[std::sync::Arc<Pod>], port: u16) -> Vec<AgentRef> {
    let mut out: Vec<AgentRef> = pods
        .iter()
        .filter_map(|p| {
            let status = p.status.as_ref()?;
            if status.phase.as_deref() != Some("Running") || p.metadata.deletion_timestamp.is_some()
            {
                return None;
            }
            let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
            Some(AgentRef {
                node: p.spec.as_ref()?.node_name.clone()?,
                pod: p.metadata.name.clone()?,
                addr: SocketAddr::new(ip, port),
            })
        })
        .collect();
    out.sort();
    out
}

/// Picks `n` agents per round, rotating, so every agent is read once every
/// ceil(agents / n) rounds.
#[derive(Debug, Clone, Default)]
pub struct Sampler {
    cursor: usize,
}

impl Sampler {
    /// This round's sample of `agents` (all of them when they are no more than `n`).
    pub fn pick(&mut self, agents: &[AgentRef], n: usize) -> Vec<AgentRef> {
        if agents.len() <= n {
            return agents.to_vec();
        }
        let start = self.cursor % agents.len();
        self.cursor = self.cursor.wrapping_add(n);
        agents.iter().cycle().skip(start).take(n).cloned().collect()
    }
}

/// Why an agent could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or the HTTP exchange failed.
    #[error("{0}")]
    Http(String),
    /// The body was larger than allowed.
    #[error("the status is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a status document.
    #[error("not an agent's /status: {0}")]
    Json(#[from] serde_json::Error),
}

/// The largest `/status` read: a node with 250 pod namespaces, each with findings, stays far
/// below it.
pub const MAX_STATUS_BYTES: usize = 4 << 20;

/// Reads `http://addr/status` (200 or 503: both carry the document), within `timeout`.
pub async fn read_status(addr: SocketAddr, timeout: Duration) -> Result<Status, ReadError> {
    let body = tokio::time::timeout(timeout, http_get(addr, "/status", MAX_STATUS_BYTES))
        .await
        .map_err(|_| ReadError::Timeout(timeout))??;
    Ok(serde_json::from_slice(&body)?)
}

/// One HTTP/1.1 GET of `path` at `addr`, the body at most `limit` bytes.
pub async fn http_get(addr: SocketAddr, path: &str, limit: usize) -> Result<Bytes, ReadError> {
    let http = |e: &dyn std::fmt::Display| ReadError::Http(format!("{addr}: {e}"));
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| http(&e))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(&e))?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| http(&e))?;
    let resp = send.send_request(req).await.map_err(|e| http(&e))?;
    let status = resp.status().as_u16();
    if status != 200 && status != 503 {
        conn.abort();
        return Err(ReadError::Http(format!("{addr}: HTTP {status}")));
    }
    let mut body = resp.into_body().into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| http(&e))?;
        if out.len() + chunk.len() > limit {
            conn.abort();
            return Err(ReadError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    conn.abort();
    Ok(Bytes::from(out))
}

/// Reads every agent in `sample`, `concurrency` at a time, each within `timeout`.
pub async fn read_all(
    sample: Vec<AgentRef>,
    concurrency: usize,
    timeout: Duration,
) -> Vec<(AgentRef, Result<Status, ReadError>)> {
    futures_util::stream::iter(sample)
        .map(|a| async move {
            let r = read_status(a.addr, timeout).await;
            (a, r)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(i: usize) -> AgentRef {
        AgentRef {
            node: format!("node-{i:02}"),
            pod: format!("agent-{i}"),
            addr: SocketAddr::from(([10, 0, 0, i as u8], 9890)),
        }
    }

    #[test]
    fn the_sample_rotates_over_every_agent() {
        let agents: Vec<AgentRef> = (0..5).map(agent).collect();
        let mut s = Sampler::default();
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..5 {
            for a in s.pick(&agents, 2) {
                *seen.entry(a.node).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 5, "every agent read");
        assert!(seen.values().all(|n| *n == 2), "{seen:?}");
        assert_eq!(s.pick(&agents, 16).len(), 5, "all when fewer");
    }
}
