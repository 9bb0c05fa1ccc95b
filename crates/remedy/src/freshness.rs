//! Freshness: how long a new or changed Service takes to resolve through cluster DNS, and the
//! names that still resolve to a deleted or replaced Service's address.
//!
//! CoreDNS learns Services from its own watch of the API (the `kubernetes` plugin) and caches
//! answers (the `cache` plugin). A CoreDNS pod whose watch stalled answers from an old picture
//! of the cluster: new Services do not resolve, deleted ones still do. The controller watches
//! Services cluster-wide (read-only; one watch in one place, where 5,000 agents would be 5,000
//! watches of every Service) and, for each change it sees after its first list — a Service
//! `added`, `changed` (deleted and created again with another address, or its ClusterIP
//! changed) or `deleted` — asks the DNS Service's ClusterIP for the name
//! (`NAME.NAMESPACE.svc.DOMAIN`) until [`CONFIRM`] answers in a row are right: the new address
//! (not the old), or for a deleted Service no longer the old one. The time from the change to
//! the first of those answers is the propagation time. The probes start 100 ms after the change
//! and double their spacing up to a twentieth of the give-up time (2 s at most).
//!
//! Bounded: at most `follow` changes are followed at once (the others are counted as skipped);
//! a change that is not right by `give_up` ends as `stale` (an old address among the last
//! answers) or `not-propagated`. A stale name is kept and asked again every quarter of
//! `give_up` until it answers right [`CONFIRM`] times in a row; at most `follow` of them.
//! Headless and ExternalName Services are not followed (their names do not answer a ClusterIP);
//! changes made while the watch relists are not followed either (when they happened is not
//! known).
//!
//! [`Tracker`] is the state machine, with no I/O; [`Freshness`] runs it on a task with the watch
//! and the probes.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use dnsprobe::hickory_proto::op::ResponseCode;
use dnsprobe::hickory_proto::rr::{Name, RecordType};
use dnsprobe::{AnswerExpectation, Expectation, ProbeReport, ProbeSpec, Prober, TransportMode};
use futures_util::StreamExt;
use hc_exporter::{FreshnessResult, FreshnessView, StaleRecord};
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tracing::{debug, info, warn};

use crate::watch::WatchHealth;

/// Right answers in a row that end a follow (or clear a stale name): with several CoreDNS pods
/// behind the Service, one stale pod shows among them.
pub const CONFIRM: u32 = 3;
/// The first probe after a change.
const FIRST_STEP: Duration = Duration::from_millis(100);
/// The widest spacing between probes of a followed change.
const MAX_STEP: Duration = Duration::from_secs(2);
/// Results kept for `/status`.
const LAST_RESULTS: usize = 10;
/// Completed results kept for the round to read at most (a round drains them).
const MAX_PENDING: usize = 1000;
/// How often a watch showing an error is rechecked with a LIST of one object.
const RECHECK: Duration = Duration::from_secs(10);

/// The settings of the freshness check (flags of `hc-cli controller`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FreshnessConfig {
    /// Changes followed at once at most; 0 turns the check off.
    pub follow: usize,
    /// A change not right by then is `stale` or `not-propagated`.
    pub give_up: Duration,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// Namespace of the DNS Service.
    pub dns_namespace: String,
    /// Name of the DNS Service: the queries go to its ClusterIP.
    pub dns_service: String,
    /// Time allowed for one query.
    pub timeout: Duration,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        FreshnessConfig {
            follow: 20,
            give_up: Duration::from_secs(60),
            cluster_domain: "cluster.local".into(),
            dns_namespace: "kube-system".into(),
            dns_service: "kube-dns".into(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// A change of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new Service.
    Added,
    /// Its address changed (deleted and created again, or its ClusterIP changed).
    Changed,
    /// Deleted.
    Deleted,
}

impl Change {
    /// `added`, `changed`, `deleted`: the `event` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Deleted => "deleted",
        }
    }
}

/// What one answer says about a followed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The new address (and not the old one); for a deleted Service, not the old address.
    Right,
    /// The old address.
    Old,
    /// Neither (NXDOMAIN for a new Service, another address).
    Wrong,
    /// No usable answer (timeout, SERVFAIL, ...).
    NoAnswer,
}

/// Classifies an answer to a followed name, `new` and `old` being the Service's address after
/// and before the change.
pub fn classify_answer(r: &ProbeReport, new: Option<IpAddr>, old: Option<IpAddr>) -> Seen {
    if !r.healthy() {
        return Seen::NoAnswer;
    }
    let has = |ip: IpAddr| r.addresses.contains(&ip);
    match (new, old) {
        (_, Some(o)) if has(o) => Seen::Old,
        (Some(n), _) if !has(n) => Seen::Wrong,
        _ => Seen::Right,
    }
}

/// How a follow ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Right [`CONFIRM`] times in a row (or right at the give-up time, with no old address
    /// among the last answers), this long after the change.
    Propagated(Duration),
    /// An old address among the last answers at the give-up time.
    Stale,
    /// Never right by the give-up time, no old address seen last.
    NotPropagated,
    /// A stale name that answers right again.
    Cleared,
}

impl Outcome {
    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Propagated(_) => "propagated",
            Outcome::Stale => "stale",
            Outcome::NotPropagated => "not-propagated",
            Outcome::Cleared => "cleared",
        }
    }
}

/// One followed change (or a stale name asked again until it is right).
#[derive(Debug, Clone)]
struct Follow {
    key: String,
    name: Name,
    change: Change,
    new: Option<IpAddr>,
    old: Option<IpAddr>,
    since: Instant,
    since_wall: SystemTime,
    /// `None`: a stale name, asked every `step` until right.
    deadline: Option<Instant>,
    next: Instant,
    step: Duration,
    max_step: Duration,
    run: u32,
    run_start: Option<Instant>,
    /// The last answers, newest in bit 0: 1 where the old address was answered.
    olds: u32,
}

impl Follow {
    /// Takes one answer at `at`; the outcome when the follow ends.
    fn observe(&mut self, seen: Seen, at: Instant) -> Option<Outcome> {
        self.olds = ((self.olds << 1) | u32::from(seen == Seen::Old)) & ((1 << CONFIRM) - 1);
        if seen == Seen::Right {
            self.run_start.get_or_insert(at);
            self.run += 1;
        } else {
            self.run = 0;
            self.run_start = None;
        }
        let right_for = |s: &Follow| s.run_start.map(|r| r.saturating_duration_since(s.since));
        if self.run >= CONFIRM {
            return Some(match self.deadline {
                Some(_) => Outcome::Propagated(right_for(self).unwrap_or_default()),
                None => Outcome::Cleared,
            });
        }
        if let Some(d) = self.deadline {
            if at >= d {
                return Some(if self.olds != 0 {
                    Outcome::Stale
                } else if let Some(t) = right_for(self) {
                    Outcome::Propagated(t)
                } else {
                    Outcome::NotPropagated
                });
            }
            self.step = (self.step * 2).min(self.max_step);
            self.next = (at + self.step).min(d);
        } else {
            self.next = at + self.step;
        }
        None
    }
}

/// A Service as the tracker keeps it: its first ClusterIP.
type Known = BTreeMap<String, IpAddr>;

/// A follow that ended, for the metrics and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    /// The name followed.
    pub name: String,
    /// The change.
    pub change: Change,
    /// How it ended.
    pub outcome: Outcome,
    /// The old address, if any.
    pub old: Option<IpAddr>,
}

/// The freshness check's state machine: the Services known, the changes followed, the stale
/// names. No I/O: [`Tracker::event`] takes the watch's events, [`Tracker::due`] gives the queries
/// to send, [`Tracker::record`] takes their answers.
#[derive(Debug)]
pub struct Tracker {
    cfg: FreshnessConfig,
    known: Known,
    /// The DNS Service's UDP port.
    dns_port: u16,
    /// Filled during a (re)list; replaces `known` at its end.
    listing: Option<Known>,
    synced: bool,
    follows: Vec<Follow>,
    stale: Vec<Follow>,
    /// Recently deleted Services (key -> address, when): a creation soon after is a change.
    deleted: BTreeMap<String, (IpAddr, Instant)>,
    /// Changes not followed (the cap), since start.
    pub skipped: u64,
    /// Changes not followed, since the last [`Tracker::take_skipped`].
    skipped_now: Vec<Change>,
    completed: Vec<Completed>,
    last: VecDeque<FreshnessResult>,
}

/// The first ClusterIP of a Service that has one to answer: not headless, not ExternalName.
fn cluster_ip(svc: &Service) -> Option<IpAddr> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.cluster_ip.as_deref()?.parse().ok()
}

fn key_of(svc: &Service) -> Option<String> {
    Some(format!(
        "{}/{}",
        svc.metadata.namespace.as_deref()?,
        svc.metadata.name.as_deref()?
    ))
}

impl Tracker {
    /// A tracker with `cfg`, knowing no Service yet.
    pub fn new(cfg: FreshnessConfig) -> Tracker {
        Tracker {
            cfg,
            known: Known::new(),
            dns_port: 53,
            listing: None,
            synced: false,
            follows: Vec::new(),
            stale: Vec::new(),
            deleted: BTreeMap::new(),
            skipped: 0,
            skipped_now: Vec::new(),
            completed: Vec::new(),
            last: VecDeque::new(),
        }
    }

    /// The DNS server the queries go to: the DNS Service's ClusterIP, once known.
    pub fn dns_server(&self) -> Option<SocketAddr> {
        let key = format!("{}/{}", self.cfg.dns_namespace, self.cfg.dns_service);
        self.known
            .get(&key)
            .map(|ip| SocketAddr::new(*ip, self.dns_port))
    }

    /// Takes one event of the Services watch at `now`; `follow`: start following changes (the
    /// Lease holder), else only keep the Services current.
    pub fn event(
        &mut self,
        ev: watcher::Event<Service>,
        now: Instant,
        wall: SystemTime,
        follow: bool,
    ) {
        match ev {
            watcher::Event::Init => self.listing = Some(Known::new()),
            watcher::Event::InitApply(svc) => {
                self.note_dns_port(&svc);
                if let (Some(l), Some(k), Some(ip)) =
                    (&mut self.listing, key_of(&svc), cluster_ip(&svc))
                {
                    l.insert(k, ip);
                }
            }
            watcher::Event::InitDone => {
                // Changes made while relisting are not followed: when they happened is unknown.
                self.known = self.listing.take().unwrap_or_default();
                self.synced = true;
            }
            watcher::Event::Apply(svc) => {
                self.note_dns_port(&svc);
                let (Some(k), ip) = (key_of(&svc), cluster_ip(&svc)) else {
                    return;
                };
                let before = self.known.get(&k).copied();
                match ip {
                    Some(ip) => self.known.insert(k.clone(), ip),
                    None => self.known.remove(&k),
                };
                let recently = (self.deleted.remove(&k))
                    .filter(|(_, at)| now.saturating_duration_since(*at) < self.cfg.give_up)
                    .map(|(ip, _)| ip);
                let change = match (before.or(recently), ip) {
                    (None, Some(_)) => Change::Added,
                    (Some(b), Some(a)) if a != b => Change::Changed,
                    (Some(_), None) => Change::Deleted,
                    _ => return,
                };
                if self.synced && follow {
                    self.start(k, change, ip, before.or(recently), now, wall);
                }
            }
            watcher::Event::Delete(svc) => {
                let Some(k) = key_of(&svc) else { return };
                let Some(old) = self.known.remove(&k) else {
                    return;
                };
                self.deleted.insert(k.clone(), (old, now));
                let give_up = self.cfg.give_up;
                self.deleted
                    .retain(|_, (_, at)| now.saturating_duration_since(*at) < give_up);
                if self.synced && follow {
                    self.start(k, Change::Deleted, None, Some(old), now, wall);
                }
            }
        }
    }

    fn note_dns_port(&mut self, svc: &Service) {
        let is_dns = svc.metadata.name.as_deref() == Some(self.cfg.dns_service.as_str())
            && svc.metadata.namespace.as_deref() == Some(self.cfg.dns_namespace.as_str());
        if !is_dns {
            return;
        }
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let udp =
            |p: &&k8s_openapi::api::core::v1::ServicePort| p.protocol.as_deref() == Some("UDP");
        let port = (ports.iter().find(|p| p.name.as_deref() == Some("dns")))
            .or_else(|| ports.iter().find(udp))
            .and_then(|p| u16::try_from(p.port).ok());
        self.dns_port = port.unwrap_or(53);
    }

    /// Starts following a change of `key` (replacing a follow or stale name of the same key).
    fn start(
        &mut self,
        key: String,
        change: Change,
        new: Option<IpAddr>,
        old: Option<IpAddr>,
        now: Instant,
        wall: SystemTime,
    ) {
        self.follows.retain(|f| f.key != key);
        self.stale.retain(|f| f.key != key);
        if self.follows.len() >= self.cfg.follow {
            self.skipped += 1;
            self.skipped_now.push(change);
            return;
        }
        let Some(name) = self.name_of(&key) else {
            return;
        };
        let max_step = (self.cfg.give_up / 20).clamp(FIRST_STEP, MAX_STEP);
        self.follows.push(Follow {
            key,
            name,
            change,
            new,
            old,
            since: now,
            since_wall: wall,
            deadline: Some(now + self.cfg.give_up),
            next: now + FIRST_STEP,
            step: FIRST_STEP,
            max_step,
            run: 0,
            run_start: None,
            olds: 0,
        });
    }

    /// `NAME.NAMESPACE.svc.DOMAIN.` for `NAMESPACE/NAME`.
    fn name_of(&self, key: &str) -> Option<Name> {
        let (ns, name) = key.split_once('/')?;
        let domain = self.cfg.cluster_domain.trim_matches('.');
        Name::from_ascii(format!("{name}.{ns}.svc.{domain}.")).ok()
    }

    /// Stops following (this replica lost the Lease): the follows are dropped, not counted.
    pub fn pause(&mut self) {
        self.follows.clear();
        self.stale.clear();
    }

    /// When the next query is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        (self.follows.iter().chain(&self.stale))
            .map(|f| f.next)
            .min()
    }

    /// The queries due at `now`: (follow key, spec), at most one per followed name.
    pub fn due(&self, now: Instant) -> Vec<(String, ProbeSpec)> {
        let Some(server) = self.dns_server() else {
            return Vec::new();
        };
        let expect = Expectation::default()
            .with_rcodes([ResponseCode::NoError, ResponseCode::NXDomain])
            .with_answer(AnswerExpectation::Any);
        (self.follows.iter().chain(&self.stale))
            .filter(|f| f.next <= now)
            .map(|f| {
                let v6 = f.new.or(f.old).is_some_and(|ip| ip.is_ipv6());
                let spec = ProbeSpec::new(server)
                    .with_name(f.name.clone())
                    .with_query_type(if v6 { RecordType::AAAA } else { RecordType::A })
                    .with_transport(TransportMode::Udp)
                    .with_timeout(self.cfg.timeout)
                    .with_attempts(1)
                    .with_expect(expect.clone());
                (f.key.clone(), spec)
            })
            .collect()
    }

    /// Takes the answers to [`Tracker::due`]'s queries, received by `now`.
    pub fn record(&mut self, answers: &[(String, Seen)], now: Instant) {
        for (key, seen) in answers {
            if let Some(i) = self.follows.iter().position(|f| &f.key == key) {
                if let Some(o) = self.follows[i].observe(*seen, now) {
                    let f = self.follows.remove(i);
                    self.finish(f, o);
                }
            } else if let Some(i) = self.stale.iter().position(|f| &f.key == key)
                && let Some(o) = self.stale[i].observe(*seen, now)
            {
                let f = self.stale.remove(i);
                self.finish(f, o);
            }
        }
    }

    fn finish(&mut self, mut f: Follow, o: Outcome) {
        let name = f.name.to_ascii();
        if o == Outcome::Stale && self.stale.len() < self.cfg.follow.max(1) {
            // Asked again every quarter of the give-up time until it answers right.
            f.deadline = None;
            f.step = (self.cfg.give_up / 4).max(FIRST_STEP);
            f.next = f.next.max(f.since) + f.step;
            f.run = 0;
            f.run_start = None;
            self.stale.push(f.clone());
        }
        if o != Outcome::Cleared {
            let seconds = match o {
                Outcome::Propagated(d) => Some(d.as_secs_f64()),
                _ => None,
            };
            self.last.push_back(FreshnessResult {
                name: name.clone(),
                event: f.change.as_str().into(),
                result: o.as_str().into(),
                seconds,
            });
            while self.last.len() > LAST_RESULTS {
                self.last.pop_front();
            }
        }
        if self.completed.len() < MAX_PENDING {
            self.completed.push(Completed {
                name,
                change: f.change,
                outcome: o,
                old: f.old,
            });
        }
    }

    /// The follows that ended since the last call.
    pub fn take_completed(&mut self) -> Vec<Completed> {
        std::mem::take(&mut self.completed)
    }

    /// The changes not followed (the cap) since the last call.
    pub fn take_skipped(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.skipped_now)
    }

    /// What `/status` shows.
    pub fn view(&self) -> FreshnessView {
        FreshnessView {
            followed: self.follows.len(),
            skipped: self.skipped,
            last: self.last.iter().cloned().collect(),
            stale: (self.stale.iter())
                .map(|f| StaleRecord {
                    name: f.name.to_ascii(),
                    address: f.old.map(|a| a.to_string()).unwrap_or_default(),
                    current: f.new.map(|a| a.to_string()),
                    event: f.change.as_str().into(),
                    since_unix_ms: hc_exporter::unix_ms(f.since_wall),
                })
                .collect(),
        }
    }

    /// The old and new address of the follow (or stale name) `key`.
    fn addresses(&self, key: &str) -> Option<(Option<IpAddr>, Option<IpAddr>)> {
        (self.follows.iter().chain(&self.stale))
            .find(|f| f.key == key)
            .map(|f| (f.new, f.old))
    }
}

/// What the round reads from the running check.
#[derive(Debug, Default)]
struct Shared {
    health: WatchHealth,
    view: FreshnessView,
    completed: Vec<Completed>,
    skipped: Vec<Change>,
}

/// The freshness check running: the Services watch and the probes, on a task of its own (the
/// probes need a finer clock than the controller's rounds).
pub struct Freshness {
    shared: Arc<Mutex<Shared>>,
    active: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshness").finish_non_exhaustive()
    }
}

impl Freshness {
    /// Starts watching Services cluster-wide on the caller's runtime. It follows changes only
    /// while [`Freshness::set_active`] says so (the Lease holder: one measurement, one load).
    pub fn spawn(client: Client, cfg: FreshnessConfig) -> Freshness {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let active = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(
            Api::all(client),
            Tracker::new(cfg),
            shared.clone(),
            active.clone(),
        ));
        Freshness {
            shared,
            active,
            task,
        }
    }

    /// Follow changes (true on the Lease holder), or stop following.
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// The watch's health.
    pub fn health(&self) -> WatchHealth {
        self.lock().health.clone()
    }

    /// The follows that ended and the changes skipped since the last call, and the view now.
    pub fn take(&self) -> (Vec<Completed>, Vec<Change>, FreshnessView) {
        let mut s = self.lock();
        (
            std::mem::take(&mut s.completed),
            std::mem::take(&mut s.skipped),
            s.view.clone(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Freshness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    api: Api<Service>,
    mut t: Tracker,
    shared: Arc<Mutex<Shared>>,
    active: Arc<AtomicBool>,
) {
    let lock = || shared.lock().unwrap_or_else(|p| p.into_inner());
    let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let prober = Prober::new();
    let mut last_recheck = Instant::now();
    let mut was_active = false;
    loop {
        let on = active.load(Ordering::Relaxed);
        if was_active && !on {
            t.pause();
        }
        was_active = on;
        let next = t.next_due().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + RECHECK;
        tokio::select! {
            ev = stream.next() => match ev {
                None => return,
                Some(Ok(ev)) => {
                    let mut s = lock();
                    if matches!(ev, watcher::Event::InitDone) {
                        s.health.synced = true;
                    }
                    s.health.last_error = None;
                    drop(s);
                    t.event(ev, Instant::now(), SystemTime::now(), on);
                }
                Some(Err(e)) => lock().health.last_error = Some(e.to_string()),
            },
            () = tokio::time::sleep_until(next.unwrap_or(far).min(far)) => {
                probe_due(&mut t, &prober).await;
                if lock().health.last_error.is_some() && last_recheck.elapsed() >= RECHECK {
                    last_recheck = Instant::now();
                    let r = api.list(&ListParams::default().limit(1)).await;
                    lock().health.last_error = r.err().map(|e| e.to_string());
                }
            }
        }
        let (done, skipped) = (t.take_completed(), t.take_skipped());
        log(&done);
        let mut s = lock();
        s.completed.extend(done);
        s.completed.truncate(MAX_PENDING);
        s.skipped.extend(skipped);
        s.skipped.truncate(MAX_PENDING);
        s.view = if on {
            t.view()
        } else {
            FreshnessView::default()
        };
    }
}

/// Sends the queries due now and records their answers.
async fn probe_due(t: &mut Tracker, prober: &Prober) {
    let due = t.due(Instant::now());
    if due.is_empty() {
        return;
    }
    let specs: Vec<ProbeSpec> = due.iter().map(|(_, s)| s.clone()).collect();
    let reports = prober.probe_many(&specs, prober.deadline_for(&specs)).await;
    let answers: Vec<(String, Seen)> = (due.iter().zip(&reports))
        .filter_map(|((key, _), r)| {
            let (new, old) = t.addresses(key)?;
            Some((key.clone(), classify_answer(r, new, old)))
        })
        .collect();
    t.record(&answers, Instant::now());
}

fn log(done: &[Completed]) {
    for c in done {
        let event = c.change.as_str();
        let old = c.old.map(|o| o.to_string()).unwrap_or_default();
        match c.outcome {
            Outcome::Propagated(d) => {
                debug!(name = %c.name, event, seconds = d.as_secs_f64(), "Service change propagated to cluster DNS")
            }
            Outcome::Stale => {
                warn!(name = %c.name, event, old_address = %old, finding = "stale-record", "cluster DNS still answers the address of a deleted or replaced Service")
            }
            Outcome::NotPropagated => {
                warn!(name = %c.name, event, finding = "not-propagated", "cluster DNS did not answer a Service change in time")
            }
            Outcome::Cleared => info!(name = %c.name, "stale record cleared"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, ip: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap()
    }

    fn tracker(follow: usize) -> (Tracker, Instant) {
        let cfg = FreshnessConfig {
            follow,
            give_up: Duration::from_secs(10),
            ..FreshnessConfig::default()
        };
        let mut t = Tracker::new(cfg);
        let now = Instant::now();
        let wall = SystemTime::now();
        t.event(watcher::Event::Init, now, wall, true);
        t.event(
            watcher::Event::InitApply(svc("kube-system", "kube-dns", "10.96.0.10")),
            now,
            wall,
            true,
        );
        t.event(
            watcher::Event::InitApply(svc("shop", "old", "10.96.5.5")),
            now,
            wall,
            true,
        );
        t.event(watcher::Event::InitDone, now, wall, true);
        (t, now)
    }

    fn answer(t: &mut Tracker, seen: Seen, at: Instant) {
        let due: Vec<String> = t.due(at).into_iter().map(|(k, _)| k).collect();
        let answers: Vec<(String, Seen)> = due.into_iter().map(|k| (k, seen)).collect();
        t.record(&answers, at);
    }

    #[test]
    fn a_new_service_propagates_after_three_right_answers_in_a_row() {
        let (mut t, t0) = tracker(20);
        let wall = SystemTime::now();
        assert_eq!(t.dns_server(), Some("10.96.0.10:53".parse().unwrap()));
        // The first list is not followed.
        assert_eq!(t.next_due(), None);
        t.event(
            watcher::Event::Apply(svc("shop", "web", "10.96.7.7")),
            t0,
            wall,
            true,
        );
        let due = t.due(t0 + FIRST_STEP);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.name.to_ascii(), "web.shop.svc.cluster.local.");
        assert_eq!(due[0].1.target, "10.96.0.10:53".parse().unwrap());
        let mut at = t0 + FIRST_STEP;
        answer(&mut t, Seen::Wrong, at);
        for _ in 0..3 {
            at = t.next_due().unwrap();
            answer(&mut t, Seen::Right, at);
        }
        let done = t.take_completed();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].change, Change::Added);
        // The first right answer was the second probe: 100 ms + 200 ms after the change.
        assert_eq!(
            done[0].outcome,
            Outcome::Propagated(Duration::from_millis(300))
        );
        assert_eq!(t.view().last[0].result, "propagated");
        assert_eq!(t.next_due(), None, "nothing followed any more");
    }

    #[test]
    fn a_replaced_service_answering_its_old_address_is_stale_until_right() {
        let (mut t, t0) = tracker(20);
        let wall = SystemTime::now();
        t.event(
            watcher::Event::Delete(svc("shop", "old", "10.96.5.5")),
            t0,
            wall,
            true,
        );
        t.event(
            watcher::Event::Apply(svc("shop", "old", "10.96.5.6")),
            t0,
            wall,
            true,
        );
        assert_eq!(
            t.view().followed,
            1,
            "the re-creation replaces the deletion"
        );
        // One of two CoreDNS pods stale: right, old, right, old, ...
        let mut seen = Seen::Right;
        while let Some(at) = t.next_due() {
            if at > t0 + Duration::from_secs(10) {
                break;
            }
            answer(&mut t, seen, at);
            seen = if seen == Seen::Right {
                Seen::Old
            } else {
                Seen::Right
            };
        }
        let done = t.take_completed();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(
            (done[0].change, done[0].outcome),
            (Change::Changed, Outcome::Stale)
        );
        let v = t.view();
        assert_eq!(v.stale.len(), 1);
        assert_eq!(v.stale[0].address, "10.96.5.5");
        assert_eq!(v.stale[0].current.as_deref(), Some("10.96.5.6"));
        // Asked again until right three times in a row.
        for _ in 0..3 {
            let at = t.next_due().unwrap();
            answer(&mut t, Seen::Right, at);
        }
        assert_eq!(t.take_completed()[0].outcome, Outcome::Cleared);
        assert!(t.view().stale.is_empty());
    }

    #[test]
    fn a_deleted_service_is_right_when_its_address_is_gone_and_the_cap_skips() {
        let (mut t, t0) = tracker(1);
        let wall = SystemTime::now();
        t.event(
            watcher::Event::Delete(svc("shop", "old", "10.96.5.5")),
            t0,
            wall,
            true,
        );
        t.event(
            watcher::Event::Apply(svc("shop", "b", "10.96.5.9")),
            t0,
            wall,
            true,
        );
        assert_eq!((t.skipped, t.take_skipped()), (1, vec![Change::Added]));
        // Never gone: not-propagated if no old answer last... here the old stays: stale.
        while let Some(at) = t.next_due() {
            if at > t0 + Duration::from_secs(10) {
                break;
            }
            answer(&mut t, Seen::NoAnswer, at);
        }
        assert_eq!(t.take_completed()[0].outcome, Outcome::NotPropagated);
        // A follower that is not the Lease holder keeps the Services, follows nothing.
        t.event(
            watcher::Event::Apply(svc("shop", "c", "10.96.5.10")),
            t0,
            wall,
            false,
        );
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn answers_are_classified_by_the_addresses() {
        let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap());
        let mut r = ProbeReport::failed(
            &spec,
            dnsprobe::Transport::Udp,
            dnsprobe::Failure::Timeout {
                attempts: 1,
                timeout: Duration::from_secs(1),
            },
        );
        let (new, old) = (
            Some("10.96.7.8".parse().unwrap()),
            Some("10.96.7.7".parse().unwrap()),
        );
        assert_eq!(classify_answer(&r, new, old), Seen::NoAnswer);
        r.failure = None;
        r.rcode = Some(ResponseCode::NoError);
        r.addresses = vec!["10.96.7.7".parse().unwrap()];
        assert_eq!(classify_answer(&r, new, old), Seen::Old);
        r.addresses = vec!["10.96.7.8".parse().unwrap()];
        assert_eq!(classify_answer(&r, new, old), Seen::Right);
        r.addresses.clear();
        assert_eq!(classify_answer(&r, new, old), Seen::Wrong);
        assert_eq!(classify_answer(&r, None, old), Seen::Right, "deleted: gone");
    }
}
