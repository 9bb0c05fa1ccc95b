//! RBAC as the API server's RBAC authorizer evaluates it, from Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding objects (the rendered manifests): a request is allowed when a rule bound to
//! its user matches its verb, API group, resource (`pods`, `pods/eviction`), namespace and name.
//! As in Kubernetes, `resourceNames` never match a `create`, and match a `list`/`watch` only
//! through a `metadata.name` field selector.

use serde_json::Value;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// `pods`, or `pods/eviction` with its subresource.
    pub resource: String,
    /// The namespace, for namespaced requests.
    pub namespace: Option<String>,
    /// The object's name, when the request names one.
    pub name: Option<String>,
}

/// The RBAC objects.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    objects: Vec<Value>,
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rule_matches(rule: &Value, a: &Attributes) -> bool {
    let any = |list: Vec<&str>, want: &str| list.iter().any(|x| *x == "*" || *x == want);
    if !any(strings(&rule["verbs"]), &a.verb) || !any(strings(&rule["apiGroups"]), &a.group) {
        return false;
    }
    if !any(strings(&rule["resources"]), &a.resource) {
        return false;
    }
    let names = strings(&rule["resourceNames"]);
    names.is_empty()
        || (a.verb != "create" && a.name.as_deref().is_some_and(|n| names.contains(&n)))
}

impl Rbac {
    /// From every object of the manifests (objects of other kinds are ignored).
    pub fn new(objects: &[Value]) -> Rbac {
        let kinds = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];
        Rbac {
            objects: objects
                .iter()
                .filter(|o| o["kind"].as_str().is_some_and(|k| kinds.contains(&k)))
                .cloned()
                .collect(),
        }
    }

    fn role(&self, kind: &str, name: &str, namespace: Option<&str>) -> Option<&Value> {
        self.objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && (kind == "ClusterRole" || o["metadata"]["namespace"].as_str() == namespace)
        })
    }

    /// Whether `user` (`system:serviceaccount:NS:NAME`) may do `a`.
    pub fn allows(&self, user: &str, a: &Attributes) -> bool {
        let bound = |b: &Value| {
            b["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| match s["kind"].as_str() {
                    Some("ServiceAccount") => {
                        format!(
                            "system:serviceaccount:{}:{}",
                            s["namespace"].as_str().unwrap_or(""),
                            s["name"].as_str().unwrap_or("")
                        ) == user
                    }
                    Some("User") => s["name"].as_str() == Some(user),
                    _ => false,
                })
        };
        self.objects.iter().filter(|b| bound(b)).any(|b| {
            let kind = b["roleRef"]["kind"].as_str().unwrap_or("");
            let name = b["roleRef"]["name"].as_str().unwrap_or("");
            let (role, applies) = match b["kind"].as_str() {
                // A RoleBinding grants only in its own namespace.
                Some("RoleBinding") => {
                    let ns = b["metadata"]["namespace"].as_str();
                    (
                        self.role(kind, name, ns),
                        a.namespace.is_some() && a.namespace.as_deref() == ns,
                    )
                }
                Some("ClusterRoleBinding") => (self.role("ClusterRole", name, None), true),
                _ => (None, false),
            };
            applies
                && role.is_some_and(|r| {
                    r["rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|rule| rule_matches(rule, a))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(verb: &str, resource: &str, ns: Option<&str>, name: Option<&str>) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: if resource.starts_with("leases") {
                "coordination.k8s.io".into()
            } else {
                String::new()
            },
            resource: resource.into(),
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn roles_bindings_names_and_namespaces() {
        let rbac = Rbac::new(&[
            json!({"kind": "Role", "metadata": {"name": "r", "namespace": "kube-system"}, "rules": [
                {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["l"], "verbs": ["get", "update", "create"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "kube-system"},
                "roleRef": {"kind": "Role", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"}]}),
            json!({"kind": "ConfigMap", "metadata": {"name": "ignored"}}),
        ]);
        let me = "system:serviceaccount:kube-system:sa";
        assert!(rbac.allows(me, &a("list", "services", Some("kube-system"), None)));
        assert!(
            !rbac.allows(
                me,
                &a("get", "services", Some("kube-system"), Some("kube-dns"))
            ),
            "no get"
        );
        assert!(
            !rbac.allows(me, &a("list", "services", Some("default"), None)),
            "other namespace"
        );
        assert!(!rbac.allows(
            "system:serviceaccount:kube-system:other",
            &a("list", "services", Some("kube-system"), None)
        ));
        assert!(rbac.allows(me, &a("update", "leases", Some("kube-system"), Some("l"))));
        assert!(
            !rbac.allows(me, &a("update", "leases", Some("kube-system"), Some("m"))),
            "by name"
        );
        assert!(
            !rbac.allows(me, &a("create", "leases", Some("kube-system"), Some("l"))),
            "never create by name"
        );
    }
}
