//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's timings: a Lease
//! lasts 15 s, the holder renews every 10 s, others retry every 2 s. Only the holder acts;
//! every replica probes and exports. The holder releases the Lease on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

/// Lease settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// Who we are (the pod name).
    pub identity: String,
    /// How long a Lease is valid after a renewal.
    pub duration: Duration,
    /// How often the holder renews.
    pub renew: Duration,
    /// How often the others try.
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
            renew: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it, holding it.
    Create,
    /// We hold it and it is time to renew.
    Renew,
    /// We hold it, and it is fresh.
    Hold,
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
    let renewed = spec.renew_time.as_ref().map(|t| SystemTime::from(t.0));
    let duration = spec
        .lease_duration_seconds
        .map_or(cfg.duration, |s| Duration::from_secs(s.max(0) as u64));
    let age = renewed.map(|r| now.duration_since(r).unwrap_or_default());
    if holder == cfg.identity {
        return match age {
            Some(a) if a < cfg.renew => Decision::Hold,
            _ => Decision::Renew,
        };
    }
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

/// A running election; `is_leader` is true while our last renewal is valid.
#[derive(Debug, Clone)]
pub struct Elector {
    leader: Arc<AtomicBool>,
    api: Api<Lease>,
    cfg: LeaseConfig,
}

impl Elector {
    /// Starts electing on the caller's runtime.
    pub fn spawn(client: Client, cfg: LeaseConfig) -> Elector {
        let api = Api::<Lease>::namespaced(client, &cfg.namespace);
        let e = Elector {
            leader: Arc::new(AtomicBool::new(false)),
            api,
            cfg,
        };
        let run = e.clone();
        tokio::spawn(async move { run.run().await });
        e
    }

    /// True while we hold the Lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    async fn run(&self) {
        let mut last_renew: Option<Instant> = None;
        loop {
            let step = self.step().await;
            match step {
                Ok(true) => last_renew = Some(Instant::now()),
                Ok(false) => last_renew = None,
                Err(e) => warn!(error = %e, lease = %self.cfg.name, "lease request failed"),
            }
            // Leader while the last successful renewal is younger than the Lease duration.
            let lead = last_renew.is_some_and(|t| t.elapsed() < self.cfg.duration);
            if lead != self.leader.swap(lead, Ordering::SeqCst) {
                if lead {
                    info!(identity = %self.cfg.identity, lease = %self.cfg.name, "acquired the lease: this replica remediates");
                } else {
                    info!(identity = %self.cfg.identity, lease = %self.cfg.name, "not the lease holder: this replica only probes");
                }
            }
            let wait = if lead {
                self.cfg.renew.min(self.cfg.retry * 2)
            } else {
                self.cfg.retry
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One try; Ok(true) when we hold a freshly renewed (or still fresh) Lease.
    async fn step(&self) -> Result<bool, kube::Error> {
        let now = SystemTime::now();
        let current = self.api.get_opt(&self.cfg.name).await?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.cfg,
            now,
        );
        let spec = |acquire: bool, old: Option<&LeaseSpec>| LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.duration.as_secs() as i32),
            acquire_time: if acquire {
                micro(now)
            } else {
                old.and_then(|o| o.acquire_time.clone())
            },
            renew_time: micro(now),
            lease_transitions: Some(
                old.and_then(|o| o.lease_transitions).unwrap_or(0)
                    + i32::from(acquire && old.is_some()),
            ),
            ..LeaseSpec::default()
        };
        match decision {
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(true, None)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Decision::Hold => Ok(true),
            Decision::Renew | Decision::Acquire => {
                let Some(mut lease) = current else {
                    return Ok(false);
                };
                let acquire = decision == Decision::Acquire;
                lease.spec = Some(spec(acquire, lease.spec.as_ref()));
                // The resourceVersion in `lease` makes this a compare-and-swap: a 409 means
                // someone else wrote first.
                match self
                    .api
                    .replace(&self.cfg.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Decision::Follow(_) => Ok(false),
        }
    }

    /// Gives the Lease up if we hold it (on shutdown), so another replica takes over at once.
    pub async fn release(&self) {
        if !self.leader.swap(false, Ordering::SeqCst) {
            return;
        }
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.cfg.identity.as_str())
        {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let _ = self
                .api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
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
        assert_eq!(decide(Some(&spec("me", 3, now)), &c, now), Decision::Hold);
        assert_eq!(decide(Some(&spec("me", 11, now)), &c, now), Decision::Renew);
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
    }
}
