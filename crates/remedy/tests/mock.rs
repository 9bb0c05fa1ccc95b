//! Request shapes, with kube's tower-test mock service ("the least powerful method"): what the
//! executor sends for an eviction, and how it reads a PodDisruptionBudget's 429.
#![allow(clippy::unwrap_used)]

use hc_remedy::{Action, Client, Executor, Mode, Outcome};
use http::{Request, Response};
use kube::client::Body;

#[tokio::test]
async fn eviction_request_and_pdb_refusal() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        // 1: the eviction, refused; 2: the Event about it.
        for _ in 0..2 {
            let (req, send) = handle.next_request().await.expect("a request");
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect_bytes().await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            seen.push((method.to_string(), path.clone(), json.clone()));
            let resp = if path.ends_with("/eviction") {
                let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
                    "reason": "TooManyRequests", "message": "Cannot evict pod as it would violate the pod's disruption budget."});
                Response::builder()
                    .status(429)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap()
            } else {
                Response::builder()
                    .status(201)
                    .body(Body::from(body.to_vec()))
                    .unwrap()
            };
            send.send_response(resp);
        }
        seen
    });
    let ex = Executor::new(
        Client::new(mock, "kube-system"),
        "kube-system",
        Mode::On,
        "agent-1",
        false,
    );
    let out = ex
        .execute(&Action::Evict {
            pod: "coredns-a".into(),
            uid: "uid-coredns-a".into(),
            reason: "failed 3 rounds".into(),
        })
        .await;
    assert!(
        matches!(out, Outcome::RetryLater(ref m) if m.contains("disruption budget")),
        "{out:?}"
    );
    let seen = server.await.unwrap();
    assert_eq!(seen[0].0, "POST");
    assert_eq!(
        seen[0].1,
        "/api/v1/namespaces/kube-system/pods/coredns-a/eviction"
    );
    // A policy/v1 Eviction, spelled as the API server reads it.
    assert_eq!(seen[0].2["apiVersion"], "policy/v1");
    assert_eq!(seen[0].2["kind"], "Eviction");
    assert_eq!(seen[0].2["metadata"]["name"], "coredns-a");
    // Only this pod: its UID is a precondition, so a replacement of the same name is safe.
    assert_eq!(
        seen[0].2["deleteOptions"]["preconditions"]["uid"],
        "uid-coredns-a"
    );
    assert_eq!(
        seen[1].1,
        "/apis/events.k8s.io/v1/namespaces/kube-system/events"
    );
    assert_eq!(seen[1].2["reason"], "DNSPodEvictedFailed");
    assert_eq!(seen[1].2["type"], "Warning");
    assert_eq!(seen[1].2["reportingController"], "coredns-healthcheck");
}
