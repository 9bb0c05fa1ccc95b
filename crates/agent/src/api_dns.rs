//! The API server through cluster DNS (kubenurse's `api-dns` check): resolve
//! `kubernetes.default.svc.<cluster domain>` through the DNS Service, as a pod with the default
//! DNS policy does, then complete a TLS handshake with the address it answers, on the port of
//! `default/kubernetes`. What it proves: a client that finds the API server by name can reach
//! it — the path through DNS, kube-proxy's rule for the `kubernetes` Service and the API server.
//! Reported apart from DNS health (`api_dns` in `/status`, `api_dns_*` metrics): it does not
//! change a target's state.
//!
//! A TLS handshake, not a bare TCP connect: the API server logs `http: TLS handshake error ...:
//! EOF` for every connection closed before a handshake (the load-balancer health-check noise
//! of many issue trackers). The handshake is closed with close_notify and sends no request, so
//! no credential is sent; the certificate is not checked against the cluster's CA (the address
//! is: the DNS answer must hold the ClusterIP of `default/kubernetes`, and the connection goes
//! to that address only), but the handshake's signatures are.
//!
//! Bounded: once per `every` (5 minutes by default; the first after a random part of it, so a
//! DaemonSet rollout does not send every node at once), one DNS query counted in the agent's
//! query budget, one TLS handshake, each within the agent's `--timeout`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dnsprobe::{AnswerExpectation, ProbeReport, ProbeSpec, Prober, TransportMode};
use hc_exporter::ApiDnsStatus;
use tokio::io::AsyncWriteExt;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

/// When the check is next due, and its last result.
#[derive(Debug, Clone)]
pub struct ApiDnsCheck {
    every: Duration,
    next: Instant,
    last: Option<ApiDnsStatus>,
}

impl ApiDnsCheck {
    /// A check every `every`, the first after a random part of it; `None` when `every` is zero.
    pub fn new(every: Duration) -> Option<ApiDnsCheck> {
        (!every.is_zero()).then(|| ApiDnsCheck {
            every,
            next: Instant::now() + crate::schedule::jitter(every),
            last: None,
        })
    }

    /// The check is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// The last result.
    pub fn last(&self) -> Option<&ApiDnsStatus> {
        self.last.as_ref()
    }

    /// Runs the check: `template`'s query (name, timeout) to `resolver` over UDP, answered with
    /// `api` (the ClusterIP of `default/kubernetes`), then a TLS handshake with `api:port`. Returns
    /// the DNS report (for the query counters and the budget) and the result.
    pub async fn run(
        &mut self,
        template: &ProbeSpec,
        resolver: SocketAddr,
        api: IpAddr,
        port: u16,
    ) -> (ProbeReport, ApiDnsStatus) {
        self.next = Instant::now() + self.every;
        let (report, status) = check(template, resolver, api, port).await;
        self.last = Some(status.clone());
        (report, status)
    }
}

/// One check (see [`ApiDnsCheck::run`]).
pub async fn check(
    template: &ProbeSpec,
    resolver: SocketAddr,
    api: IpAddr,
    port: u16,
) -> (ProbeReport, ApiDnsStatus) {
    let spec = (template.clone())
        .with_target(resolver)
        .with_transport(TransportMode::Udp)
        .with_attempts(1)
        .with_answer(AnswerExpectation::NonEmpty);
    let prober = Prober::new();
    let specs = std::slice::from_ref(&spec);
    let report = (prober.probe_many(specs, prober.deadline_for(specs)).await)
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            ProbeReport::failed(
                &spec,
                dnsprobe::Transport::Udp,
                dnsprobe::Failure::Timeout {
                    attempts: 0,
                    timeout: spec.timeout,
                },
            )
        });
    let mut s = ApiDnsStatus {
        result: "ok".into(),
        name: spec.name.to_ascii(),
        resolver: resolver.to_string(),
        dns_ms: report.rtt.map(|d| d.as_micros() as f64 / 1000.0),
        checked_unix_ms: hc_exporter::unix_ms(SystemTime::now()),
        ..ApiDnsStatus::default()
    };
    let fail = |mut s: ApiDnsStatus, result: &str, message: String| {
        // Only the results whose series the exporter makes at 0 (`api_dns_enabled`).
        debug_assert!(ApiDnsStatus::RESULTS.contains(&result), "{result}");
        s.result = result.into();
        s.message = Some(message);
        s
    };
    if let Some(f) = &report.failure {
        return (report.clone(), fail(s, "dns", f.to_string()));
    }
    if !report.addresses.contains(&api) {
        let got: Vec<String> = report.addresses.iter().map(ToString::to_string).collect();
        let msg = format!(
            "answered [{}], not {api} (the ClusterIP of default/kubernetes)",
            got.join(", ")
        );
        return (report, fail(s, "wrong-address", msg));
    }
    let addr = SocketAddr::new(api, port);
    s.address = Some(addr.to_string());
    let started = Instant::now();
    match tls_handshake(addr, &spec.name.to_ascii(), spec.timeout).await {
        Ok(()) => {
            s.connect_ms = Some(started.elapsed().as_micros() as f64 / 1000.0);
            (report, s)
        }
        Err((result, message)) => (report, fail(s, result, message)),
    }
}

/// A TCP connection to `addr` and a TLS handshake naming `name`, closed with close_notify, all
/// within `timeout`. On failure: `connect` or `tls`, and the words.
async fn tls_handshake(
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<(), (&'static str, String)> {
    let within = |what| format!("no {what} with {addr} within {timeout:?}");
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| ("connect", within("TCP connection")))?
        .map_err(|e| ("connect", format!("TCP connection to {addr}: {e}")))?;
    let name = ServerName::try_from(name.trim_end_matches('.').to_owned())
        .map_err(|e| ("tls", format!("{name}: {e}")))?;
    let config = client_config().map_err(|e| ("tls", e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| ("tls", within("TLS handshake")))?
        .map_err(|e| ("tls", format!("TLS handshake with {addr}: {e}")))?;
    // close_notify; a peer that does not answer it is no failure of the check.
    let _ = tokio::time::timeout(timeout, tls.shutdown()).await;
    Ok(())
}

/// TLS 1.2 and 1.3 with ring, any certificate (see the module's docs), no client certificate.
fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any certificate chain, checks the handshake's signatures: the check sends nothing
/// over the connection, and the address was checked against `default/kubernetes`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
