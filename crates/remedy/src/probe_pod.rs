//! Probing from inside the cluster when this machine cannot reach the pod network: a
//! short-lived pod runs `hc-cli probe --json` against the targets; we wait for it, read its
//! logs, and delete it — whatever happens.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The probe pod's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePodConfig {
    /// Namespace to create it in.
    pub namespace: String,
    /// Image with `hc-cli` as its entrypoint.
    pub image: String,
    /// How long to wait for it to finish.
    pub timeout: Duration,
}

/// Why a probe pod gave no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbePodError {
    /// Creating the pod was refused by RBAC.
    #[error(
        "creating a probe pod in {namespace} is forbidden: {message} (grant `create`, `get`, `delete` on pods and `get` on pods/log in that namespace, or use --via direct)"
    )]
    Forbidden {
        /// Namespace.
        namespace: String,
        /// The API server's words.
        message: String,
    },
    /// It did not finish in time (the message says its last phase and why).
    #[error("the probe pod {pod} did not finish within {timeout:?}: {state}")]
    Timeout {
        /// Pod name.
        pod: String,
        /// The timeout.
        timeout: Duration,
        /// Its last phase and container state.
        state: String,
    },
    /// It cannot start (image pull errors and the like).
    #[error("the probe pod {pod} cannot start: {reason}")]
    CannotStart {
        /// Pod name.
        pod: String,
        /// The container's waiting reason and message.
        reason: String,
    },
    /// Its output is not the JSON of `hc-cli probe --json`.
    #[error("the probe pod's output is not the JSON of `hc-cli probe --json`: {detail}")]
    Output {
        /// What was wrong, with the start of the output.
        detail: String,
    },
    /// An API request failed.
    #[error("probe pod API request failed ({what}): {source}")]
    Api {
        /// The request.
        what: &'static str,
        /// The cause.
        source: kube::Error,
    },
}

/// Runs one probe pod with `args` (the arguments after `hc-cli`), returns its logs (stdout),
/// and always deletes it.
pub async fn run_probe_pod(
    client: Client,
    cfg: &ProbePodConfig,
    args: &[String],
) -> Result<String, ProbePodError> {
    let api = Api::<Pod>::namespaced(client, &cfg.namespace);
    let deadline = cfg.timeout.as_secs().max(1);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "coredns-healthcheck-probe-",
            "labels": {"app.kubernetes.io/name": "coredns-healthcheck-probe", "app.kubernetes.io/part-of": "coredns-healthcheck"}},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "containers": [{
                "name": "probe", "image": cfg.image, "args": args,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))
    .map_err(|e| ProbePodError::Api { what: "build pod", source: kube::Error::SerdeError(e) })?;
    let created = match api.create(&PostParams::default(), &pod).await {
        Ok(p) => p,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Err(ProbePodError::Forbidden {
                namespace: cfg.namespace.clone(),
                message: s.message,
            });
        }
        Err(e) => {
            return Err(ProbePodError::Api {
                what: "create pod",
                source: e,
            });
        }
    };
    let name = created.metadata.name.clone().unwrap_or_default();
    let result = wait_and_read(&api, &name, cfg.timeout).await;
    // Nothing left behind, whatever happened.
    let _ = api
        .delete(
            &name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    result
}

async fn wait_and_read(
    api: &Api<Pod>,
    name: &str,
    timeout: Duration,
) -> Result<String, ProbePodError> {
    let started = Instant::now();
    let mut state = String::from("not seen yet");
    while started.elapsed() < timeout {
        let pod = api.get(name).await.map_err(|e| ProbePodError::Api {
            what: "get pod",
            source: e,
        })?;
        let status = pod.status.unwrap_or_default();
        let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
        let waiting = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| c.state?.waiting)
            .map(|w| {
                format!(
                    "{}: {}",
                    w.reason.unwrap_or_default(),
                    w.message.unwrap_or_default()
                )
            });
        state = format!(
            "phase {phase}{}",
            waiting
                .as_ref()
                .map(|w| format!(", {w}"))
                .unwrap_or_default()
        );
        if let Some(w) = &waiting
            && [
                "ErrImagePull",
                "ImagePullBackOff",
                "InvalidImageName",
                "CreateContainerConfigError",
            ]
            .iter()
            .any(|r| w.starts_with(r))
        {
            return Err(ProbePodError::CannotStart {
                pod: name.to_owned(),
                reason: w.clone(),
            });
        }
        if phase == "Succeeded" || phase == "Failed" {
            let params = LogParams {
                container: Some("probe".into()),
                ..LogParams::default()
            };
            return api
                .logs(name, &params)
                .await
                .map_err(|e| ProbePodError::Api {
                    what: "read logs",
                    source: e,
                });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(ProbePodError::Timeout {
        pod: name.to_owned(),
        timeout,
        state,
    })
}

/// A TCP tunnel to one port of a pod through the API server (`kubectl port-forward`), for DNS
/// over TCP where this machine cannot reach the pod network. UDP cannot travel through it.
pub struct PortForward {
    /// Keeps the forwarding tasks alive while the stream is used.
    _forwarder: kube::api::Portforwarder,
    /// The byte stream to the pod's port.
    pub stream: tokio::io::DuplexStream,
}

impl std::fmt::Debug for PortForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForward").finish_non_exhaustive()
    }
}

/// Opens a port-forward to `pod`:`port` in `namespace` (needs `create` on pods/portforward).
pub async fn port_forward(
    client: Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<PortForward, kube::Error> {
    let mut forwarder = Api::<Pod>::namespaced(client, namespace)
        .portforward(pod, &[port])
        .await?;
    let stream = forwarder
        .take_stream(port)
        .ok_or_else(|| kube::Error::Service(format!("no stream for port {port}").into()))?;
    Ok(PortForward {
        _forwarder: forwarder,
        stream,
    })
}

/// Probes `specs` from short-lived pods: one pod per group of specs with the same transports,
/// each running `hc-cli probe --json` (with `--ip`, which every version of the image knows), its
/// output read back as reports.
pub async fn probe_via_pod(
    client: Client,
    cfg: &ProbePodConfig,
    specs: &[dnsprobe::ProbeSpec],
) -> Result<Vec<dnsprobe::ProbeReport>, ProbePodError> {
    use dnsprobe::TransportMode;
    let mut out = Vec::new();
    let groups = [
        (TransportMode::Both, Some("--both")),
        (TransportMode::Udp, None),
        (TransportMode::Tcp, Some("--tcp")),
    ];
    for (mode, flag) in groups {
        let group: Vec<&dnsprobe::ProbeSpec> =
            specs.iter().filter(|s| s.transport == mode).collect();
        let Some(first) = group.first() else { continue };
        let mut args: Vec<String> = vec!["probe".into(), "--json".into()];
        args.extend(flag.map(String::from));
        args.extend(["--name".into(), first.name.to_ascii()]);
        args.extend([
            "--timeout".into(),
            format!("{}ms", first.timeout.as_millis().max(1)),
        ]);
        args.extend(["--attempts".into(), first.attempts.to_string()]);
        if let dnsprobe::AnswerExpectation::Contains(ips) = &first.expect.answer {
            ips.iter()
                .for_each(|ip| args.extend(["--expect".into(), ip.to_string()]));
        }
        group
            .iter()
            .for_each(|s| args.extend(["--ip".into(), s.target.to_string()]));
        let logs = run_probe_pod(client.clone(), cfg, &args).await?;
        let head = || logs.chars().take(200).collect::<String>();
        let parsed: Vec<dnsprobe::JsonReport> =
            serde_json::from_str(logs.trim()).map_err(|e| ProbePodError::Output {
                detail: format!("{e}: {}", head()),
            })?;
        for v in parsed {
            let spec = group
                .iter()
                .find(|s| s.target == v.target)
                .copied()
                .unwrap_or(first);
            let r = v.into_report(spec).map_err(|e| ProbePodError::Output {
                detail: e.to_string(),
            })?;
            out.push(r);
        }
    }
    Ok(out)
}

/// Probes each spec whose target is a CoreDNS pod's address over TCP through a port-forward to
/// that pod (the others directly), all at once. A tunnel that cannot be opened is reported as an
/// I/O failure of the tunnel, naming the pod.
pub async fn probe_via_port_forward(
    client: Client,
    namespace: &str,
    specs: &[dnsprobe::ProbeSpec],
    d: &crate::Discovered,
) -> Vec<dnsprobe::ProbeReport> {
    let jobs = specs.iter().map(|spec| {
        let client = client.clone();
        async move {
            let Some(pod) = d.endpoint(spec.target.ip()).and_then(|e| e.pod.clone()) else {
                return dnsprobe::probe(spec).await;
            };
            match port_forward(client, namespace, &pod, spec.target.port()).await {
                Ok(pf) => vec![dnsprobe::probe_over_stream(spec, pf.stream).await],
                Err(e) => vec![dnsprobe::ProbeReport::failed(
                    spec,
                    dnsprobe::Transport::Tcp,
                    dnsprobe::Failure::Io {
                        detail: format!("port-forward to pod {pod}: {e}"),
                    },
                )],
            }
        }
    });
    futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}
