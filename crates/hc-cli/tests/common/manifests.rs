//! The least-privilege invariants of the rendered manifests, shared by the Kustomize tests
//! (deploy.rs) and the Helm chart's (helm.rs): what the agent's DaemonSet and the controller's
//! Deployment may hold, and what each service account may and may not do (evaluated as the API
//! server's RBAC authorizer would, by `hc_testkit::Rbac`).

use std::collections::BTreeSet;

use hc_testkit::{Attributes, Rbac};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one object of `kind` named `name`.
pub fn object<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(docs, kind)
        .into_iter()
        .filter(|d| d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{kind}/{name}: {} objects", found.len());
    found[0]
}

/// What a rendering is expected to hold.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Where the service accounts and the namespaced objects are.
    pub namespace: &'a str,
    /// The controller's HC_REMEDIATION.
    pub remediation: &'a str,
    /// Whether the agents may patch nodes/status.
    pub node_condition: bool,
}

/// The agent: host network, only /proc and /run/netns from the host (read-only), exactly
/// SYS_ADMIN and SYS_PTRACE, read-only root, no remediation, the downward API, its probes and
/// memory bounds.
pub fn assert_agent_least_privilege(what: &str, docs: &[Value], e: &Expect<'_>) {
    let ds: DaemonSet =
        serde_json::from_value(object(docs, "DaemonSet", "coredns-healthcheck").clone()).unwrap();
    assert_eq!(
        ds.metadata.namespace.as_deref(),
        Some(e.namespace),
        "{what}"
    );
    let pod = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true), "{what}");
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert!(pod.host_pid.is_none_or(|p| !p), "{what}: no hostPID");
    assert!(pod.host_ipc.is_none_or(|p| !p), "{what}: no hostIPC");
    assert!(
        pod.tolerations
            .clone()
            .unwrap_or_default()
            .iter()
            .any(
                |t| t.key.as_deref() == Some("node-role.kubernetes.io/control-plane")
                    || (t.key.is_none() && t.operator.as_deref() == Some("Exists"))
            ),
        "{what}: control-plane nodes too"
    );
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("coredns-healthcheck"),
        "{what}"
    );
    let volumes = pod.volumes.unwrap_or_default();
    let host_paths: BTreeSet<String> = volumes
        .iter()
        .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
        .collect();
    assert_eq!(
        host_paths,
        BTreeSet::from(["/proc".to_owned(), "/run/netns".to_owned()]),
        "{what}: only /proc and /run/netns from the host"
    );
    for c in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let sc = c.security_context.clone().unwrap();
        assert_ne!(sc.privileged, Some(true), "{what}: {} privileged", c.name);
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{what}: {} escalation",
            c.name
        );
        assert_eq!(
            sc.read_only_root_filesystem,
            Some(true),
            "{what}: {} read-only root",
            c.name
        );
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop.unwrap_or_default(), vec!["ALL"], "{what}");
        let mut add = caps.add.unwrap_or_default();
        add.sort();
        assert_eq!(
            add,
            vec!["SYS_ADMIN", "SYS_PTRACE"],
            "{what}: exactly the two capabilities"
        );
        for m in c.volume_mounts.iter().flatten() {
            let v = volumes.iter().find(|v| v.name == m.name).unwrap();
            if v.host_path.is_some() {
                assert_eq!(
                    m.read_only,
                    Some(true),
                    "{what}: host path {} mounted read-only",
                    m.mount_path
                );
            }
            assert!(
                !m.mount_path.contains(".sock")
                    && !m.mount_path.contains("containerd")
                    && !m.mount_path.contains("docker"),
                "{what}: {}",
                m.mount_path
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
            "{what}: downward API"
        );
        assert!(
            !env.iter().any(|e| e.name == "HC_REMEDIATION"),
            "{what}: the agent does not remediate"
        );
        let condition = env
            .iter()
            .find(|e| e.name == "HC_NODE_CONDITION")
            .and_then(|e| e.value.as_deref());
        assert_eq!(
            condition == Some("true"),
            e.node_condition,
            "{what}: HC_NODE_CONDITION {condition:?}"
        );
        assert_eq!(c.args.as_ref().unwrap()[0], "run", "{what}");
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
                && res.requests.unwrap().contains_key("memory"),
            "{what}: memory bounds"
        );
    }
}

/// The controller: its own service account, no host access, non-root, no capability, read-only
/// root; the expected remediation mode; a PodDisruptionBudget over its pods.
pub fn assert_controller_least_privilege(what: &str, docs: &[Value], e: &Expect<'_>) {
    let d: Deployment = serde_json::from_value(
        object(docs, "Deployment", "coredns-healthcheck-controller").clone(),
    )
    .unwrap();
    assert_eq!(d.metadata.namespace.as_deref(), Some(e.namespace), "{what}");
    let spec = d.spec.unwrap();
    assert!(
        spec.replicas.is_some_and(|r| r >= 2),
        "{what}: two replicas or more, one Lease"
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("coredns-healthcheck-controller"),
        "{what}"
    );
    assert!(
        pod.host_network.is_none_or(|h| !h) && pod.host_pid.is_none_or(|h| !h),
        "{what}"
    );
    assert!(
        pod.volumes
            .unwrap_or_default()
            .iter()
            .all(|v| v.host_path.is_none()),
        "{what}: no host path"
    );
    assert_eq!(
        pod.security_context.unwrap().run_as_non_root,
        Some(true),
        "{what}"
    );
    assert_eq!(pod.containers.len(), 1, "{what}");
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_ne!(sc.privileged, Some(true), "{what}");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
    assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.drop.unwrap_or_default(), vec!["ALL"], "{what}");
    assert!(
        caps.add.unwrap_or_default().is_empty(),
        "{what}: no capability"
    );
    assert_eq!(c.args.as_ref().unwrap()[0], "controller", "{what}");
    let mode = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "HC_REMEDIATION")
        .and_then(|e| e.value.clone());
    assert_eq!(mode.as_deref(), Some(e.remediation), "{what}: remediation");
    let pdb = of_kind(docs, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1, "{what}");
    assert!(
        pdb[0]["spec"]["minAvailable"]
            .as_i64()
            .is_some_and(|m| m >= 1)
    );
    assert_eq!(
        pdb[0]["spec"]["selector"]["matchLabels"],
        serde_json::to_value(&spec.selector.match_labels).unwrap(),
        "{what}"
    );
}

/// (verb, group, resource, namespace, name) asked by a service account.
pub fn asks(
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

/// What each service account may and may not do; no wildcard anywhere.
pub fn assert_rbac_least_privilege(what: &str, docs: &[Value], e: &Expect<'_>) {
    let agent = format!("system:serviceaccount:{}:coredns-healthcheck", e.namespace);
    let controller = format!(
        "system:serviceaccount:{}:coredns-healthcheck-controller",
        e.namespace
    );
    let ks = Some(e.namespace);
    let rbac = Rbac::new(docs);
    let can = |who: &str, a: Attributes| rbac.allows(who, &a);
    // The agent: read-only watches of what it probes, nothing else.
    for allowed in [
        asks("watch", "", "services", ks, Some("kube-dns")),
        asks("list", "discovery.k8s.io", "endpointslices", ks, None),
        asks("watch", "", "services", Some("default"), Some("kubernetes")),
        asks(
            "watch",
            "",
            "configmaps",
            ks,
            Some("coredns-healthcheck-plan"),
        ),
    ] {
        assert!(
            can(&agent, allowed.clone()),
            "{what}: the agent may not {allowed:?}"
        );
    }
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
        asks("watch", "", "configmaps", ks, Some("coredns")),
        asks(
            "update",
            "",
            "configmaps",
            ks,
            Some("coredns-healthcheck-plan"),
        ),
        asks("list", "", "secrets", ks, None),
    ] {
        assert!(
            !can(&agent, denied.clone()),
            "{what}: the agent may {denied:?}"
        );
    }
    assert_eq!(
        can(
            &agent,
            asks("patch", "", "nodes/status", None, Some("node-1"))
        ),
        e.node_condition,
        "{what}: nodes/status only with the node condition"
    );
    assert!(
        !can(&agent, asks("patch", "", "nodes", None, Some("node-1"))),
        "{what}: the agent may patch nodes"
    );
    // The controller: what it watches, evicts, patches, elects and records; by name where RBAC
    // allows it.
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
        // The freshness check: every Service, watched, read-only.
        asks("watch", "", "services", None, None),
        asks("list", "", "services", None, None),
        asks("watch", "", "services", Some("shop"), None),
    ] {
        assert!(
            can(&controller, allowed.clone()),
            "{what}: the controller may not {allowed:?}"
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
        asks("update", "", "configmaps", ks, Some("coredns")),
        asks("patch", "", "nodes/status", None, Some("node-1")),
        asks("get", "", "services", Some("shop"), Some("web")),
        asks("create", "", "services", Some("shop"), None),
        asks("update", "", "services", Some("shop"), Some("web")),
        asks("delete", "", "services", Some("shop"), Some("web")),
        asks("watch", "", "endpoints", None, None),
        asks("watch", "discovery.k8s.io", "endpointslices", None, None),
        asks("list", "", "pods", None, None),
        asks("list", "", "secrets", None, None),
    ] {
        assert!(
            !can(&controller, denied.clone()),
            "{what}: the controller may {denied:?}"
        );
    }
    // The agents never watch every Service (one watch, in the controller).
    assert!(
        !can(&agent, asks("watch", "", "services", None, None))
            && !can(&agent, asks("list", "", "services", Some("shop"), None)),
        "{what}: the agent may watch every Service"
    );
    // No wildcard anywhere; the cluster-wide grants are the controller's read-only watch of
    // Services and the node condition's.
    for r in of_kind(docs, "Role")
        .into_iter()
        .chain(of_kind(docs, "ClusterRole"))
    {
        let rules: Vec<PolicyRule> = serde_json::from_value(r["rules"].clone()).unwrap();
        for rule in rules {
            assert!(
                !rule.verbs.iter().any(|v| v == "*"),
                "{what}: wildcard verb"
            );
            assert!(
                !rule.resources.unwrap_or_default().iter().any(|v| v == "*"),
                "{what}: wildcard resource"
            );
            assert!(
                !rule.api_groups.unwrap_or_default().iter().any(|v| v == "*"),
                "{what}: wildcard group"
            );
        }
    }
    let cluster: BTreeSet<&str> = of_kind(docs, "ClusterRole")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut want = BTreeSet::from(["coredns-healthcheck-controller-services"]);
    if e.node_condition {
        want.insert("coredns-healthcheck-node-condition");
    }
    assert_eq!(cluster, want, "{what}: ClusterRoles");
    let services: Vec<PolicyRule> = serde_json::from_value(
        object(
            docs,
            "ClusterRole",
            "coredns-healthcheck-controller-services",
        )["rules"]
            .clone(),
    )
    .unwrap();
    assert_eq!(services.len(), 1, "{what}");
    assert_eq!(
        services[0].resources.as_deref(),
        Some(&["services".to_owned()][..])
    );
    assert_eq!(services[0].verbs, ["list", "watch"], "{what}: read-only");
}
