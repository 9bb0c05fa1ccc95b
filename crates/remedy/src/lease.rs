//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's timings (a Lease lasts
//! 15 s, the holder must renew within 10 s, everyone tries every 2 s), and the controller's
//! [`History`] kept on the Lease as an annotation, so a restart or a new leader continues it.
//!
//! Leadership is only what a write proves: the holder renews with a write every retry period
//! and counts as leader for the renew deadline after its last successful write (a read is not a
//! renewal). Before every action it [`Elector::commit`]s the history with a compare-and-swap
//! write of the Lease: if another replica took it meanwhile, the write fails (409) and nothing
//! is done.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::plan::History;

/// The annotation holding the controller's [`History`] (JSON).
pub const HISTORY_ANNOTATION: &str = "coredns-healthcheck.io/history";

/// Lease settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// Who we are (the pod name).
    pub identity: String,
    /// How long a Lease is valid after a renewal.
    pub duration: Duration,
    /// How long after its last successful renewal the holder still acts: shorter than
    /// `duration`, so it stops before anyone else may start.
    pub renew_deadline: Duration,
    /// How often everyone tries (the holder renews this often).
    pub retry: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s / 10 s / 2 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it, holding it.
    Create,
    /// We hold it: renew it (with a write).
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// Someone else holds it.
    Follow(String),
}

/// Decides from the Lease's spec. Pure.
pub fn decide(spec: Option<&LeaseSpec>, cfg: &LeaseConfig, now: SystemTime) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == cfg.identity {
        return Decision::Renew;
    }
    let renewed = spec.renew_time.as_ref().map(|t| SystemTime::from(t.0));
    let duration = spec
        .lease_duration_seconds
        .map_or(cfg.duration, |s| Duration::from_secs(s.max(0) as u64));
    let age = renewed.map(|r| now.duration_since(r).unwrap_or_default());
    if holder.is_empty() || age.is_none_or(|a| a >= duration) {
        return Decision::Acquire;
    }
    Decision::Follow(holder)
}

fn micro(t: SystemTime) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .ok()
        .map(MicroTime)
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// We do not hold a fresh Lease.
    #[error("not the leader (no renewal of the Lease within the renew deadline)")]
    NotLeader,
    /// Another replica wrote the Lease first.
    #[error("the Lease changed under us: another replica holds it now")]
    Conflict,
    /// The API failed.
    #[error("Lease request failed: {0}")]
    Api(#[from] kube::Error),
}

#[derive(Debug, Default)]
struct Held {
    /// The Lease as we last wrote or read it (its resourceVersion makes writes CAS).
    lease: Option<Lease>,
    history: History,
}

#[derive(Debug)]
struct Inner {
    api: Api<Lease>,
    cfg: LeaseConfig,
    held: tokio::sync::Mutex<Held>,
    leader_until: Mutex<Option<Instant>>,
    /// Released on shutdown: the loop stops trying.
    released: std::sync::atomic::AtomicBool,
}

/// A running election. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Elector {
    inner: Arc<Inner>,
}

fn history_of(lease: &Lease) -> History {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HISTORY_ANNOTATION))
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default()
}

impl Elector {
    /// Starts electing on the caller's runtime.
    pub fn spawn(client: Client, cfg: LeaseConfig) -> Elector {
        let e = Elector {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, &cfg.namespace),
                cfg,
                held: tokio::sync::Mutex::new(Held::default()),
                leader_until: Mutex::new(None),
                released: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        let run = e.clone();
        tokio::spawn(async move { run.run().await });
        e
    }

    /// True while our last successful renewal is younger than the renew deadline.
    pub fn is_leader(&self) -> bool {
        self.until().is_some_and(|t| Instant::now() < t)
    }

    fn until(&self) -> Option<Instant> {
        *self
            .inner
            .leader_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn set_until(&self, t: Option<Instant>) {
        *self
            .inner
            .leader_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// The history as held now (the Lease's, once we acquired it).
    pub async fn history(&self) -> History {
        self.inner.held.lock().await.history.clone()
    }

    async fn run(&self) {
        let mut was = false;
        while !self
            .inner
            .released
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            if let Err(e) = self.step().await {
                warn!(error = %e, lease = %self.inner.cfg.name, "lease request failed");
            }
            let lead = self.is_leader();
            if lead != was {
                let c = &self.inner.cfg;
                if lead {
                    info!(identity = %c.identity, lease = %c.name, "acquired the lease: this replica decides and acts");
                } else {
                    info!(identity = %c.identity, lease = %c.name, "not the lease holder: this replica only watches");
                }
                was = lead;
            }
            tokio::time::sleep(self.inner.cfg.retry).await;
        }
    }

    async fn step(&self) -> Result<(), LeaseError> {
        let mut held = self.inner.held.lock().await;
        if self
            .inner
            .released
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let current = self.inner.api.get_opt(&self.inner.cfg.name).await?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.inner.cfg,
            SystemTime::now(),
        );
        match (decision, current) {
            (Decision::Follow(_), _) | (Decision::Renew | Decision::Acquire, None) => {
                self.set_until(None);
                Ok(())
            }
            (Decision::Create, _) => {
                held.history = History::default();
                self.write(&mut held, None, true).await
            }
            (d, Some(lease)) => {
                let acquire = d == Decision::Acquire;
                if acquire || held.lease.is_none() {
                    // Continue what the previous holder (or our previous life) did.
                    held.history = history_of(&lease);
                }
                self.write(&mut held, Some(lease), acquire).await
            }
        }
    }

    /// Writes the Lease (create or compare-and-swap replace) holding it, with `held.history`.
    async fn write(
        &self,
        held: &mut Held,
        base: Option<Lease>,
        acquire: bool,
    ) -> Result<(), LeaseError> {
        let cfg = &self.inner.cfg;
        let now = SystemTime::now();
        let started = Instant::now();
        let mut lease = base.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        let old = lease.spec.take();
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(cfg.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(cfg.duration.as_secs()).unwrap_or(15)),
            acquire_time: if acquire {
                micro(now)
            } else {
                old.as_ref().and_then(|o| o.acquire_time.clone())
            },
            renew_time: micro(now),
            lease_transitions: Some(
                old.as_ref().and_then(|o| o.lease_transitions).unwrap_or(0)
                    + i32::from(acquire && base.is_some()),
            ),
            ..LeaseSpec::default()
        });
        let history = serde_json::to_string(&held.history).unwrap_or_default();
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(HISTORY_ANNOTATION.into(), history);
        let pp = PostParams::default();
        let result = match base {
            None => self.inner.api.create(&pp, &lease).await,
            Some(_) => self.inner.api.replace(&cfg.name, &pp, &lease).await,
        };
        match result {
            Ok(written) => {
                held.lease = Some(written);
                self.set_until(Some(started + cfg.renew_deadline));
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                held.lease = None;
                self.set_until(None);
                Err(LeaseError::Conflict)
            }
            Err(e) => {
                // Leadership lasts until its deadline, not beyond.
                Err(LeaseError::Api(e))
            }
        }
    }

    /// Changes the history with `f` and writes it to the Lease, renewing it, right now: the
    /// leadership check just before an action. Fails, changing nothing, when we are not the
    /// leader or another replica wrote the Lease first.
    pub async fn commit(&self, f: impl FnOnce(&mut History)) -> Result<(), LeaseError> {
        let mut held = self.inner.held.lock().await;
        if !self.is_leader() {
            return Err(LeaseError::NotLeader);
        }
        let Some(base) = held.lease.clone() else {
            return Err(LeaseError::NotLeader);
        };
        let before = held.history.clone();
        f(&mut held.history);
        let r = self.write(&mut held, Some(base), false).await;
        if r.is_err() {
            held.history = before;
        }
        r
    }

    /// Stops electing and gives the Lease up if we hold it (on shutdown), so another replica
    /// takes over at once.
    pub async fn release(&self) {
        let mut held = self.inner.held.lock().await;
        self.inner
            .released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if !self.is_leader() {
            return;
        }
        self.set_until(None);
        if let Some(mut lease) = held.lease.take()
            && let Some(spec) = lease.spec.as_mut()
        {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let _ = self
                .inner
                .api
                .replace(&self.inner.cfg.name, &PostParams::default(), &lease)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LeaseConfig {
        LeaseConfig::new("kube-system", "coredns-healthcheck", "me")
    }

    fn spec(holder: &str, renewed_ago: u64, now: SystemTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: micro(now - Duration::from_secs(renewed_ago)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let c = cfg();
        assert_eq!(decide(None, &c, now), Decision::Create);
        assert_eq!(
            decide(Some(&spec("me", 3, now)), &c, now),
            Decision::Renew,
            "the holder always writes: a read is not a renewal"
        );
        assert_eq!(
            decide(Some(&spec("other", 5, now)), &c, now),
            Decision::Follow("other".into())
        );
        assert_eq!(
            decide(Some(&spec("other", 16, now)), &c, now),
            Decision::Acquire,
            "expired"
        );
        assert_eq!(
            decide(Some(&spec("", 1, now)), &c, now),
            Decision::Acquire,
            "released"
        );
        assert!(c.renew_deadline < c.duration);
    }
}
