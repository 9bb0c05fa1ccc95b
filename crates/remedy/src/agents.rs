//! Reading the agents: which agent pods to read this round (a rotating sample, so the cost per
//! round stays the same whatever the number of nodes), and reading one agent's `/status` over
//! HTTP with a deadline and a size limit (an agent is a process on a node; it may be slow,
//! gone, or compromised).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;

use hc_exporter::Status;

use crate::probing::{self, Observers, ProbingPlan};
use crate::view::View;

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

/// Picks the agents to read in a round, `n` at most. First the agents that, by the probing plan,
/// probed in the last whole epoch a CoreDNS pod the view has fewer than `need` reports on since
/// that epoch began: they hold the news on that pod (at most three quarters of `n`). Then a
/// rotation over every agent, for the Service and node verdicts; every agent is read at least
/// once every ceil(agents / (n / 4)) rounds.
#[derive(Debug, Clone, Default)]
pub struct Sampler {
    cursor: usize,
    observers: Observers,
    /// Node -> when its agent was last read.
    read: BTreeMap<String, SystemTime>,
}

/// What the targeted part of a sample needs: the plan the agents follow, the CoreDNS pods
/// (UIDs), the view, and how many reports per pod are wanted.
#[derive(Debug, Clone, Copy)]
pub struct Coverage<'a> {
    /// The plan published to the agents.
    pub plan: &'a ProbingPlan,
    /// The pods they sample from.
    pub pods: &'a [&'a str],
    /// What the controller already knows.
    pub view: &'a View,
    /// Reports wanted per pod (the quorum's minimum of nodes).
    pub need: usize,
}

impl Sampler {
    /// This round's sample of `agents` (all of them when they are no more than `n`).
    pub fn pick(
        &mut self,
        agents: &[AgentRef],
        n: usize,
        coverage: Option<Coverage<'_>>,
        now: SystemTime,
    ) -> Vec<AgentRef> {
        let mut picked: Vec<usize> = if agents.len() <= n {
            (0..agents.len()).collect()
        } else {
            let targeted =
                coverage.map_or_else(Vec::new, |c| self.targeted(agents, n - n / 4, &c, now));
            self.rotate(agents, n, targeted)
        };
        picked.sort_unstable();
        self.read
            .retain(|node, _| agents.iter().any(|a| &a.node == node));
        (picked.into_iter().map(|i| agents[i].clone()))
            .inspect(|a| {
                self.read.insert(a.node.clone(), now);
            })
            .collect()
    }

    /// Up to `max` agents that observed, in the last whole epoch, a pod short of reports.
    fn targeted(
        &mut self,
        agents: &[AgentRef],
        max: usize,
        c: &Coverage<'_>,
        now: SystemTime,
    ) -> Vec<usize> {
        let current = probing::epoch_of(now, c.plan.epoch);
        let Some(last) = current.checked_sub(1) else {
            return Vec::new();
        };
        let (began, ended) = (
            probing::epoch_start(last, c.plan.epoch),
            probing::epoch_start(current, c.plan.epoch),
        );
        let nodes: Vec<&str> = agents.iter().map(|a| a.node.as_str()).collect();
        let by_pod = self
            .observers
            .of(&nodes, c.pods, c.plan.pods_per_epoch, last);
        // The pods with the fewest reports first.
        let mut short: Vec<(usize, &str)> = (c.pods.iter())
            .map(|p| (c.view.reporters_since(p, began), *p))
            .filter(|(have, _)| *have < c.need)
            .collect();
        short.sort_unstable();
        let mut out = Vec::new();
        for (have, pod) in short {
            let fresh = |i: &&usize| {
                !out.contains(*i)
                    && self
                        .read
                        .get(&agents[**i].node)
                        .is_none_or(|at| *at < ended)
            };
            let more: Vec<usize> = (by_pod.get(pod).into_iter().flatten())
                .filter(fresh)
                .take(c.need - have)
                .copied()
                .collect();
            out.extend(more);
            if out.len() >= max {
                out.truncate(max);
                break;
            }
        }
        out
    }

    /// `picked`, filled up to `n` by the rotation.
    fn rotate(&mut self, agents: &[AgentRef], n: usize, mut picked: Vec<usize>) -> Vec<usize> {
        let start = self.cursor % agents.len();
        let mut taken = 0;
        for i in (start..agents.len()).chain(0..start) {
            if picked.len() >= n {
                break;
            }
            taken += 1;
            if !picked.contains(&i) {
                picked.push(i);
            }
        }
        self.cursor = self.cursor.wrapping_add(taken);
        picked
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

/// One HTTP/1.1 GET of `path` at `addr`, the body at most `limit` bytes; 200 and 503 only
/// (an agent's `/status` answers either).
pub async fn http_get(addr: SocketAddr, path: &str, limit: usize) -> Result<Bytes, ReadError> {
    match http_get_any(addr, path, limit).await? {
        (200 | 503, body) => Ok(body),
        (status, _) => Err(ReadError::Http(format!("{addr}: HTTP {status}"))),
    }
}

/// One HTTP/1.1 GET of `path` at `addr`: the status and the body, at most `limit` bytes (the
/// body of a status other than 200 or 503 is not read).
pub async fn http_get_any(
    addr: SocketAddr,
    path: &str,
    limit: usize,
) -> Result<(u16, Bytes), ReadError> {
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
        return Ok((status, Bytes::new()));
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
    Ok((status, Bytes::from(out)))
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
            for a in s.pick(&agents, 2, None, SystemTime::now()) {
                *seen.entry(a.node).or_insert(0) += 1;
            }
        }
        assert_eq!(seen.len(), 5, "every agent read");
        assert!(seen.values().all(|n| *n == 2), "{seen:?}");
        assert_eq!(
            s.pick(&agents, 16, None, SystemTime::now()).len(),
            5,
            "all when fewer"
        );
    }

    #[test]
    fn pods_short_of_reports_send_the_sample_to_their_observers() {
        use crate::view::tests::{now, report};
        let agents: Vec<AgentRef> = (0..100).map(agent).collect();
        let nodes: Vec<&str> = agents.iter().map(|a| a.node.as_str()).collect();
        let pods = ["uid-a", "uid-b", "uid-c", "uid-d"];
        let plan = ProbingPlan::new(100, pods.len(), Duration::from_secs(60));
        assert_eq!(plan.pods_per_epoch, 1);
        let last = probing::epoch_of(now(), plan.epoch) - 1;
        let mut obs = Observers::default();
        let by_pod = obs.of(&nodes, &pods, 1, last).clone();
        // The view knows pods b, c and d from three nodes each since the last epoch began; a
        // from none.
        let mut view = View::new(Duration::from_secs(120));
        for (i, p) in ["uid-b", "uid-c", "uid-d"].iter().enumerate() {
            for n in 0..3 {
                let node = format!("known-{i}-{n}");
                view.observe(&report(&node, now(), &[(p, true, true)]), &node, now());
            }
        }
        let mut s = Sampler::default();
        let cov = Coverage {
            plan: &plan,
            pods: &pods,
            view: &view,
            need: 3,
        };
        let picked = s.pick(&agents, 8, Some(cov), now());
        assert_eq!(picked.len(), 8);
        let observers_of_a: Vec<&str> = by_pod["uid-a"].iter().map(|i| nodes[*i]).collect();
        let targeted = (picked.iter())
            .filter(|a| observers_of_a.contains(&a.node.as_str()))
            .count();
        assert!(targeted >= 3, "three of a's observers read: {picked:?}");
        // Read once after the epoch they observed in: other observers next time.
        let again = s.targeted(&agents, 6, &cov, now() + Duration::from_secs(1));
        assert_eq!(again.len(), 3, "{again:?}");
        for i in again {
            assert!(observers_of_a.contains(&nodes[i]));
            assert!(!picked.contains(&agents[i]), "{} read twice", nodes[i]);
        }
    }
}
