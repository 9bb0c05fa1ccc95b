//! One watch of the API (kube's reflector) with a health of its own: synced once, and whether
//! its last event was an error. One watch's success never clears another's error.
//!
//! A watch that resumes from its resourceVersion after an outage delivers nothing until an
//! object changes, so its stream alone cannot say the API is back. [`Watched::recheck`] asks
//! with one LIST of at most one object through the same selectors — a request the watch's own
//! RBAC rule (`list`) already grants — and only while the watch shows an error.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};

/// How often a watch showing an error is rechecked with a LIST of one object (the watcher's
/// own resumption delivers no event that would say it is back).
pub(crate) const RECHECK: Duration = Duration::from_secs(10);

/// The health of one watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchHealth {
    /// It has listed once.
    pub synced: bool,
    /// Its last error, while it lasts.
    pub last_error: Option<String>,
}

impl WatchHealth {
    /// Synced, and no error since.
    pub fn healthy(&self) -> bool {
        self.synced && self.last_error.is_none()
    }
}

/// A running watch: its store, its health, and the request to recheck it.
pub struct Watched<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    name: &'static str,
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    health: Arc<Mutex<WatchHealth>>,
    last_recheck: Mutex<Option<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl<K> Watched<K>
where
    K: Resource + Clone + fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    /// Starts watching `api` with `config` on the caller's runtime; `name` labels logs and
    /// metrics.
    pub fn spawn(name: &'static str, api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        let health = Arc::new(Mutex::new(WatchHealth::default()));
        let stream = reflector::reflector(
            writer,
            watcher(api.clone(), config.clone()).default_backoff(),
        );
        let h = health.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let mut h = h.lock().unwrap_or_else(|p| p.into_inner());
                match ev {
                    Ok(watcher::Event::InitDone) => {
                        h.synced = true;
                        h.last_error = None;
                    }
                    Ok(_) => h.last_error = None,
                    Err(e) => h.last_error = Some(e.to_string()),
                }
            }
        });
        Watched {
            name,
            api,
            config,
            store,
            health,
            last_recheck: Mutex::new(None),
            task,
        }
    }

    /// What it watches, for logs and metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The objects it holds now.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Its health now.
    pub fn health(&self) -> WatchHealth {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until it has listed once, at most `timeout`; false if it timed out.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.store.wait_until_ready())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// While it shows an error, at most once per `every`: one LIST of at most one object
    /// through its selectors; clears the error when it answers.
    pub async fn recheck(&self, every: Duration) {
        if self.health().last_error.is_none() {
            return;
        }
        {
            let mut last = self.last_recheck.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut lp = ListParams::default().limit(1);
        if let Some(l) = &self.config.label_selector {
            lp = lp.labels(l);
        }
        if let Some(f) = &self.config.field_selector {
            lp = lp.fields(f);
        }
        let result = self.api.list(&lp).await;
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => h.last_error = None,
            Err(e) => h.last_error = Some(e.to_string()),
        }
    }
}

impl<K: Resource + Clone + 'static> fmt::Debug for Watched<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: Resource + Clone + 'static> Drop for Watched<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}
