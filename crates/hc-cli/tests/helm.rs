//! The Helm chart (`deploy/helm/coredns-healthcheck`), rendered and linted by Helm's own Go SDK
//! (the PyPI package helm-python-sdk, through `deploy/helm/render.py`; no helm binary): it lints
//! clean, renders for its defaults and every values set under `ci/`, every render validates
//! against the Kubernetes 1.33 schema, every render has the least privilege the Kustomize tests
//! require (the same checks, `common::manifests`), and Helm and Kustomize render the same objects
//! for the same options — security contexts, capabilities, host network and paths, service
//! accounts, every RBAC rule, the containers' args and env included.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::manifests::{self, Expect, object, of_kind};
use common::{helm_py, helm_render, kubernetes_validate};
use serde_json::{Value, json};

const CHART: &str = "deploy/helm/coredns-healthcheck";
const NS: &str = "kube-system";

/// The chart's values sets: `ci/*.yaml`, relative to the repository's root.
fn values_sets() -> Vec<String> {
    let dir = common::root().join(CHART).join("ci");
    let mut sets: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{CHART}/ci/{n}"))
        .collect();
    sets.sort();
    assert!(sets.len() >= 5, "{sets:?}");
    sets
}

fn ci(name: &str) -> String {
    format!("{CHART}/ci/{name}-values.yaml")
}

/// What a values set is expected to produce (read from the values themselves, so that a values
/// set added later is checked too).
fn expect_for(values: &[String], namespace: &'static str) -> Expect<'static> {
    let mut remediation = "dry-run";
    let mut node_condition = false;
    for v in values {
        let text = std::fs::read_to_string(common::root().join(v)).unwrap();
        let doc: Value = serde_norway::from_str(&text).unwrap();
        match &doc["remediation"] {
            Value::String(s) if s == "on" => remediation = "on",
            Value::String(s) if s == "off" => remediation = "off",
            Value::String(s) if s == "dry-run" => remediation = "dry-run",
            // An unquoted YAML 1.1 `on`, as Helm reads it (serde_norway reads YAML 1.2: a
            // string).
            Value::Bool(true) => remediation = "on",
            Value::Bool(false) => remediation = "off",
            Value::Null => {}
            other => panic!("{v}: remediation {other}"),
        }
        if let Some(b) = doc["nodeCondition"]["enabled"].as_bool() {
            node_condition = b;
        }
    }
    Expect {
        namespace,
        remediation,
        node_condition,
    }
}

#[test]
fn the_chart_lints_clean() {
    let mut sets: Vec<Vec<String>> = vec![vec![]];
    sets.extend(values_sets().into_iter().map(|s| vec![s]));
    for set in sets {
        let mut args = vec!["--lint".to_owned()];
        for v in &set {
            args.push("-f".to_owned());
            args.push(common::root().join(v).display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = helm_py(&args);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "lint {set:?}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        println!("helm lint --strict {set:?}: {report}");
        assert_eq!(report["total_charts_linted"], 1, "{set:?}");
        assert_eq!(report["messages"], json!([]), "lint {set:?}: {report}");
        assert!(
            report["errors"].as_array().is_none_or(Vec::is_empty),
            "lint {set:?}: {report}"
        );
        assert!(out.status.success(), "lint {set:?}");
    }
    // The linter can say no: a copy of the chart with a broken template fails.
    let copy = std::env::temp_dir().join(hc_testkit::unique_name("hchelm"));
    copy_dir(
        &common::root().join(CHART),
        &copy.join("coredns-healthcheck"),
    );
    let broken = copy.join("coredns-healthcheck/templates/daemonset.yaml");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(
        &broken,
        text.replace(
            "hostNetwork: true",
            "hostNetwork: {{ .Values.agent.missing.field }}",
        ),
    )
    .unwrap();
    let chart = copy.join("coredns-healthcheck").display().to_string();
    let out = helm_py(&["--lint", "--chart", &chart]);
    let _ = std::fs::remove_dir_all(&copy);
    assert!(
        !out.status.success(),
        "lint passes a broken template: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst: PathBuf = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Every render: the defaults, each values set, and the defaults in another namespace.
fn renders() -> Vec<(String, Vec<Value>, String, Expect<'static>)> {
    let mut out = Vec::new();
    let (yaml, docs) = helm_render(&[], NS);
    out.push(("defaults".to_owned(), docs, yaml, expect_for(&[], NS)));
    for set in values_sets() {
        let (yaml, docs) = helm_render(&[set.as_str()], NS);
        let e = expect_for(std::slice::from_ref(&set), NS);
        out.push((set, docs, yaml, e));
    }
    let (yaml, docs) = helm_render(&[], "dns-system");
    out.push((
        "defaults in dns-system".to_owned(),
        docs,
        yaml,
        expect_for(&[], "dns-system"),
    ));
    out
}

#[test]
fn every_render_validates_against_kubernetes_1_33() {
    for (what, docs, yaml, _) in renders() {
        assert!(docs.len() >= 13, "{what}: {} objects", docs.len());
        let out = kubernetes_validate(&yaml);
        println!(
            "kubernetes-validate --strict -k 1.33.0 ({what}): exit {:?}, {} objects",
            out.status.code(),
            docs.len()
        );
        assert!(
            out.status.success(),
            "{what} fails validation:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The validator can say no, on a render too.
    let (yaml, _) = helm_render(&[], NS);
    let broken = yaml.replacen("hostNetwork: true", "hostNetwrok: true", 1);
    assert_ne!(broken, yaml);
    assert!(!kubernetes_validate(&broken).status.success());
}

#[test]
fn every_render_has_least_privilege() {
    for (what, docs, _, e) in renders() {
        manifests::assert_agent_least_privilege(&what, &docs, &e);
        manifests::assert_controller_least_privilege(&what, &docs, &e);
        manifests::assert_rbac_least_privilege(&what, &docs, &e);
        // Every namespaced object in the release's namespace, but the two Roles (and bindings)
        // in `default`.
        for d in &docs {
            let ns = d["metadata"]["namespace"].as_str();
            let kind = d["kind"].as_str().unwrap();
            match kind {
                "ClusterRole" | "ClusterRoleBinding" => assert_eq!(ns, None, "{what}"),
                "Role" | "RoleBinding" if ns == Some("default") => {}
                _ => assert_eq!(ns, Some(e.namespace), "{what}: {kind}"),
            }
        }
    }
}

/// The default render in another namespace: the containers are told where CoreDNS, the Lease and
/// the agents are; in kube-system (the command's default) nothing is added.
#[test]
fn another_namespace_is_passed_to_both_containers() {
    for (ns, want) in [("dns-system", Some("dns-system")), (NS, None)] {
        let (_, docs) = helm_render(&[], ns);
        for (kind, name) in [
            ("DaemonSet", "coredns-healthcheck"),
            ("Deployment", "coredns-healthcheck-controller"),
        ] {
            let c = &object(&docs, kind, name)["spec"]["template"]["spec"]["containers"][0];
            let got = c["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "HC_NAMESPACE")
                .map(|e| e["value"].as_str().unwrap());
            assert_eq!(got, want, "{kind} in {ns}");
        }
    }
}

#[test]
fn the_chart_refuses_what_would_not_work() {
    let bad = |values: &str, ns: &str| {
        let file = std::env::temp_dir().join(format!("{}.yaml", hc_testkit::unique_name("hcval")));
        std::fs::write(&file, values).unwrap();
        let out = helm_py(&["--namespace", ns, "-f", &file.display().to_string()]);
        let _ = std::fs::remove_file(file);
        assert!(!out.status.success(), "renders: {values} in {ns}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = bad("remediation: maybe\n", NS);
    assert!(e.contains("remediation"), "{e}");
    let e = bad("serviceMonitor:\n  enable: true\n", NS);
    assert!(e.contains("enable"), "{e}");
    let e = bad("", "default");
    assert!(e.contains("namespace CoreDNS runs in"), "{e}");
}

/// An object as compared between Helm and Kustomize: labels and annotations aside (Helm adds
/// its own; checked below), the defaults Kubernetes applies made explicit, env in name order (no
/// entry refers to another).
fn normalized(o: &Value) -> Value {
    let mut o = o.clone();
    let m = o["metadata"].as_object_mut().unwrap();
    m.remove("labels");
    m.remove("annotations");
    if let Some(t) = o
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        t.remove("labels");
        t.remove("annotations");
    }
    if let Some(cs) = o
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for c in cs {
            let c = c.as_object_mut().unwrap();
            c.entry("imagePullPolicy")
                .or_insert_with(|| json!("IfNotPresent"));
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                env.sort_by_key(|e| e["name"].as_str().unwrap().to_owned());
            }
        }
    }
    o
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap(),
        o["metadata"]["namespace"].as_str().unwrap_or("-"),
        o["metadata"]["name"].as_str().unwrap()
    )
}

/// Where two JSON values differ, as paths.
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(p, q, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: kustomize {a} / helm {b}")),
        _ => {}
    }
}

fn by_key(docs: &[Value]) -> BTreeMap<String, &Value> {
    docs.iter().map(|d| (key(d), d)).collect()
}

/// For the same options Helm and Kustomize render the same objects, field for field: the
/// DaemonSet's and the Deployment's security contexts, capabilities, host network, volumes and
/// host paths, service accounts, args and env; every RBAC object and rule; the Services, the
/// PodDisruptionBudget, the ServiceMonitor and the PrometheusRule. Helm only adds labels.
#[test]
fn helm_and_kustomize_render_the_same_objects() {
    let pairs: [(&str, Vec<String>); 4] = [
        ("deploy/base", vec![]),
        ("deploy/overlays/remediate", vec![ci("remediate")]),
        ("deploy/overlays/node-condition", vec![ci("node-condition")]),
        (
            "deploy/overlays/prometheus-operator",
            vec![ci("prometheus-operator")],
        ),
    ];
    for (dir, values) in &pairs {
        let (_, kdocs) = common::render(dir);
        let v: Vec<&str> = values.iter().map(String::as_str).collect();
        let (_, hdocs) = helm_render(&v, NS);
        let (k, h) = (by_key(&kdocs), by_key(&hdocs));
        assert_eq!(
            k.keys().collect::<Vec<_>>(),
            h.keys().collect::<Vec<_>>(),
            "{dir} vs helm {values:?}: the objects"
        );
        for (name, ko) in &k {
            let ho = h[name];
            let mut d = Vec::new();
            diff(&normalized(ko), &normalized(ho), name, &mut d);
            assert!(d.is_empty(), "{dir} vs helm {values:?}:\n{}", d.join("\n"));
            // Helm's labels include Kustomize's (the ServiceMonitor and the controller select
            // by them), on the objects and on the pod templates.
            for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
                let Some(kl) = ko.pointer(path).and_then(Value::as_object) else {
                    continue;
                };
                let hl = ho.pointer(path).and_then(Value::as_object).unwrap();
                for (l, val) in kl {
                    assert_eq!(hl.get(l), Some(val), "{dir}: {name}{path} {l}");
                }
            }
        }
    }
}

/// The security-relevant part of a rendering: per workload the pod's and each container's
/// security context, host namespaces, volumes and mounts, service account; every ServiceAccount
/// and RBAC object.
fn security_view(docs: &[Value]) -> Value {
    let mut view = serde_json::Map::new();
    for d in docs {
        let kind = d["kind"].as_str().unwrap();
        match kind {
            "DaemonSet" | "Deployment" => {
                let pod = &d["spec"]["template"]["spec"];
                let containers: Vec<Value> = pod["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        json!({
                            "name": c["name"],
                            "securityContext": c["securityContext"],
                            "volumeMounts": c["volumeMounts"],
                        })
                    })
                    .collect();
                view.insert(
                    key(d),
                    json!({
                        "securityContext": pod["securityContext"],
                        "hostNetwork": pod["hostNetwork"],
                        "hostPID": pod["hostPID"],
                        "hostIPC": pod["hostIPC"],
                        "serviceAccountName": pod["serviceAccountName"],
                        "automountServiceAccountToken": pod["automountServiceAccountToken"],
                        "volumes": pod["volumes"],
                        "containers": containers,
                        "initContainers": pod["initContainers"],
                    }),
                );
            }
            "ServiceAccount" | "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
                view.insert(key(d), normalized(d));
            }
            _ => {}
        }
    }
    Value::Object(view)
}

fn container<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &object(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]
}

fn env_names(c: &Value) -> Vec<String> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The values users set most change what they name, and nothing security-relevant: the
/// render's security view is the Kustomize base's, its args and env the base's plus the extras.
#[test]
fn user_values_apply_without_loosening_security() {
    let (_, base) = common::render("deploy/base");
    let (_, docs) = helm_render(&[&ci("custom")], NS);
    let mut d = Vec::new();
    diff(&security_view(&base), &security_view(&docs), "", &mut d);
    assert!(d.is_empty(), "custom values:\n{}", d.join("\n"));

    let workloads = [
        ("DaemonSet", "coredns-healthcheck", "agent"),
        ("Deployment", "coredns-healthcheck-controller", "controller"),
    ];
    for (kind, name, component) in workloads {
        let o = object(&docs, kind, name);
        let pod = &o["spec"]["template"];
        let c = container(&docs, kind, name);
        let kc = container(&base, kind, name);
        assert_eq!(
            c["image"], "registry.example.com/mirror/hc-cli:0.1.0-rc.1",
            "{kind}"
        );
        assert_eq!(c["imagePullPolicy"], "Always", "{kind}");
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        assert_eq!(pod["spec"]["priorityClassName"], "dns-checks", "{kind}");
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"kubernetes.io/os": "linux"}),
            "{kind}"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["example.com/team"], "platform",
            "{kind}"
        );
        assert_eq!(
            pod["metadata"]["labels"]["example.com/team"], "platform",
            "{kind}"
        );
        // The selector's and the controller's labels cannot be overridden.
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/component"], component,
            "{kind}"
        );
        for (l, v) in o["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&pod["metadata"]["labels"][l], v, "{kind}: selector {l}");
        }
        // Args: the base's, then the extras.
        let args = c["args"].as_array().unwrap();
        let kargs = kc["args"].as_array().unwrap();
        assert_eq!(&args[..kargs.len()], &kargs[..], "{kind}: args");
        assert_eq!(args.len(), kargs.len() + 1, "{kind}: args {args:?}");
        // Env: the base's (remediation off instead of dry-run), then the extras.
        let (names, knames) = (env_names(c), env_names(kc));
        assert_eq!(&names[..knames.len()], &knames[..], "{kind}: env");
        assert_eq!(names.len(), knames.len() + 1, "{kind}: env {names:?}");
        assert_ne!(c["resources"], kc["resources"], "{kind}: resources");
    }
    let agent = container(&docs, "DaemonSet", "coredns-healthcheck");
    assert_eq!(
        agent["args"].as_array().unwrap().last().unwrap(),
        "--interval=10s"
    );
    assert_eq!(
        agent["env"].as_array().unwrap().last().unwrap(),
        &json!({"name": "HC_TIMEOUT", "value": "2s"})
    );
    assert_eq!(agent["resources"]["limits"]["memory"], "96Mi");
    let ds = object(&docs, "DaemonSet", "coredns-healthcheck");
    assert_eq!(
        ds["spec"]["template"]["spec"]["tolerations"],
        json!([{"operator": "Exists"}])
    );
    assert!(ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"].is_object());
    let ctl = container(&docs, "Deployment", "coredns-healthcheck-controller");
    assert_eq!(
        ctl["args"].as_array().unwrap().last().unwrap(),
        "--quorum=0.5"
    );
    assert_eq!(
        ctl["env"].as_array().unwrap().last().unwrap(),
        &json!({"name": "HC_MAX_ACTIONS_PER_HOUR", "value": "3"})
    );
    let mode = ctl["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "HC_REMEDIATION")
        .unwrap();
    assert_eq!(mode["value"], "off");
    let dep = object(&docs, "Deployment", "coredns-healthcheck-controller");
    assert_eq!(dep["spec"]["replicas"], 3);
    // Setting nodeSelector alone keeps the default anti-affinity.
    assert!(dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(
        of_kind(&docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"],
        2
    );
    let sm = object(&docs, "ServiceMonitor", "coredns-healthcheck");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "30s");
    let rule = object(&docs, "PrometheusRule", "coredns-healthcheck");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");

    // Every option on: the node condition's RBAC and env, remediation on, the monitoring
    // objects; otherwise the same security view as the node-condition overlay.
    let (_, all) = helm_render(&[&ci("all")], NS);
    let (_, nc) = common::render("deploy/overlays/node-condition");
    let mut d = Vec::new();
    diff(&security_view(&nc), &security_view(&all), "", &mut d);
    assert!(d.is_empty(), "all values:\n{}", d.join("\n"));
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert_eq!(of_kind(&all, kind).len(), 1, "{kind}");
    }
    assert_eq!(
        of_kind(&all, "ClusterRole").len(),
        2,
        "the node condition's and the controller's watch of Services"
    );
    // And the defaults have none of the optional objects: the only cluster-wide grant is the
    // controller's read-only watch of Services.
    let (_, defaults) = helm_render(&[], NS);
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert!(of_kind(&defaults, kind).is_empty(), "{kind} by default");
    }
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        let names: Vec<&Value> = (of_kind(&defaults, kind).iter())
            .map(|o| &o["metadata"]["name"])
            .collect();
        assert_eq!(
            names,
            [&json!("coredns-healthcheck-controller-services")],
            "{kind} by default"
        );
    }
}

/// The chart ships the overlay's alerts (those promtool tests), unchanged.
#[test]
fn the_chart_ships_the_overlays_alerts() {
    let shipped: Value = serde_norway::from_str(
        &std::fs::read_to_string(common::root().join(CHART).join("files/alerts.yaml")).unwrap(),
    )
    .unwrap();
    let overlay: Value = serde_norway::from_str(
        &std::fs::read_to_string(
            common::root().join("deploy/overlays/prometheus-operator/prometheusrule.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(shipped, overlay["spec"]);
    let (_, docs) = helm_render(&[&ci("prometheus-operator")], NS);
    assert_eq!(
        object(&docs, "PrometheusRule", "coredns-healthcheck")["spec"],
        overlay["spec"]
    );
    assert!(
        overlay["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len()
            >= 13
    );
}
