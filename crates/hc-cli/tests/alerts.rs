//! The alerts, proven by Prometheus's own tools: the rule groups of the PrometheusRule
//! (`deploy/overlays/prometheus-operator/prometheusrule.yaml`) are extracted into a plain rules
//! file, `promtool check rules` accepts it, and `promtool test rules` passes the unit tests of
//! `deploy/overlays/prometheus-operator/tests/*.yaml`: for every alert a case where it fires and
//! one where it stays quiet. The tests are shown to bite: the defects they were written against,
//! put back into the rules, make them fail. And the ServiceMonitor scrapes both jobs the alerts
//! select.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const RULE: &str = "deploy/overlays/prometheus-operator/prometheusrule.yaml";
const TESTS: &str = "deploy/overlays/prometheus-operator/tests";
/// The name the unit tests' `rule_files` give the extracted rules.
const RULES_FILE: &str = "coredns-healthcheck.rules.yaml";

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PrometheusRule's `spec` (its `groups`).
fn rule_spec() -> Value {
    let rule = yaml(&common::root().join(RULE));
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"].clone()
}

/// Every alert of the rule groups.
fn alert_names(spec: &Value) -> BTreeSet<String> {
    spec["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

/// The unit test files, sorted.
fn test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::root().join(TESTS))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit tests in {TESTS}");
    files
}

/// A temporary directory with the rules (`rules_yaml`) under [`RULES_FILE`] and a copy of every
/// unit test file beside it, as their `rule_files` expect; removed on drop.
struct Workdir(PathBuf);

impl Workdir {
    fn new(rules_yaml: &str) -> Workdir {
        let dir = std::env::temp_dir().join(hc_testkit::unique_name("hcalerts"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(RULES_FILE), rules_yaml).unwrap();
        for f in test_files() {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
        Workdir(dir)
    }

    fn rules(&self) -> PathBuf {
        self.0.join(RULES_FILE)
    }

    fn tests(&self) -> Vec<PathBuf> {
        test_files()
            .iter()
            .map(|f| self.0.join(f.file_name().unwrap()))
            .collect()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The plain rules file: `groups:` of the PrometheusRule's spec.
fn rules_yaml(spec: &Value) -> String {
    let groups = serde_json::json!({ "groups": spec["groups"] });
    serde_norway::to_string(&groups).unwrap()
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): these tests need Prometheus's promtool \
             (apt-get install prometheus; .ci/run does)"
            )
        })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn promtool_checks_the_rules_and_passes_every_unit_test() {
    let spec = rule_spec();
    let alerts = alert_names(&spec);
    let dir = Workdir::new(&rules_yaml(&spec));
    let check = promtool(&["check", "rules", &dir.rules().display().to_string()]);
    let out = text(&check);
    println!("promtool check rules:\n{out}");
    assert!(check.status.success(), "promtool check rules fails:\n{out}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{out}"
    );
    for t in dir.tests() {
        let run = promtool(&["test", "rules", &t.display().to_string()]);
        let out = text(&run);
        println!("promtool test rules {}:\n{out}", t.display());
        assert!(
            run.status.success() && out.contains("SUCCESS"),
            "promtool test rules {} fails:\n{out}",
            t.display()
        );
    }
}

/// Every alert has a case where it fires and one where it stays quiet, and no test names an
/// alert that does not exist (promtool passes "expect none" for an unknown name).
#[test]
fn every_alert_has_a_firing_and_a_quiet_case() {
    let alerts = alert_names(&rule_spec());
    assert!(alerts.len() >= 13, "{alerts:?}");
    let mut fires: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet: BTreeMap<String, usize> = BTreeMap::new();
    for f in test_files() {
        let doc = yaml(&f);
        assert_eq!(
            doc["rule_files"],
            serde_json::json!([RULES_FILE]),
            "{}: rule_files",
            f.display()
        );
        for group in doc["tests"].as_array().unwrap() {
            for case in group["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap().to_owned();
                assert!(
                    alerts.contains(&name),
                    "{}: a test of {name}, which is no alert of {RULE}",
                    f.display()
                );
                let expected = case["exp_alerts"].as_array().map_or(0, Vec::len);
                for a in case["exp_alerts"].as_array().into_iter().flatten() {
                    assert!(
                        a["exp_labels"]["severity"].is_string(),
                        "{}: {name}: the expected labels name the severity",
                        f.display()
                    );
                    assert!(
                        a["exp_annotations"]["runbook_url"].is_string(),
                        "{}: {name}: the expected annotations include the runbook",
                        f.display()
                    );
                }
                *if expected > 0 { &mut fires } else { &mut quiet }
                    .entry(name)
                    .or_default() += 1;
            }
        }
    }
    for a in &alerts {
        assert!(fires.contains_key(a), "no unit test where {a} fires");
        assert!(quiet.contains_key(a), "no unit test where {a} stays quiet");
    }
}

/// Severities as documented: outages are critical.
#[test]
fn outages_are_critical() {
    let spec = rule_spec();
    let severity: BTreeMap<String, String> = spec["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_owned(),
                r["labels"]["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for critical in [
        "CoreDNSUnreachableOverUDP",
        "CoreDNSTargetDown",
        "CoreDNSServiceUnreachable",
        "CoreDNSDown",
    ] {
        assert_eq!(severity[critical], "critical", "{critical}");
    }
    assert!(
        severity.values().all(|s| s == "critical" || s == "warning"),
        "{severity:?}"
    );
}

/// Every alert's expression, by name.
fn exprs(spec: &Value) -> BTreeMap<String, String> {
    spec["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_owned(),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The defects the unit tests were written against, put back into one alert's expression: each
/// makes `promtool test rules` fail on that alert.
#[test]
fn the_unit_tests_catch_the_old_defects() {
    let defects: &[(&str, &str, &str, &str)] = &[
        (
            "the storm fires on the budget itself",
            "CoreDNSRemediationStorm",
            "> 6.5",
            "> 6",
        ),
        (
            "UDP from one node compared with TCP from another",
            "CoreDNSUnreachableOverUDP",
            "and on (target, instance)",
            "and on (target)",
        ),
        (
            "one dead agent among several goes unnoticed",
            "CoreDNSHealthcheckNotReporting",
            "up{job=\"coredns-healthcheck-metrics\"} == 0",
            "absent(coredns_healthcheck_build_info)",
        ),
        (
            "latency near the timeout cannot fire",
            "DNSLatencyNearTimeout",
            "> 0.05",
            "> 0.5",
        ),
        (
            "lookups within the 5 s retry counted as waiting for it",
            "DNSClientLookupsWaitForRetry",
            "{le=\"4.5\"}",
            "{le=\"5.5\"}",
        ),
        (
            "a full outage goes unnoticed",
            "CoreDNSTargetDown",
            "(coredns_healthcheck_target_up{transport=\"tcp\"} == 0)",
            "(coredns_healthcheck_target_up{transport=\"tcp\"} == 1)",
        ),
        (
            "a blind controller goes unnoticed",
            "CoreDNSHealthcheckControllerNotReporting",
            "(coredns_healthcheck_nodes_reporting{job=\"coredns-healthcheck-controller\"}) == 0",
            "(coredns_healthcheck_nodes_reporting{job=\"coredns-healthcheck-controller\"}) < 0",
        ),
    ];
    for (what, alert, from, to) in defects {
        let mut spec = rule_spec();
        let mut changed = 0;
        for g in spec["groups"].as_array_mut().unwrap() {
            for r in g["rules"].as_array_mut().unwrap() {
                if r["alert"] == *alert {
                    let expr = r["expr"].as_str().unwrap();
                    assert!(expr.contains(from), "{what}: `{from}` is not in {alert}");
                    r["expr"] = Value::from(expr.replace(from, to));
                    changed += 1;
                }
            }
        }
        assert_eq!(changed, 1, "{what}: {alert}");
        let dir = Workdir::new(&rules_yaml(&spec));
        let check = promtool(&["check", "rules", &dir.rules().display().to_string()]);
        assert!(check.status.success(), "{what}: {}", text(&check));
        let outs: Vec<(bool, String)> = dir
            .tests()
            .iter()
            .map(|t| {
                let o = promtool(&["test", "rules", &t.display().to_string()]);
                (o.status.success(), text(&o))
            })
            .collect();
        assert!(
            outs.iter()
                .any(|(ok, out)| !ok && out.contains(&format!("alertname: {alert},"))),
            "{what}: the unit tests still pass:\n{outs:?}"
        );
    }
}

/// The alerts select two jobs; under the Prometheus Operator a job is the scraped Service's
/// name. The ServiceMonitor selects both Services, and each has the port it scrapes: the
/// controller is scraped too.
#[test]
fn the_service_monitor_scrapes_every_job_the_alerts_select() {
    let (_, docs) = common::render("deploy/overlays/prometheus-operator");
    let mut jobs = BTreeSet::new();
    for expr in exprs(&rule_spec()).values() {
        for e in expr.split("job=\"").skip(1) {
            jobs.insert(e.split('"').next().unwrap().to_owned());
        }
    }
    assert_eq!(
        jobs,
        BTreeSet::from([
            "coredns-healthcheck-controller".to_owned(),
            "coredns-healthcheck-metrics".to_owned()
        ])
    );
    let monitors: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceMonitor")
        .collect();
    assert_eq!(monitors.len(), 1);
    let sm = monitors[0];
    for job in &jobs {
        let svc = docs
            .iter()
            .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == job.as_str())
            .unwrap_or_else(|| panic!("no Service {job}"));
        assert_eq!(svc["metadata"]["namespace"], sm["metadata"]["namespace"]);
        let labels = svc["metadata"]["labels"].as_object().unwrap();
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                labels.get(k),
                Some(v),
                "the ServiceMonitor does not select the Service {job}"
            );
        }
        assert!(sm["spec"]["selector"]["matchExpressions"].is_null());
        for ep in sm["spec"]["endpoints"].as_array().unwrap() {
            let port = ep["port"].as_str().unwrap();
            assert!(
                svc["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == port),
                "the Service {job} has no port {port}"
            );
        }
    }
}
