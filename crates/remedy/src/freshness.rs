//! Freshness: how long a new or changed Service takes to resolve through cluster DNS, and the
//! names that still resolve to a deleted or replaced Service's address.
//!
//! CoreDNS learns Services from its own watch of the API (the `kubernetes` plugin) and caches
//! answers (the `cache` plugin, 30 s by default). A CoreDNS pod whose watch stalled answers from
//! an old picture of the cluster: new Services do not resolve, deleted ones still do. The
//! controller watches Services cluster-wide (read-only; one watch in one place, where 5,000
//! agents would be 5,000 watches of every Service) and follows each change it sees after its
//! first list — a Service `added`, `changed` (deleted and created again with another address,
//! or its ClusterIP changed) or `deleted` — by asking the DNS Service's ClusterIP for the name
//! (`NAME.NAMESPACE.svc.DOMAIN`), as a client would:
//!
//! - **propagation**: the first of [`CONFIRM`] right answers in a row (the new address and not
//!   the old; for a deleted Service, no longer the old one) is when the change reached cluster
//!   DNS: the time from the change is observed in the histogram. The queries start 100 ms after
//!   the change and double their spacing up to a twentieth of the give-up time (2 s at most),
//!   each spacing varied by ±20% so that follows do not fall in step with a round-robin
//!   balancer;
//! - **stale**: the follow goes on until the give-up time; an old address answered in its second
//!   half (past CoreDNS's cache, with the default 60 s give-up) makes the name `stale`. Behind
//!   the Service one CoreDNS pod of several may be stale and answer only the queries a balancer
//!   sends it, so in that second half every other query goes to a CoreDNS pod directly, each
//!   follow taking the pods in turn from a starting point of its own (their addresses from the
//!   controller's watch, on the Service's target port): a stale pod is asked whatever the
//!   balancer does, and named — about 7 pods per follow at the defaults; with more CoreDNS pods
//!   each follow asks a different share. A change never right by
//!   the give-up time, with no late old answer, is `not-propagated`.
//!
//! A stale name is kept and asked again every quarter of the give-up time until it answers right
//! [`CLEAR`] times in a row. Bounded: at most `follow` changes followed at once (the others are
//! counted as skipped), each for the give-up time (about 35 queries at the defaults), and at
//! most `follow` stale names. Headless and ExternalName Services are not followed (their names
//! do not answer a ClusterIP); nor are changes made while the watch relists (when they
//! happened is not known).
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
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tracing::{debug, info, warn};

use crate::watch::{RECHECK, WatchHealth};

/// Right answers in a row that mark a change as propagated.
pub const CONFIRM: u32 = 3;
/// Right answers in a row that clear a stale name (one stale CoreDNS pod of two behind the
/// Service is missed by 6 queries once in 64).
pub const CLEAR: u32 = 6;
/// The first probe after a change.
const FIRST_STEP: Duration = Duration::from_millis(100);
/// The widest spacing between probes of a followed change.
const MAX_STEP: Duration = Duration::from_secs(2);
/// Results kept for `/status`.
const LAST_RESULTS: usize = 10;
/// Completed results kept for the round to read at most (a round drains them).
const MAX_PENDING: usize = 1000;

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

/// What a follow reports: the propagation time when it is known, then how it ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Right [`CONFIRM`] times in a row, the first of them this long after the change (the
    /// follow goes on, for stale answers).
    Resolved(Duration),
    /// Ended: resolved (this long after the change) and no old address late in the follow.
    Propagated(Duration),
    /// Ended: an old address answered in the second half of the give-up time.
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
            Outcome::Resolved(_) => "resolved",
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
    /// When it became right ([`CONFIRM`] in a row), after the change.
    resolved: Option<Duration>,
    /// Old addresses answered in the second half of the give-up time.
    late_old: u32,
    /// Queries sent.
    sent: u32,
    /// Where its turn over the CoreDNS pods starts.
    first_pod: usize,
    /// The CoreDNS pods that answered the old address (empty: seen through the Service only).
    stale_pods: Vec<String>,
}

impl Follow {
    /// Takes one answer at `at`; what it reports. `jitter` (0.8 to 1.2) varies the next
    /// spacing.
    fn observe(&mut self, seen: Seen, at: Instant, jitter: f64) -> Vec<Outcome> {
        if seen == Seen::Right {
            self.run_start.get_or_insert(at);
            self.run += 1;
        } else {
            self.run = 0;
            self.run_start = None;
        }
        let Some(deadline) = self.deadline else {
            // A stale name, asked again until it is right.
            self.next = at + self.step.mul_f64(jitter);
            return if self.run >= CLEAR {
                vec![Outcome::Cleared]
            } else {
                Vec::new()
            };
        };
        let mut out = Vec::new();
        let half = self.since + deadline.saturating_duration_since(self.since) / 2;
        if seen == Seen::Old && at >= half {
            self.late_old += 1;
        }
        if self.run >= CONFIRM && self.resolved.is_none() {
            let d = (self.run_start.unwrap_or(at)).saturating_duration_since(self.since);
            self.resolved = Some(d);
            out.push(Outcome::Resolved(d));
        }
        if at >= deadline {
            out.push(match self.resolved {
                _ if self.late_old > 0 => Outcome::Stale,
                Some(d) => Outcome::Propagated(d),
                None => Outcome::NotPropagated,
            });
            return out;
        }
        self.step = match self.resolved {
            Some(_) => self.max_step,
            None => (self.step * 2).min(self.max_step),
        };
        self.next = (at + self.step.mul_f64(jitter)).min(deadline);
        out
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

/// One query of a follow.
#[derive(Debug, Clone)]
pub struct Query {
    /// The follow (`NAMESPACE/NAME`).
    pub key: String,
    /// The CoreDNS pod asked directly; `None`: the DNS Service.
    pub pod: Option<String>,
    /// The query.
    pub spec: ProbeSpec,
}

/// An answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The follow.
    pub key: String,
    /// The CoreDNS pod asked directly, if any.
    pub pod: Option<String>,
    /// What it says.
    pub seen: Seen,
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
    /// Its target port: the CoreDNS pods' own.
    pod_port: u16,
    /// The CoreDNS pods (name, address), asked in turn in the second half of a follow.
    pods: Vec<(String, IpAddr)>,
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
    /// The state of the spacing's jitter (splitmix64).
    rng: u64,
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
            pod_port: 53,
            pods: Vec::new(),
            listing: None,
            synced: false,
            follows: Vec::new(),
            stale: Vec::new(),
            deleted: BTreeMap::new(),
            skipped: 0,
            skipped_now: Vec::new(),
            completed: Vec::new(),
            last: VecDeque::new(),
            rng: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0u8)
            },
        }
    }

    /// A factor from 0.8 to 1.2 (splitmix64).
    fn jitter(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        0.8 + 0.4 * (z >> 11) as f64 / (1u64 << 53) as f64
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
        let dns = (ports.iter().find(|p| p.name.as_deref() == Some("dns")))
            .or_else(|| ports.iter().find(udp));
        self.dns_port = dns.and_then(|p| u16::try_from(p.port).ok()).unwrap_or(53);
        self.pod_port = match dns.and_then(|p| p.target_port.clone()) {
            Some(IntOrString::Int(p)) => u16::try_from(p).unwrap_or(self.dns_port),
            _ => self.dns_port,
        };
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
        let first_pod = (self.jitter() * 1e6) as usize;
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
            resolved: None,
            late_old: 0,
            sent: 0,
            first_pod,
            stale_pods: Vec::new(),
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

    /// The CoreDNS pods (name, address) to ask directly in the second half of a follow.
    pub fn set_pods(&mut self, pods: Vec<(String, IpAddr)>) {
        self.pods = pods;
    }

    /// The queries due at `now`, at most one per followed name.
    pub fn due(&mut self, now: Instant) -> Vec<Query> {
        let Some(server) = self.dns_server() else {
            return Vec::new();
        };
        let expect = Expectation::default()
            .with_rcodes([ResponseCode::NoError, ResponseCode::NXDomain])
            .with_answer(AnswerExpectation::Any);
        let (pods, port, timeout) = (&self.pods, self.pod_port, self.cfg.timeout);
        let mut out = Vec::new();
        for f in (self.follows.iter_mut().chain(&mut self.stale)).filter(|f| f.next <= now) {
            let late = match f.deadline {
                Some(d) => now >= f.since + d.saturating_duration_since(f.since) / 2,
                None => true,
            };
            f.sent += 1;
            // Each follow takes the pods in turn from its own starting point: every pod is asked
            // (up to the number of its direct queries), whatever the other follows do.
            let pod = (late && f.sent.is_multiple_of(2) && !pods.is_empty()).then(|| {
                let i = (f.sent / 2) as usize + f.first_pod;
                pods[i % pods.len()].clone()
            });
            let target = pod
                .as_ref()
                .map_or(server, |(_, ip)| SocketAddr::new(*ip, port));
            let v6 = f.new.or(f.old).is_some_and(|ip| ip.is_ipv6());
            let spec = ProbeSpec::new(target)
                .with_name(f.name.clone())
                .with_query_type(if v6 { RecordType::AAAA } else { RecordType::A })
                .with_transport(TransportMode::Udp)
                .with_timeout(timeout)
                .with_attempts(1)
                .with_expect(expect.clone());
            out.push(Query {
                key: f.key.clone(),
                pod: pod.map(|(name, _)| name),
                spec,
            });
        }
        out
    }

    /// Takes the answers to [`Tracker::due`]'s queries, received by `now`.
    pub fn record(&mut self, answers: &[Answer], now: Instant) {
        for a in answers {
            let jitter = self.jitter();
            let key = &a.key;
            let found = (self.follows.iter().position(|f| &f.key == key))
                .map(|i| (false, i))
                .or_else(|| {
                    self.stale
                        .iter()
                        .position(|f| &f.key == key)
                        .map(|i| (true, i))
                });
            let Some((stale, i)) = found else { continue };
            let list = if stale {
                &mut self.stale
            } else {
                &mut self.follows
            };
            if let Some(pod) = a.pod.as_ref().filter(|_| a.seen == Seen::Old)
                && !list[i].stale_pods.contains(pod)
            {
                list[i].stale_pods.push(pod.clone());
            }
            let outcomes = list[i].observe(a.seen, now, jitter);
            if outcomes.is_empty() {
                continue;
            }
            let ended = outcomes.iter().any(|o| !matches!(o, Outcome::Resolved(_)));
            let f = if ended {
                list.remove(i)
            } else {
                list[i].clone()
            };
            for o in outcomes {
                self.report(&f, o);
            }
            if ended && outcomes_stale(&f) {
                self.keep_stale(f);
            }
        }
    }

    /// A follow that ended stale is asked again every quarter of the give-up time (at most
    /// `follow` of them).
    fn keep_stale(&mut self, mut f: Follow) {
        if self.stale.len() >= self.cfg.follow.max(1) {
            return;
        }
        f.deadline = None;
        f.step = (self.cfg.give_up / 4).max(FIRST_STEP);
        f.next += f.step;
        f.run = 0;
        f.run_start = None;
        self.stale.push(f);
    }

    fn report(&mut self, f: &Follow, o: Outcome) {
        let name = f.name.to_ascii();
        if !matches!(o, Outcome::Resolved(_) | Outcome::Cleared) {
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
                    pods: f.stale_pods.clone(),
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

/// A follow that ended with late old answers (a follow's deadline is still set when it ends).
fn outcomes_stale(f: &Follow) -> bool {
    f.deadline.is_some() && f.late_old > 0
}

/// What the round reads from the running check.
#[derive(Debug, Default)]
struct Shared {
    health: WatchHealth,
    view: FreshnessView,
    completed: Vec<Completed>,
    skipped: Vec<Change>,
    pods: Vec<(String, IpAddr)>,
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

    /// The CoreDNS pods (name, address) to ask directly in the second half of a follow.
    pub fn set_pods(&self, pods: Vec<(String, IpAddr)>) {
        self.lock().pods = pods;
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
                    // Read now: the flag may have changed while this waited for the event.
                    let on = active.load(Ordering::Relaxed);
                    t.event(ev, Instant::now(), SystemTime::now(), on);
                }
                Some(Err(e)) => lock().health.last_error = Some(e.to_string()),
            },
            () = tokio::time::sleep_until(next.unwrap_or(far).min(far)) => {
                t.set_pods(lock().pods.clone());
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
    let specs: Vec<ProbeSpec> = due.iter().map(|q| q.spec.clone()).collect();
    let reports = prober.probe_many(&specs, prober.deadline_for(&specs)).await;
    let answers: Vec<Answer> = (due.into_iter().zip(&reports))
        .filter_map(|(q, r)| {
            let (new, old) = t.addresses(&q.key)?;
            Some(Answer {
                seen: classify_answer(r, new, old),
                key: q.key,
                pod: q.pod,
            })
        })
        .collect();
    t.record(&answers, Instant::now());
}

fn log(done: &[Completed]) {
    for c in done {
        let event = c.change.as_str();
        let old = c.old.map(|o| o.to_string()).unwrap_or_default();
        match c.outcome {
            Outcome::Resolved(d) => {
                debug!(name = %c.name, event, seconds = d.as_secs_f64(), "Service change resolves through cluster DNS")
            }
            Outcome::Propagated(_) => {}
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

    /// Answers every query due until `until` with `seen(n)` (n counts the answers).
    fn answer_until(t: &mut Tracker, until: Instant, mut seen: impl FnMut(u32) -> Seen) {
        let mut n = 0;
        while let Some(at) = t.next_due().filter(|at| *at <= until) {
            let answers: Vec<Answer> = (t.due(at).into_iter())
                .map(|q| {
                    n += 1;
                    Answer {
                        key: q.key,
                        pod: q.pod,
                        seen: seen(n),
                    }
                })
                .collect();
            t.record(&answers, at);
        }
    }

    #[test]
    fn a_new_service_resolves_after_three_right_answers_and_propagates_at_the_give_up_time() {
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
        assert_eq!(due[0].spec.name.to_ascii(), "web.shop.svc.cluster.local.");
        assert_eq!(due[0].spec.target, "10.96.0.10:53".parse().unwrap());
        assert_eq!(due[0].pod, None, "the Service, as a client asks");
        // NXDOMAIN at 100 ms, then right.
        answer_until(&mut t, t0 + Duration::from_secs(3), |n| {
            if n == 1 { Seen::Wrong } else { Seen::Right }
        });
        let done = t.take_completed();
        assert_eq!(done.len(), 1, "{done:?}");
        // The first right answer was the second query: 100 ms + 200 ms (±20%) after the change.
        let Outcome::Resolved(d) = done[0].outcome else {
            panic!("{done:?}")
        };
        assert!(
            d >= Duration::from_millis(260) && d <= Duration::from_millis(340),
            "{d:?}"
        );
        assert_eq!(
            t.view().followed,
            1,
            "followed until the give-up time, for stale answers"
        );
        answer_until(&mut t, t0 + Duration::from_secs(11), |_| Seen::Right);
        let done = t.take_completed();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(
            (done[0].change, done[0].outcome),
            (Change::Added, Outcome::Propagated(d))
        );
        assert_eq!(t.view().last[0].result, "propagated");
        assert_eq!(t.next_due(), None, "nothing followed any more");
    }

    #[test]
    fn a_replaced_service_answering_its_old_address_late_is_stale_until_right() {
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
        let alternate = |n: u32| {
            if n.is_multiple_of(2) {
                Seen::Old
            } else {
                Seen::Right
            }
        };
        answer_until(&mut t, t0 + Duration::from_secs(10), alternate);
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
        // Asked again every 2.5 s (±20%), until right six times in a row.
        answer_until(&mut t, t0 + Duration::from_secs(30), alternate);
        assert!(t.take_completed().is_empty());
        answer_until(&mut t, t0 + Duration::from_secs(60), |_| Seen::Right);
        assert_eq!(t.take_completed()[0].outcome, Outcome::Cleared);
        assert!(t.view().stale.is_empty());
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn old_answers_within_the_cache_time_are_not_stale() {
        let (mut t, t0) = tracker(20);
        let wall = SystemTime::now();
        t.event(
            watcher::Event::Delete(svc("shop", "old", "10.96.5.5")),
            t0,
            wall,
            true,
        );
        // Old for the first 4 s (a cache), gone after: propagated, not stale.
        let mut at = t0;
        while let Some(next) = t.next_due().filter(|n| *n <= t0 + Duration::from_secs(10)) {
            at = next;
            let seen = if at < t0 + Duration::from_secs(4) {
                Seen::Old
            } else {
                Seen::Right
            };
            let due: Vec<Answer> = (t.due(at).into_iter())
                .map(|q| Answer {
                    key: q.key,
                    pod: q.pod,
                    seen,
                })
                .collect();
            t.record(&due, at);
        }
        assert!(at >= t0 + Duration::from_secs(10));
        let done = t.take_completed();
        assert!(
            matches!(done[1].outcome, Outcome::Propagated(d) if d >= Duration::from_secs(4)),
            "{done:?}"
        );
    }

    #[test]
    fn a_deleted_service_never_gone_is_not_propagated_and_the_cap_skips() {
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
        // DNS does not answer at all: not propagated (and not stale).
        answer_until(&mut t, t0 + Duration::from_secs(11), |_| Seen::NoAnswer);
        assert_eq!(t.take_completed()[0].outcome, Outcome::NotPropagated);
        assert!(t.view().stale.is_empty());
        // A replica that is not the Lease holder keeps the Services, follows nothing.
        t.event(
            watcher::Event::Apply(svc("shop", "c", "10.96.5.10")),
            t0,
            wall,
            false,
        );
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn a_stale_pod_the_balancer_never_picks_is_asked_directly_and_named() {
        let (mut t, t0) = tracker(20);
        let wall = SystemTime::now();
        t.set_pods(vec![
            ("coredns-a".into(), "10.244.0.2".parse().unwrap()),
            ("coredns-b".into(), "10.244.1.2".parse().unwrap()),
        ]);
        // Known (not followed: not the Lease holder yet), then two deleted at once.
        t.event(
            watcher::Event::Apply(svc("shop", "two", "10.96.5.7")),
            t0,
            wall,
            false,
        );
        for name in ["old", "two"] {
            t.event(
                watcher::Event::Delete(svc("shop", name, "10.96.5.5")),
                t0,
                wall,
                true,
            );
        }
        // The Service always lands on coredns-a (fresh); coredns-b still has the record.
        let mut asked = Vec::new();
        while let Some(at) = t.next_due().filter(|a| *a <= t0 + Duration::from_secs(10)) {
            let answers: Vec<Answer> = (t.due(at).into_iter())
                .map(|q| {
                    asked.push((q.pod.clone(), q.spec.target));
                    let seen = match q.pod.as_deref() {
                        Some("coredns-b") => Seen::Old,
                        _ => Seen::Right,
                    };
                    Answer {
                        key: q.key,
                        pod: q.pod,
                        seen,
                    }
                })
                .collect();
            t.record(&answers, at);
        }
        assert!(asked.contains(&(Some("coredns-b".into()), "10.244.1.2:53".parse().unwrap())));
        assert!(
            asked.iter().take(5).all(|(p, _)| p.is_none()),
            "the first half asks the Service only: {asked:?}"
        );
        let done = t.take_completed();
        let ends: Vec<Outcome> = (done.iter().map(|c| c.outcome))
            .filter(|o| !matches!(o, Outcome::Resolved(_)))
            .collect();
        assert_eq!(ends, [Outcome::Stale, Outcome::Stale], "{done:?}");
        let v = t.view();
        assert_eq!(v.stale.len(), 2, "{v:?}");
        assert!(v.stale.iter().all(|r| r.pods == ["coredns-b"]), "{v:?}");
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
