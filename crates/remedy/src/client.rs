//! Connecting: in-cluster inside a pod, or a kubeconfig outside. Kubernetes mode is on only when
//! one of those is explicitly present.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::error::RemedyError;

/// Where the client configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSource {
    /// A kubeconfig file (`--kubeconfig`, or `KUBECONFIG`).
    Kubeconfig(PathBuf),
    /// The pod's service account (`KUBERNETES_SERVICE_HOST` is set).
    InCluster,
}

/// Decides whether to talk to Kubernetes: `--kubeconfig`, else `KUBECONFIG`, else in-cluster
/// when `KUBERNETES_SERVICE_HOST` is set; else `None` (no Kubernetes). `~/.kube/config` is never
/// read implicitly: a laptop's default context must not be acted on without being named.
pub fn cluster_source(
    kubeconfig: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<ClusterSource> {
    if let Some(p) = kubeconfig {
        return Some(ClusterSource::Kubeconfig(p.to_owned()));
    }
    if let Some(p) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
        // KUBECONFIG may list several files; the first one is used.
        let first = p.split(':').next().unwrap_or(&p).to_owned();
        return Some(ClusterSource::Kubeconfig(first.into()));
    }
    env("KUBERNETES_SERVICE_HOST")
        .filter(|v| !v.is_empty())
        .map(|_| ClusterSource::InCluster)
}

/// Builds a client for `source`.
pub async fn connect(source: &ClusterSource) -> Result<Client, RemedyError> {
    let (name, config) = match source {
        ClusterSource::InCluster => (
            "in-cluster".to_owned(),
            Config::incluster().map_err(|e| e.to_string()),
        ),
        ClusterSource::Kubeconfig(path) => {
            let name = path.display().to_string();
            let config = match Kubeconfig::read_from(path) {
                Ok(k) => Config::from_custom_kubeconfig(k, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (name, config)
        }
    };
    let mut config = config.map_err(|detail| RemedyError::Config {
        source_name: name.clone(),
        detail,
    })?;
    // No transparent retries of 429/503: a PodDisruptionBudget's 429 is an answer the planner
    // acts on ("retry later", next round), and a round must not block on backoff. Watches have
    // their own backoff.
    config.default_retry = false;
    // Building the client runs a kubeconfig's exec credential plugin, synchronously: off the
    // runtime's threads, and bounded, so that a plugin that hangs (a login prompt nobody sees)
    // cannot block start-up forever.
    let built = tokio::task::spawn_blocking(move || Client::try_from(config));
    match tokio::time::timeout(EXEC_TIMEOUT, built).await {
        Ok(Ok(client)) => client.map_err(|e| RemedyError::Config {
            source_name: name,
            detail: e.to_string(),
        }),
        Ok(Err(e)) => Err(RemedyError::Config {
            source_name: name,
            detail: format!("building the client failed: {e}"),
        }),
        Err(_) => Err(RemedyError::Config {
            source_name: name,
            detail: format!(
                "its credentials (an exec plugin?) gave no answer within {}s: run the plugin by hand to see what it waits for",
                EXEC_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// How long building the client may take: the time a kubeconfig's exec plugin has to answer.
pub const EXEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// `GET /api/v1/namespaces/NS/services/SERVICE/proxy/PATH` through the API server's service
/// proxy (`service` is `name:port`): how a person outside the cluster reads the controller.
/// Returns the HTTP status and the body (at most `limit` bytes). Needs `get` on
/// `services/proxy`.
pub async fn service_proxy_get(
    client: &Client,
    namespace: &str,
    service: &str,
    path: &str,
    limit: usize,
) -> Result<(u16, Vec<u8>), RemedyError> {
    use http_body_util::BodyExt;
    let what = format!("GET services/{service}/proxy{path} in {namespace}");
    let err = |detail: String| RemedyError::Config {
        source_name: what.clone(),
        detail,
    };
    let uri = format!("/api/v1/namespaces/{namespace}/services/{service}/proxy{path}");
    let req = kube::client::Body::empty();
    let req = http_request(&uri, req).map_err(|e| err(e.to_string()))?;
    let resp = client.send(req).await.map_err(|source| RemedyError::Api {
        what: what.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| err(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(err(format!("the answer is larger than {limit} bytes")));
            }
            out.extend_from_slice(data);
        }
    }
    Ok((status, out))
}

fn http_request(
    uri: &str,
    body: kube::client::Body,
) -> Result<http::Request<kube::client::Body>, http::Error> {
    http::Request::get(uri).body(body)
}

/// Writes the probing plan to the plan ConfigMap: a replace when it exists, a create otherwise.
pub(crate) async fn write_plan(
    client: &Client,
    namespace: &str,
    plan: &crate::ProbingPlan,
) -> Result<(), RemedyError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let err = |what: &str| {
        let what = format!("{what} configmap {namespace}/{}", crate::PLAN_CONFIGMAP);
        move |source| RemedyError::Api { what, source }
    };
    let mut cm = api
        .get_opt(crate::PLAN_CONFIGMAP)
        .await
        .map_err(err("get"))?
        .unwrap_or_default();
    let exists = cm.metadata.resource_version.is_some();
    cm.metadata.name = Some(crate::PLAN_CONFIGMAP.into());
    cm.data
        .get_or_insert_with(Default::default)
        .extend(plan.to_data());
    let pp = PostParams::default();
    if exists {
        api.replace(crate::PLAN_CONFIGMAP, &pp, &cm)
            .await
            .map_err(err("replace"))?;
    } else {
        api.create(&pp, &cm).await.map_err(err("create"))?;
    }
    Ok(())
}

/// Where to read the controller's `/status` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerAt {
    /// Directly (`http://IP:PORT`, e.g. after `kubectl port-forward`).
    Addr(std::net::SocketAddr),
    /// Through the API server's service proxy: the cluster, the namespace and `service:port`.
    Service(ClusterSource, String, String),
}

/// The controller's `/status` document, as it answered (200 when healthy, 503 when not).
pub async fn controller_status(at: &ControllerAt) -> Result<Vec<u8>, RemedyError> {
    let limit = crate::agents::MAX_STATUS_BYTES;
    let (source, ns, svc) = match at {
        ControllerAt::Addr(addr) => {
            let body = crate::agents::http_get(*addr, "/status", limit)
                .await
                .map_err(|e| RemedyError::Config {
                    source_name: format!("http://{addr}"),
                    detail: e.to_string(),
                })?;
            return Ok(body.to_vec());
        }
        ControllerAt::Service(source, ns, svc) => (source, ns, svc),
    };
    let client = connect(source).await?;
    let (code, body) = service_proxy_get(&client, ns, svc, "/status", limit).await?;
    if code != 200 && code != 503 {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(RemedyError::Config {
            source_name: format!("the Service {svc} in {ns} through the API server's proxy"),
            detail: format!("HTTP {code}: {text}"),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_sources_only() {
        let none = |_: &str| None;
        assert_eq!(cluster_source(None, none), None);
        assert_eq!(
            cluster_source(Some(Path::new("/k")), none),
            Some(ClusterSource::Kubeconfig("/k".into()))
        );
        let env = |k: &str| (k == "KUBECONFIG").then(|| "/a:/b".to_owned());
        assert_eq!(
            cluster_source(None, env),
            Some(ClusterSource::Kubeconfig("/a".into()))
        );
        let pod = |k: &str| (k == "KUBERNETES_SERVICE_HOST").then(|| "10.96.0.1".to_owned());
        assert_eq!(cluster_source(None, pod), Some(ClusterSource::InCluster));
    }
}
