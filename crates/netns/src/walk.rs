//! The client's path: a short name resolved the way glibc's stub resolver resolves it from a
//! pod's own resolv.conf (resolv.conf(5); glibc's `res_search` and `res_send`), and how long a
//! glibc client would wait for it.
//!
//! The walk sends real queries, with the sweep's short timeout, and models glibc's clock on what
//! came back: the names of the search list in turn ([`ResolvConf::candidates`]); for each, A and
//! AAAA to the nameservers in order (`rotate`: starting at another one), in parallel from one
//! socket (`single-request`: one after the other), `attempts` rounds. A reply that does not come
//! costs a glibc client its `timeout` (5 s by default, scaled per nameserver:
//! [`ResolverOptions::wait_for`]); when one of A and AAAA came and the other did not, glibc waits
//! that long, then asks again one after the other on the same socket (and once more on a new
//! one): the 5 s delays of the conntrack race. NXDOMAIN and NODATA (and SERVFAIL from every
//! nameserver) move on to the next name; a name that never answers ends the lookup.
//!
//! Bounded: a nameserver that lost both queries is taken as lost for the rest of the lookup (its
//! later sends are modelled, not sent), and at most [`MAX_WALK_SENDS`] sends go out. A nameserver
//! the sweep may not query (not a known cluster-DNS address: see `SweepConfig::own_nameservers`)
//! ends the walk, incomplete, before anything is sent to it.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use dnsprobe::hickory_proto::op::ResponseCode;
use serde::Serialize;

use crate::finding::{Finding, FindingCode};
use crate::resolv::{ResolvConf, ResolverOptions};

/// The short name the walk resolves: the API server's Service, as a pod in any namespace writes
/// it. Through a `ClusterFirst` pod's search list it takes 4 queries: `<name>.<namespace>.svc.<domain>`
/// (NXDOMAIN) then `<name>.svc.<domain>`, A and AAAA each.
pub const CLIENT_LOOKUP_NAME: &str = "kubernetes.default";

/// Queries a `ClusterFirst` pod sends for [`CLIENT_LOOKUP_NAME`] when every server answers.
pub const CLUSTER_FIRST_QUERIES: u32 = 4;

/// At most this many sends (A and AAAA to one nameserver) per walk: at most twice as many
/// queries.
pub const MAX_WALK_SENDS: usize = 8;

/// What came back for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A reply to it.
    Reply {
        /// Its response code.
        rcode: ResponseCode,
        /// Records in its answer section.
        answers: u16,
        /// Time from sending the query to the reply.
        rtt: Duration,
    },
    /// Nothing within the walk's timeout (or an error: refused, unreachable).
    Lost,
}

impl Heard {
    fn rtt(&self) -> Option<Duration> {
        match self {
            Heard::Reply { rtt, .. } => Some(*rtt),
            Heard::Lost => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Heard::Reply { rcode, answers, .. } if *rcode == ResponseCode::NoError => {
                if *answers == 0 {
                    "NODATA".to_owned()
                } else {
                    format!("{answers} answer(s)")
                }
            }
            Heard::Reply { rcode, .. } => dnsprobe::rcode_name(*rcode),
            Heard::Lost => "lost".to_owned(),
        }
    }
}

/// What one send brought back: A, then AAAA (`None`: not sent, as when glibc asks one after the
/// other and the A query got nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// The A query.
    pub a: Heard,
    /// The AAAA query, if sent.
    pub aaaa: Option<Heard>,
}

/// One send the walk asks its sender for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The fully qualified name.
    pub name: String,
    /// The nameserver (port 53).
    pub nameserver: IpAddr,
    /// A, then AAAA once A answered (`single-request`); else both at once.
    pub sequential: bool,
    /// On a new socket; else on the socket of the previous send to this nameserver for this
    /// name (glibc's retry after a half-answered exchange).
    pub fresh: bool,
}

/// How the lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LookupResult {
    /// A name of the search list answered with a record.
    Answered,
    /// Every name tried got NXDOMAIN or NODATA (or SERVFAIL): the name does not resolve.
    NotFound,
    /// A name got no answer from any nameserver (or a refusal): glibc gives up.
    Failed,
    /// The walk stopped before the end: a nameserver it may not query, or its send limit.
    Incomplete,
}

impl LookupResult {
    /// `answered`, `not-found`, `failed`, `incomplete`: the `result` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupResult::Answered => "answered",
            LookupResult::NotFound => "not-found",
            LookupResult::Failed => "failed",
            LookupResult::Incomplete => "incomplete",
        }
    }
}

impl fmt::Display for LookupResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the walk: a send, or one glibc would make that the walk modelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WalkStep {
    /// The name asked.
    pub name: String,
    /// The nameserver asked.
    pub nameserver: IpAddr,
    /// What came back: `A <what>, AAAA <what>`.
    pub outcome: String,
    /// The time a glibc client spends on this step, in milliseconds.
    pub wait_ms: f64,
    /// False when the walk did not send it: the nameserver had lost everything before.
    pub sent: bool,
}

/// A short name resolved through a namespace's resolv.conf, as glibc would.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientLookup {
    /// The name as the client writes it.
    pub name: String,
    /// How it ended.
    pub result: LookupResult,
    /// The queries a glibc client sends for it.
    pub queries: u32,
    /// The queries the walk sent (fewer when it modelled the sends to a lost nameserver).
    pub sent: u32,
    /// How long a glibc client waits for the result.
    #[serde(rename = "wait_ms", serialize_with = "as_ms")]
    pub wait: Duration,
    /// Queries whose reply did not come, each costing the client a timeout.
    pub lost: u32,
    /// The answered name, when one answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// Every step, in order.
    pub steps: Vec<WalkStep>,
    /// Why the walk stopped early, or what it could not model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn as_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_micros() as f64) / 1000.0)
}

impl ClientLookup {
    fn new(name: &str) -> Self {
        ClientLookup {
            name: name.to_owned(),
            result: LookupResult::Incomplete,
            queries: 0,
            sent: 0,
            wait: Duration::ZERO,
            lost: 0,
            answered_by: None,
            steps: Vec::new(),
            note: None,
        }
    }

    /// What the lookup says of the namespace whose resolv.conf is at `path`: the name does not
    /// resolve (`client-lookup-failed`), it resolves only after a retry timeout
    /// (`client-lookup-slow`, a warning), or it takes more queries than through a `ClusterFirst`
    /// pod's search list (`search-amplification`, a warning).
    pub fn findings(&self, path: &str) -> Vec<Finding> {
        let tried: Vec<String> = (self.steps.iter().map(|s| s.name.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let secs = self.wait.as_secs_f64();
        match self.result {
            LookupResult::NotFound => vec![Finding::new(
                FindingCode::ClientLookupFailed,
                format!(
                    "{} does not resolve through {path}: every name of its search list was tried ({}) and none exists; a glibc client gets \"Name or service not known\" after {secs:.1} s (check the search list: `cat {path}`)",
                    self.name,
                    tried.join(", ")
                ),
            )],
            LookupResult::Failed => vec![Finding::new(
                FindingCode::ClientLookupFailed,
                format!(
                    "{} does not resolve through {path}: a glibc client gives up after {secs:.1} s and {} queries ({} lost); see the probes of this namespace",
                    self.name, self.queries, self.lost
                ),
            )],
            LookupResult::Answered if self.lost > 0 => vec![Finding::new(
                FindingCode::ClientLookupSlow,
                format!(
                    "{} resolves through {path}, but a glibc client waits {secs:.1} s for it: {} of its {} queries got no reply and the resolver waited its timeout before asking again (a lost UDP packet, e.g. the conntrack race of parallel A and AAAA; `options single-request-reopen` or a node-local cache avoid it)",
                    self.name, self.lost, self.queries
                ),
            )],
            LookupResult::Answered if self.queries > CLUSTER_FIRST_QUERIES => {
                vec![Finding::new(
                    FindingCode::SearchAmplification,
                    format!(
                        "{} takes {} queries through the search list of {path} before {} answers; {CLUSTER_FIRST_QUERIES} through a ClusterFirst pod's (`cat {path}`)",
                        self.name,
                        self.queries,
                        self.answered_by.as_deref().unwrap_or("a name")
                    ),
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// How one name fared with all the nameservers.
enum NameOutcome {
    Answered,
    /// NXDOMAIN or NODATA: the search goes on.
    Absent,
    /// SERVFAIL from every nameserver: the search goes on (glibc's `got_servfail`).
    ServFail,
    /// No answer, or a refusal: the lookup ends.
    Failed,
    Stop(String),
}

/// How one send, with glibc's retries on the same nameserver, ended.
enum SendOutcome {
    Heard(Vec<Heard>),
    Lost,
    Stop(String),
}

struct Walker<'a, S> {
    opts: ResolverOptions,
    servers: Vec<IpAddr>,
    known: &'a dyn Fn(IpAddr) -> bool,
    send: S,
    /// glibc's mode, which sticks for the rest of the lookup once changed: 0 parallel,
    /// 1 single-request, 2 single-request-reopen.
    mode: u8,
    dead: BTreeSet<IpAddr>,
    sends: usize,
    out: ClientLookup,
}

/// Resolves `name` through `conf` as glibc would, sending each query through `send` (A and
/// AAAA to one nameserver per call), and never to a nameserver `known` refuses. See the module
/// documentation for the model.
pub async fn walk<S, F>(
    conf: &ResolvConf,
    name: &str,
    known: &dyn Fn(IpAddr) -> bool,
    send: S,
) -> ClientLookup
where
    S: FnMut(Ask) -> F,
    F: Future<Output = Exchange>,
{
    let opts = conf.resolver_options();
    let mut w = Walker {
        opts,
        servers: conf.effective_nameservers().to_vec(),
        known,
        send,
        mode: if opts.single_request_reopen {
            2
        } else {
            u8::from(opts.single_request)
        },
        dead: BTreeSet::new(),
        sends: 0,
        out: ClientLookup::new(name),
    };
    if opts.use_vc {
        w.out.note = Some("`options use-vc`: glibc asks over TCP; the walk asked over UDP".into());
    }
    if w.servers.is_empty() {
        w.out.note = Some("no nameserver: glibc would ask 127.0.0.1, not probed".into());
        return w.out;
    }
    let mut servfail = false;
    for (k, candidate) in conf.candidates(name).into_iter().enumerate() {
        match w.name(k, &candidate).await {
            NameOutcome::Answered => {
                w.out.result = LookupResult::Answered;
                w.out.answered_by = Some(candidate);
                return w.out;
            }
            NameOutcome::Absent => {}
            NameOutcome::ServFail => servfail = true,
            NameOutcome::Failed => {
                w.out.result = LookupResult::Failed;
                return w.out;
            }
            NameOutcome::Stop(why) => {
                w.out.note = Some(why);
                return w.out;
            }
        }
    }
    w.out.result = if servfail {
        LookupResult::Failed
    } else {
        LookupResult::NotFound
    };
    w.out
}

impl<S, F> Walker<'_, S>
where
    S: FnMut(Ask) -> F,
    F: Future<Output = Exchange>,
{
    /// One name of the search list: `attempts` rounds over the nameservers.
    async fn name(&mut self, k: usize, candidate: &str) -> NameOutcome {
        let n = self.servers.len();
        let mut servfail = false;
        for _ in 0..self.opts.attempts {
            for i in 0..n {
                let shift = if self.opts.rotate { k % n } else { 0 };
                let ns = self.servers[(i + shift) % n];
                let limit = self.opts.wait_for(i, n);
                let heard = match self.one_server(candidate, ns, limit).await {
                    SendOutcome::Stop(why) => return NameOutcome::Stop(why),
                    SendOutcome::Lost => continue,
                    SendOutcome::Heard(h) => h,
                };
                let answered = heard.iter().any(|h| {
                    matches!(h, Heard::Reply { rcode: ResponseCode::NoError, answers, .. } if *answers > 0)
                });
                if answered {
                    return NameOutcome::Answered;
                }
                let errors: Vec<ResponseCode> = (heard.iter())
                    .filter_map(|h| match h {
                        Heard::Reply { rcode, .. }
                            if matches!(
                                rcode,
                                ResponseCode::ServFail
                                    | ResponseCode::Refused
                                    | ResponseCode::NotImp
                            ) =>
                        {
                            Some(*rcode)
                        }
                        _ => None,
                    })
                    .collect();
                if !errors.is_empty() {
                    // glibc asks the next nameserver at once.
                    servfail |= errors.contains(&ResponseCode::ServFail);
                    continue;
                }
                return NameOutcome::Absent;
            }
        }
        if servfail {
            NameOutcome::ServFail
        } else {
            NameOutcome::Failed
        }
    }

    /// A and AAAA of `candidate` to `ns`, with glibc's retries when only one of them came back.
    async fn one_server(&mut self, candidate: &str, ns: IpAddr, limit: Duration) -> SendOutcome {
        if !(self.known)(ns) {
            return SendOutcome::Stop(format!(
                "glibc would ask {ns} next, which is not a cluster-DNS address: not probed"
            ));
        }
        if self.dead.contains(&ns) {
            self.step(
                candidate,
                ns,
                "A lost, AAAA lost (as before)".into(),
                limit,
                false,
            );
            self.out.queries += 2;
            self.out.lost += 2;
            return SendOutcome::Lost;
        }
        let mut fresh = true;
        loop {
            if self.sends >= MAX_WALK_SENDS {
                return SendOutcome::Stop(format!(
                    "stopped after {MAX_WALK_SENDS} sends ({} queries)",
                    self.out.sent
                ));
            }
            self.sends += 1;
            let sequential = self.mode > 0;
            let req = Ask {
                name: candidate.to_owned(),
                nameserver: ns,
                sequential,
                fresh,
            };
            let ex = (self.send)(req).await;
            let heard: Vec<Heard> = std::iter::once(ex.a).chain(ex.aaaa).collect();
            let asked = heard.len() as u32;
            let lost = heard.iter().filter(|h| **h == Heard::Lost).count() as u32;
            self.out.queries += asked;
            self.out.sent += asked;
            self.out.lost += lost;
            let rtts: Vec<Duration> = heard.iter().filter_map(Heard::rtt).collect();
            let took = if lost > 0 {
                limit
            } else if sequential {
                rtts.iter().sum()
            } else {
                rtts.iter().copied().max().unwrap_or_default()
            };
            let text = format!(
                "A {}, AAAA {}",
                ex.a.text(),
                ex.aaaa.map_or_else(|| "not sent".to_owned(), |h| h.text())
            );
            self.step(candidate, ns, text, took, true);
            if lost == 0 {
                return SendOutcome::Heard(heard);
            }
            if lost == asked {
                self.dead.insert(ns);
                return SendOutcome::Lost;
            }
            // One came, the other did not: glibc switches to asking one after the other, on
            // the same socket, then on a new one; after that it takes what it has.
            if self.mode >= 2 {
                return SendOutcome::Heard(
                    heard.into_iter().filter(|h| *h != Heard::Lost).collect(),
                );
            }
            self.mode += 1;
            fresh = self.mode == 2;
        }
    }

    fn step(&mut self, name: &str, ns: IpAddr, outcome: String, took: Duration, sent: bool) {
        self.out.wait += took;
        self.out.steps.push(WalkStep {
            name: name.to_owned(),
            nameserver: ns,
            outcome,
            wait_ms: (took.as_micros() as f64) / 1000.0,
            sent,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    const KUBE: &str = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn reply(rcode: ResponseCode, answers: u16) -> Heard {
        Heard::Reply {
            rcode,
            answers,
            rtt: ms(1),
        }
    }

    /// A cluster DNS: `kubernetes.default.svc.cluster.local.` has an A record, other names under
    /// cluster.local do not exist; `script` overrides (name, server) -> successive exchanges.
    struct Cluster {
        script: RefCell<BTreeMap<(String, IpAddr), Vec<Exchange>>>,
        log: RefCell<Vec<Ask>>,
    }

    impl Cluster {
        fn new() -> Self {
            Cluster {
                script: RefCell::new(BTreeMap::new()),
                log: RefCell::new(Vec::new()),
            }
        }

        fn script(self, name: &str, ns: &str, exchanges: Vec<Exchange>) -> Self {
            self.script
                .borrow_mut()
                .insert((name.to_owned(), ns.parse().unwrap()), exchanges);
            self
        }

        fn answer(&self, s: Ask) -> Exchange {
            self.log.borrow_mut().push(s.clone());
            if let Some(v) = self
                .script
                .borrow_mut()
                .get_mut(&(s.name.clone(), s.nameserver))
                && !v.is_empty()
            {
                return v.remove(0);
            }
            if s.name == "kubernetes.default.svc.cluster.local." {
                Exchange {
                    a: reply(ResponseCode::NoError, 1),
                    aaaa: Some(reply(ResponseCode::NoError, 0)),
                }
            } else {
                Exchange {
                    a: reply(ResponseCode::NXDomain, 0),
                    aaaa: Some(reply(ResponseCode::NXDomain, 0)),
                }
            }
        }
    }

    fn run(conf: &str, cluster: &Cluster, known: &dyn Fn(IpAddr) -> bool) -> ClientLookup {
        let rc = ResolvConf::parse(conf);
        let fut = walk(&rc, CLIENT_LOOKUP_NAME, known, |s| {
            let ex = cluster.answer(s);
            async move { ex }
        });
        futures_lite_block_on(fut)
    }

    /// Polls a future that never waits (the scripted sender answers at once).
    fn futures_lite_block_on<T>(f: impl Future<Output = T>) -> T {
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the scripted walk waited"),
        }
    }

    fn all(_: IpAddr) -> bool {
        true
    }

    #[test]
    fn a_cluster_first_pod_takes_four_queries() {
        let c = Cluster::new();
        let l = run(KUBE, &c, &all);
        assert_eq!(l.result, LookupResult::Answered);
        assert_eq!((l.queries, l.sent, l.lost), (4, 4, 0));
        assert_eq!(
            l.answered_by.as_deref(),
            Some("kubernetes.default.svc.cluster.local.")
        );
        assert_eq!(l.wait, ms(2), "two parallel sends of 1 ms");
        assert!(l.findings("r").is_empty());
        assert!(c.log.borrow().iter().all(|s| !s.sequential && s.fresh));
    }

    #[test]
    fn one_lost_reply_costs_the_glibc_timeout_then_a_sequential_retry() {
        // The conntrack race: the AAAA of the second name is lost once.
        let c = Cluster::new().script(
            "kubernetes.default.svc.cluster.local.",
            "10.96.0.10",
            vec![Exchange {
                a: reply(ResponseCode::NoError, 1),
                aaaa: Some(Heard::Lost),
            }],
        );
        let l = run(KUBE, &c, &all);
        assert_eq!(l.result, LookupResult::Answered);
        assert_eq!((l.queries, l.lost), (6, 1));
        // 1 ms (NXDOMAIN), 5 s (the wait), then 1 + 1 ms one after the other.
        assert_eq!(l.wait, ms(5003));
        let log = c.log.borrow();
        assert!(log[2].sequential && !log[2].fresh, "same socket: {log:?}");
        let f = l.findings("r");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::ClientLookupSlow);
        assert!(f[0].message.contains("waits 5.0 s"), "{}", f[0].message);
    }

    #[test]
    fn a_reply_lost_every_time_costs_three_timeouts() {
        let half = Exchange {
            a: reply(ResponseCode::NoError, 1),
            aaaa: Some(Heard::Lost),
        };
        let c = Cluster::new().script(
            "kubernetes.default.svc.cluster.local.",
            "10.96.0.10",
            vec![half; 3],
        );
        let l = run(KUBE, &c, &all);
        assert_eq!(l.result, LookupResult::Answered, "glibc takes the A it has");
        assert_eq!(l.lost, 3);
        assert_eq!(l.wait, ms(15_001));
        let log = c.log.borrow();
        assert!(log[3].fresh && log[3].sequential, "reopen: a new socket");
    }

    #[test]
    fn a_dead_first_nameserver_costs_its_timeout_per_name_and_attempt() {
        let conf = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.99\nnameserver 10.96.0.10\noptions ndots:5 timeout:2 attempts:2\n";
        let lost = Exchange {
            a: Heard::Lost,
            aaaa: Some(Heard::Lost),
        };
        let c = Cluster::new().script(
            "kubernetes.default.default.svc.cluster.local.",
            "10.96.0.99",
            vec![lost],
        );
        let l = run(conf, &c, &all);
        assert_eq!(l.result, LookupResult::Answered);
        // Each name: 2 s on the dead server (sent once, then modelled), 1 ms on the other.
        assert_eq!(l.wait, ms(2000 + 1 + 2000 + 1));
        assert_eq!((l.queries, l.sent), (8, 6), "the second loss is modelled");
        assert!(!l.steps[2].sent);
    }

    #[test]
    fn rotate_starts_each_name_at_another_nameserver() {
        let conf = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:5 rotate\n";
        let c = Cluster::new();
        let l = run(conf, &c, &all);
        assert_eq!(l.queries, 4);
        let order: Vec<String> = c
            .log
            .borrow()
            .iter()
            .map(|s| s.nameserver.to_string())
            .collect();
        assert_eq!(order, ["10.96.0.10", "10.96.0.11"]);
    }

    #[test]
    fn single_request_asks_one_after_the_other() {
        let conf = format!("{KUBE}options single-request\n");
        let c = Cluster::new();
        let l = run(&conf, &c, &all);
        assert_eq!(l.wait, ms(4), "1 ms each, in turn");
        assert!(c.log.borrow().iter().all(|s| s.sequential));
    }

    #[test]
    fn a_search_list_without_the_service_domain_does_not_resolve() {
        let conf = "search default.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";
        let l = run(conf, &Cluster::new(), &all);
        assert_eq!(l.result, LookupResult::NotFound);
        assert_eq!(l.queries, 4, "the search domain, then the name as is");
        let f = l.findings("r");
        assert_eq!(f[0].code, FindingCode::ClientLookupFailed);
        assert!(f[0].is_error());
    }

    #[test]
    fn extra_search_domains_before_the_service_domain_amplify() {
        let conf = "search default.svc.cluster.local corp.example svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";
        let l = run(conf, &Cluster::new(), &all);
        assert_eq!((l.result, l.queries), (LookupResult::Answered, 6));
        let f = l.findings("r");
        assert_eq!(f[0].code, FindingCode::SearchAmplification);
        assert!(!f[0].is_error());
    }

    #[test]
    fn servfail_everywhere_goes_on_then_fails() {
        let sf = Exchange {
            a: reply(ResponseCode::ServFail, 0),
            aaaa: Some(reply(ResponseCode::ServFail, 0)),
        };
        let conf = "search svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5 attempts:1\n";
        let c = Cluster::new().script(
            "kubernetes.default.svc.cluster.local.",
            "10.96.0.10",
            vec![sf],
        );
        let l = run(conf, &c, &all);
        assert_eq!(l.result, LookupResult::Failed);
        assert_eq!(l.queries, 4, "SERVFAIL, then the name as is (NXDOMAIN)");
    }

    #[test]
    fn never_asks_a_nameserver_that_is_not_cluster_dns() {
        let conf = "search svc.cluster.local\nnameserver 10.96.0.10\nnameserver 192.0.2.53\noptions ndots:5 attempts:1\n";
        let lost = Exchange {
            a: Heard::Lost,
            aaaa: Some(Heard::Lost),
        };
        let c = Cluster::new().script(
            "kubernetes.default.svc.cluster.local.",
            "10.96.0.10",
            vec![lost],
        );
        let known = |ip: IpAddr| ip == "10.96.0.10".parse::<IpAddr>().unwrap();
        let l = run(conf, &c, &known);
        assert_eq!(l.result, LookupResult::Incomplete);
        assert!(l.note.as_deref().unwrap().contains("192.0.2.53"));
        assert!(
            c.log
                .borrow()
                .iter()
                .all(|s| s.nameserver.to_string() == "10.96.0.10")
        );
        assert!(
            l.findings("r").is_empty(),
            "nothing is said of what was not seen"
        );
        // A file naming only such a nameserver: nothing is sent at all.
        let c = Cluster::new();
        let l = run("nameserver 192.0.2.53\n", &c, &known);
        assert_eq!((l.result, l.sent), (LookupResult::Incomplete, 0));
    }

    #[test]
    fn sends_are_bounded() {
        // Six search domains before the answer, every reply half lost: the walk stops.
        let conf = "search a b c d e f svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";
        let l = run(conf, &Cluster::new(), &all);
        assert_eq!(l.result, LookupResult::Answered);
        assert_eq!(l.queries, 14);
        let half = Exchange {
            a: reply(ResponseCode::NXDomain, 0),
            aaaa: Some(Heard::Lost),
        };
        let mut c = Cluster::new();
        for d in ["a", "b", "c", "d", "e", "f"] {
            c = c.script(
                &format!("kubernetes.default.{d}."),
                "10.96.0.10",
                vec![half; 3],
            );
        }
        let l = run(conf, &c, &all);
        assert_eq!(l.result, LookupResult::Incomplete);
        assert_eq!(c.log.borrow().len(), MAX_WALK_SENDS);
    }

    #[test]
    fn serializes_with_the_wait_in_milliseconds() {
        let l = run(KUBE, &Cluster::new(), &all);
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["result"], "answered");
        assert_eq!(v["wait_ms"], 2.0);
        assert_eq!(v["steps"][0]["outcome"], "A NXDOMAIN, AAAA NXDOMAIN");
        assert_eq!(v["steps"][1]["outcome"], "A 1 answer(s), AAAA NODATA");
    }
}
