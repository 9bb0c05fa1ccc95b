//! The deployment manifests: every kustomization renders (`kubectl kustomize`), every rendered
//! object validates against the Kubernetes 1.33 schema (`kubernetes-validate`, pinned in
//! .ci/run), the security invariants hold (parsed with k8s-openapi types), and the alerts and
//! the dashboard use only metrics the agent really serves (scraped from a running agent).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::Agent;
use common::manifests::{self, Expect, of_kind};
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
    common::kubernetes_validate(yaml)
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

/// What each kustomization is expected to hold.
fn expect(dir: &str) -> Expect<'static> {
    Expect {
        namespace: "kube-system",
        remediation: if dir.ends_with("remediate") {
            "on"
        } else {
            "dry-run"
        },
        node_condition: dir.ends_with("node-condition"),
    }
}

#[test]
fn the_daemonset_has_least_privilege() {
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        manifests::assert_agent_least_privilege(dir, &docs, &expect(dir));
    }
}

#[test]
fn the_controller_has_least_privilege() {
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        manifests::assert_controller_least_privilege(dir, &docs, &expect(dir));
        let d = manifests::object(&docs, "Deployment", "coredns-healthcheck-controller");
        assert_eq!(d["spec"]["replicas"], 2, "{dir}: two replicas, one Lease");
        assert_eq!(
            of_kind(&docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"],
            1
        );
    }
}

#[test]
fn rbac_grants_only_what_each_component_needs() {
    for dir in KUSTOMIZATIONS {
        let (_, docs) = render(dir);
        manifests::assert_rbac_least_privilege(dir, &docs, &expect(dir));
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
    // The runbook's sections, by their exact headings (a heading that only starts with an
    // alert's name is not its section).
    let ops = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let sections: BTreeSet<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase())
        .collect();
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
            assert_eq!(
                anchor,
                r["alert"].as_str().unwrap().to_lowercase(),
                "the runbook link of {} points at its own section",
                r["alert"]
            );
            assert!(
                sections.contains(anchor),
                "docs/operations.md has no section for #{anchor}"
            );
        }
    }
    // The agents' alerts, the controller's (verdicts, not reporting), the remediations', and
    // the checks beside DNS health (the HTTP gap, stale records, the API server through DNS), and
    // the client lookups' 5 s retries.
    assert_eq!(alerts, 17);
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

/// The dashboard's `node` variable lists the agents' nodes, and every panel on a metric only the
/// agents serve (one series set per node) follows it.
#[test]
fn the_dashboard_filters_per_node_panels_by_the_node_variable() {
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/coredns-healthcheck.json")).unwrap(),
    )
    .unwrap();
    let vars = dash["templating"]["list"].as_array().unwrap();
    let node = vars
        .iter()
        .find(|v| v["name"] == "node")
        .expect("a node variable");
    let query = node["query"]["query"].as_str().unwrap();
    assert!(
        query.starts_with("label_values(coredns_healthcheck_") && query.ends_with(", node)"),
        "{query}"
    );
    assert_eq!(node["multi"], true);
    assert_eq!(node["includeAll"], true);
    let name = |(n, ty): &(&str, &str)| -> Vec<String> {
        let base = format!("coredns_healthcheck_{n}");
        match *ty {
            "counter" => vec![format!("{base}_total")],
            "histogram" => vec![
                format!("{base}_bucket"),
                format!("{base}_sum"),
                format!("{base}_count"),
            ],
            _ => vec![base],
        }
    };
    let controller: BTreeSet<String> = hc_exporter::CONTROLLER_FAMILIES
        .iter()
        .flat_map(name)
        .collect();
    let agent_only: BTreeSet<String> = hc_exporter::FAMILIES
        .iter()
        .flat_map(name)
        .filter(|n| !controller.contains(n))
        .collect();
    assert!(agent_only.contains("coredns_healthcheck_target_up"));
    assert!(agent_only.contains(&query["label_values(".len()..query.len() - ", node)".len()]));
    let mut per_node = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let names = referenced(expr);
            let shared = names.iter().any(|n| controller.contains(n));
            if names.iter().any(|n| agent_only.contains(n))
                || (shared && expr.contains("coredns-healthcheck-metrics"))
            {
                per_node += 1;
                assert!(
                    expr.contains("node=~\"$node\""),
                    "panel {:?}: {expr} does not follow $node",
                    p["title"]
                );
            }
        }
    }
    assert!(per_node >= 6, "{per_node} per-node queries");
}
