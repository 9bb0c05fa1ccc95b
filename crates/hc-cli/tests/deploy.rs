//! The deployment manifests: every kustomization renders (`kubectl kustomize`), every rendered
//! object validates against the Kubernetes 1.33 schema (`kubernetes-validate`, pinned in
//! .ci/run), the security invariants hold (parsed with k8s-openapi types), and the alerts and
//! the dashboard use only metrics the agent really serves (scraped from a running agent).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::Agent;
use hc_testkit::{Attributes, Rbac};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

const KUSTOMIZATIONS: &[&str] = &[
    "deploy/base",
    "deploy/overlays/remediate",
    "deploy/overlays/prometheus-operator",
    "deploy/overlays/node-condition",
];

fn root() -> PathBuf {
    common::root()
}

fn render(dir: &str) -> (String, Vec<Value>) {
    common::render(dir)
}

fn validate(yaml: &str) -> std::process::Output {
    let file = std::env::temp_dir().join(format!("{}.yaml", hc_testkit::unique_name("hcdeploy")));
    std::fs::write(&file, yaml).unwrap();
    // As a module: no dependence on where pip put the script (pyenv shims need a rehash).
    let out = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", "1.33.0", &file.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubernetes-validate ({e}): pip install kubernetes-validate==1.33.1 (.ci/run does)"));
    let _ = std::fs::remove_file(file);
    out
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn every_kustomization_renders_and_validates() {
    for dir in KUSTOMIZATIONS {
        let (yaml, docs) = render(dir);
        assert!(docs.len() >= 7, "{dir}: {} objects", docs.len());
        let out = validate(&yaml);
        assert!(
            out.status.success(),
            "{dir} fails validation:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The validator can say no: a misspelt field fails strict validation.
    let (yaml, _) = render("deploy/base");
    let broken = yaml.replacen(
        "hostNetwork: true",
        "hostNetwork: true\n      hostNetwrok: true",
        1,
    );
    assert!(
        !validate(&broken).status.success(),
        "the validator rejects an unknown field"
    );
}

#[test]
fn the_daemonset_has_least_privilege() {
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        let ds: DaemonSet = serde_json::from_value(of_kind(&docs, "DaemonSet")[0].clone()).unwrap();
        let pod = ds.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert!(pod.host_pid.is_none_or(|p| !p), "no hostPID");
        assert!(
            pod.tolerations
                .unwrap_or_default()
                .iter()
                .any(|t| t.key.as_deref() == Some("node-role.kubernetes.io/control-plane"))
        );
        let volumes = pod.volumes.unwrap_or_default();
        let host_paths: BTreeSet<String> = volumes
            .iter()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
            .collect();
        assert_eq!(
            host_paths,
            BTreeSet::from(["/proc".to_owned(), "/run/netns".to_owned()]),
            "{dir}: only /proc and /run/netns from the host"
        );
        for c in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let sc = c.security_context.clone().unwrap();
            assert_ne!(sc.privileged, Some(true), "{dir}: {} privileged", c.name);
            assert_eq!(
                sc.read_only_root_filesystem,
                Some(true),
                "{dir}: {} read-only root",
                c.name
            );
            let caps = sc.capabilities.unwrap();
            assert_eq!(caps.drop.unwrap_or_default(), vec!["ALL"]);
            let mut add = caps.add.unwrap_or_default();
            add.sort();
            assert_eq!(
                add,
                vec!["SYS_ADMIN", "SYS_PTRACE"],
                "{dir}: exactly the two capabilities"
            );
            for m in c.volume_mounts.iter().flatten() {
                let v = volumes.iter().find(|v| v.name == m.name).unwrap();
                if v.host_path.is_some() {
                    assert_eq!(
                        m.read_only,
                        Some(true),
                        "{dir}: host path {} mounted read-only",
                        m.mount_path
                    );
                }
                assert!(
                    !m.mount_path.contains(".sock")
                        && !m.mount_path.contains("containerd")
                        && !m.mount_path.contains("docker")
                );
            }
            let env: Vec<_> = c.env.clone().unwrap_or_default();
            let from_field = |n: &str| {
                env.iter().any(|e| {
                    e.name == n
                        && e.value_from
                            .as_ref()
                            .and_then(|v| v.field_ref.as_ref())
                            .is_some()
                })
            };
            assert!(
                from_field("POD_NAME") && from_field("NODE_NAME"),
                "downward API"
            );
            assert!(
                !env.iter().any(|e| e.name == "HC_REMEDIATION"),
                "{dir}: the agent does not remediate"
            );
            assert_eq!(
                pod.service_account_name.as_deref(),
                Some("coredns-healthcheck")
            );
            assert_eq!(
                c.liveness_probe
                    .as_ref()
                    .unwrap()
                    .http_get
                    .as_ref()
                    .unwrap()
                    .path
                    .as_deref(),
                Some("/healthz")
            );
            assert_eq!(
                c.readiness_probe
                    .as_ref()
                    .unwrap()
                    .http_get
                    .as_ref()
                    .unwrap()
                    .path
                    .as_deref(),
                Some("/readyz")
            );
            let res = c.resources.clone().unwrap();
            assert!(
                res.limits.unwrap().contains_key("memory")
                    && res.requests.unwrap().contains_key("memory")
            );
        }
    }
}

#[test]
fn the_controller_has_least_privilege() {
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        let d: Deployment = serde_json::from_value(
            of_kind(&docs, "Deployment")
                .into_iter()
                .find(|d| d["metadata"]["name"] == "coredns-healthcheck-controller")
                .unwrap()
                .clone(),
        )
        .unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(2), "{dir}: two replicas, one Lease");
        let pod = spec.template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("coredns-healthcheck-controller")
        );
        assert!(pod.host_network.is_none_or(|h| !h) && pod.host_pid.is_none_or(|h| !h));
        assert!(
            pod.volumes
                .unwrap_or_default()
                .iter()
                .all(|v| v.host_path.is_none()),
            "{dir}: no host path"
        );
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        let c = &pod.containers[0];
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop.unwrap_or_default(), vec!["ALL"]);
        assert!(
            caps.add.unwrap_or_default().is_empty(),
            "{dir}: no capability"
        );
        assert_eq!(c.args.as_ref().unwrap()[0], "controller");
        let mode = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "HC_REMEDIATION")
            .and_then(|e| e.value.clone());
        let want = if dir.ends_with("remediate") {
            "on"
        } else {
            "dry-run"
        };
        assert_eq!(mode.as_deref(), Some(want), "{dir}: remediation");
        let pdb = of_kind(&docs, "PodDisruptionBudget");
        assert_eq!(pdb.len(), 1, "{dir}");
        assert_eq!(pdb[0]["spec"]["minAvailable"], 1);
        assert_eq!(
            pdb[0]["spec"]["selector"]["matchLabels"],
            serde_json::to_value(&spec.selector.match_labels).unwrap()
        );
    }
}

/// (verb, group, resource, namespace, name) asked by a service account.
fn asks(
    verb: &str,
    group: &str,
    resource: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> Attributes {
    Attributes {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: ns.map(Into::into),
        name: name.map(Into::into),
    }
}

#[test]
fn rbac_grants_only_what_each_component_needs() {
    const AGENT: &str = "system:serviceaccount:kube-system:coredns-healthcheck";
    const CONTROLLER: &str = "system:serviceaccount:kube-system:coredns-healthcheck-controller";
    let ks = Some("kube-system");
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        let rbac = Rbac::new(&docs);
        let can = |who: &str, a: Attributes| rbac.allows(who, &a);
        // The agent: read-only watches of what it probes, nothing else.
        assert!(can(
            AGENT,
            asks("watch", "", "services", ks, Some("kube-dns"))
        ));
        assert!(can(
            AGENT,
            asks("list", "discovery.k8s.io", "endpointslices", ks, None)
        ));
        assert!(can(
            AGENT,
            asks("watch", "", "services", Some("default"), Some("kubernetes"))
        ));
        for denied in [
            asks("get", "", "services", ks, Some("kube-dns")),
            asks("list", "", "pods", ks, None),
            asks("create", "", "pods/eviction", ks, Some("coredns-a")),
            asks("patch", "apps", "deployments", ks, Some("coredns")),
            asks(
                "get",
                "coordination.k8s.io",
                "leases",
                ks,
                Some("coredns-healthcheck"),
            ),
            asks("create", "coordination.k8s.io", "leases", ks, None),
            asks("create", "events.k8s.io", "events", ks, None),
        ] {
            assert!(
                !can(AGENT, denied.clone()),
                "{dir}: the agent may {denied:?}"
            );
        }
        assert_eq!(
            can(
                AGENT,
                asks("patch", "", "nodes/status", None, Some("node-1"))
            ),
            dir.ends_with("node-condition"),
            "{dir}: nodes/status only with the node condition"
        );
        // The controller: what it watches, evicts, patches, elects and records; by name where
        // RBAC allows it.
        for allowed in [
            asks("watch", "", "pods", ks, None),
            asks("create", "", "pods/eviction", ks, Some("coredns-a")),
            asks("watch", "apps", "deployments", ks, None),
            asks("patch", "apps", "deployments", ks, Some("coredns")),
            asks("get", "apps", "deployments", ks, Some("coredns")),
            asks(
                "update",
                "coordination.k8s.io",
                "leases",
                ks,
                Some("coredns-healthcheck"),
            ),
            asks("create", "coordination.k8s.io", "leases", ks, None),
            asks("create", "events.k8s.io", "events", ks, None),
            asks("create", "events.k8s.io", "events", Some("default"), None),
            asks(
                "update",
                "",
                "configmaps",
                ks,
                Some("coredns-healthcheck-plan"),
            ),
            asks("create", "", "configmaps", ks, None),
        ] {
            assert!(
                can(CONTROLLER, allowed.clone()),
                "{dir}: the controller may not {allowed:?}"
            );
        }
        for denied in [
            asks("patch", "apps", "deployments", ks, Some("kube-proxy")),
            asks("get", "apps", "deployments", ks, Some("kube-proxy")),
            asks(
                "update",
                "coordination.k8s.io",
                "leases",
                ks,
                Some("kube-scheduler"),
            ),
            asks("delete", "", "pods", ks, Some("coredns-a")),
            asks("create", "", "pods/eviction", Some("default"), Some("web")),
            asks("get", "", "services", ks, Some("kube-dns")),
            asks("list", "", "secrets", ks, None),
            asks("patch", "", "nodes/status", None, Some("node-1")),
        ] {
            assert!(
                !can(CONTROLLER, denied.clone()),
                "{dir}: the controller may {denied:?}"
            );
        }
        // No wildcard anywhere.
        for r in of_kind(&docs, "Role")
            .into_iter()
            .chain(of_kind(&docs, "ClusterRole"))
        {
            let rules: Vec<PolicyRule> = serde_json::from_value(r["rules"].clone()).unwrap();
            for rule in rules {
                assert!(!rule.verbs.iter().any(|v| v == "*"), "{dir}: wildcard verb");
                assert!(
                    !rule.resources.unwrap_or_default().iter().any(|v| v == "*"),
                    "{dir}: wildcard resource"
                );
            }
        }
    }
}

/// Metric names the agent serves: the exporter's list (checked against a full scrape in the
/// exporter's own tests), confirmed here by a scrape of the running binary for the families a
/// plain agent sets.
fn served() -> BTreeSet<String> {
    let names: BTreeSet<String> = hc_exporter::sample_names().into_iter().collect();
    let closed = hc_testkit::closed_port(hc_testkit::loopback()).to_string();
    let agent = Agent::start(
        None,
        &[
            "--target",
            &closed,
            "--interval",
            "100ms",
            "--timeout",
            "100ms",
            "--attempts",
            "1",
        ],
    );
    agent.wait_for("ready", |a| {
        a.get("/readyz").is_some_and(|r| r.status == 200)
    });
    let body = agent.get("/metrics").unwrap().body;
    for l in body
        .lines()
        .filter(|l| l.starts_with("coredns_healthcheck_"))
    {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(
            names.contains(name),
            "the binary serves {name}, missing from hc_exporter::FAMILIES"
        );
    }
    names
}

fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("coredns_healthcheck_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn alerts_and_dashboard_use_only_served_metrics() {
    let served = served();
    assert!(
        served.contains("coredns_healthcheck_target_up")
            && served.contains("coredns_healthcheck_dns_queries_total"),
        "{served:?}"
    );
    let (_, docs) = render("deploy/overlays/prometheus-operator");
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let mut alerts = 0;
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap() {
            alerts += 1;
            let expr = r["expr"].as_str().unwrap();
            let names = referenced(expr);
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(
                    served.contains(&n),
                    "alert {} uses {n}, which the agent does not serve",
                    r["alert"]
                );
            }
            let runbook = r["annotations"]["runbook_url"].as_str().unwrap();
            let anchor = runbook.rsplit('#').next().unwrap();
            let ops = std::fs::read_to_string(root().join("docs/operations.md"))
                .unwrap()
                .to_lowercase();
            assert!(
                ops.contains(&format!("## {anchor}")),
                "docs/operations.md has no section for #{anchor}"
            );
        }
    }
    assert_eq!(alerts, 6);
    let dash =
        std::fs::read_to_string(root().join("deploy/grafana/coredns-healthcheck.json")).unwrap();
    let dash_json: Value = serde_json::from_str(&dash).unwrap();
    assert!(dash_json["panels"].as_array().unwrap().len() >= 6);
    for n in referenced(&dash) {
        assert!(
            served.contains(&n),
            "the dashboard uses {n}, which the agent does not serve"
        );
    }
}
