//! Turning single probe results into an up/down state with thresholds, the way kubelet probes
//! do (`failureThreshold`, `successThreshold`), so that one lost packet does not flap a target.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::SystemTime;

use crate::report::ProbeReport;
use crate::spec::Transport;
use crate::verdict::TransportVerdict;

/// How many consecutive results it takes to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that make a target down (kubelet's default: 3).
    pub failure: NonZeroU32,
    /// Consecutive successes that make a target up (kubelet's default: 1).
    pub success: NonZeroU32,
}

impl Thresholds {
    /// `failure` and `success` consecutive results (0 is taken as 1).
    pub fn new(failure: u32, success: u32) -> Self {
        let n = |x| NonZeroU32::new(x).unwrap_or(NonZeroU32::MIN);
        Thresholds {
            failure: n(failure),
            success: n(success),
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failure: NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN),
            success: NonZeroU32::MIN,
        }
    }
}

/// The state after thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Not enough results yet to say.
    Unknown,
    /// Answering correctly.
    Up,
    /// Failing.
    Down,
}

impl HealthState {
    /// `unknown`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

/// The running state of one target over one transport.
///
/// ```
/// use dnsprobe::{Health, HealthState, Thresholds};
///
/// let mut h = Health::default();
/// assert_eq!(h.record(true, Thresholds::default()), Some(HealthState::Up));
/// assert_eq!(h.record(false, Thresholds::default()), None); // one failure: still up
/// assert_eq!(h.record(false, Thresholds::default()), None);
/// assert_eq!(h.record(false, Thresholds::default()), Some(HealthState::Down));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The state.
    pub state: HealthState,
    /// Consecutive failures up to now.
    pub consecutive_failures: u32,
    /// Consecutive successes up to now.
    pub consecutive_successes: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: HealthState::Unknown,
            consecutive_failures: 0,
            consecutive_successes: 0,
        }
    }
}

impl Health {
    /// Records one result; returns the new state when it changed.
    pub fn record(&mut self, healthy: bool, t: Thresholds) -> Option<HealthState> {
        if healthy {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
        }
        let next = if self.consecutive_successes >= t.success.get() {
            HealthState::Up
        } else if self.consecutive_failures >= t.failure.get() {
            HealthState::Down
        } else {
            self.state
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

/// One target over one transport: its state after thresholds and its last report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetHealth {
    /// The server.
    pub target: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// State and counters.
    pub health: Health,
    /// The last report recorded, if any.
    pub last: Option<ProbeReport>,
    /// When it was recorded.
    pub checked: Option<SystemTime>,
}

/// A change of state, for a log line or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The server.
    pub target: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// The new state.
    pub state: HealthState,
    /// Consecutive failures when it changed.
    pub consecutive_failures: u32,
}

/// The health of many (target, transport) pairs over time: what a long-running checker keeps
/// between rounds. Targets come and go ([`HealthBook::track`]); each report moves its pair's
/// state through the thresholds ([`HealthBook::record`]).
///
/// ```
/// use dnsprobe::{Failure, HealthBook, HealthState, ProbeReport, ProbeSpec, Thresholds, Transport};
///
/// let spec = ProbeSpec::new("10.96.0.10:53".parse().unwrap());
/// let mut book = HealthBook::new(Thresholds::default());
/// book.track([(spec.target, Transport::Udp)]);
/// let lost = ProbeReport::failed(&spec, Transport::Udp, Failure::Refused);
/// for _ in 0..2 {
///     assert_eq!(book.record(&lost), None);
/// }
/// let t = book.record(&lost).unwrap();
/// assert_eq!(t.state, HealthState::Down);
/// assert_eq!(book.entries()[0].health.consecutive_failures, 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthBook {
    thresholds: Thresholds,
    entries: Vec<TargetHealth>,
}

impl HealthBook {
    /// An empty book.
    pub fn new(thresholds: Thresholds) -> Self {
        HealthBook {
            thresholds,
            entries: Vec::new(),
        }
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Tracks exactly `keys`, in that order: a new pair starts [`HealthState::Unknown`], a pair
    /// that stays keeps its state. Returns the pairs forgotten.
    pub fn track(
        &mut self,
        keys: impl IntoIterator<Item = (SocketAddr, Transport)>,
    ) -> Vec<(SocketAddr, Transport)> {
        let mut old = std::mem::take(&mut self.entries);
        for (target, transport) in keys {
            if self.get(target, transport).is_some() {
                continue;
            }
            let entry = match old
                .iter()
                .position(|e| e.target == target && e.transport == transport)
            {
                Some(i) => old.swap_remove(i),
                None => TargetHealth {
                    target,
                    transport,
                    health: Health::default(),
                    last: None,
                    checked: None,
                },
            };
            self.entries.push(entry);
        }
        old.into_iter().map(|e| (e.target, e.transport)).collect()
    }

    /// Records `report` for its (target, transport) and returns the change of state, if any.
    /// A pair that is not tracked is ignored. A report that does not count against the target
    /// ([`crate::FailureKind::NotProbed`]: no socket could be had) is kept as the pair's last
    /// report but leaves its counters and state as they were.
    pub fn record(&mut self, report: &ProbeReport) -> Option<Transition> {
        let t = self.thresholds;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.target == report.target && e.transport == report.transport)?;
        e.last = Some(report.clone());
        e.checked = Some(SystemTime::now());
        if report
            .failure_kind()
            .is_some_and(|k| !k.counts_against_target())
        {
            return None;
        }
        let changed = e.health.record(report.healthy(), t);
        changed.map(|state| Transition {
            target: e.target,
            transport: e.transport,
            state,
            consecutive_failures: e.health.consecutive_failures,
        })
    }

    /// The pair, if tracked.
    pub fn get(&self, target: SocketAddr, transport: Transport) -> Option<&TargetHealth> {
        self.entries
            .iter()
            .find(|e| e.target == target && e.transport == transport)
    }

    /// Every tracked pair, in the order given to [`HealthBook::track`].
    pub fn entries(&self) -> &[TargetHealth] {
        &self.entries
    }

    /// UDP against TCP for `target`, from the states after thresholds (`Unknown` counts as not
    /// checked).
    pub fn verdict(&self, target: SocketAddr) -> TransportVerdict {
        let side = |t| match self.get(target, t).map(|e| e.health.state) {
            Some(HealthState::Up) => Some(true),
            Some(HealthState::Down) => Some(false),
            _ => None,
        };
        TransportVerdict::of(side(Transport::Udp), side(Transport::Tcp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Failure;
    use crate::spec::ProbeSpec;

    fn report(target: &str, transport: Transport, ok: bool) -> ProbeReport {
        let spec = ProbeSpec::new(target.parse().unwrap());
        if ok {
            let mut r = ProbeReport::failed(&spec, transport, Failure::Refused);
            r.failure = None;
            r
        } else {
            ProbeReport::failed(&spec, transport, Failure::Refused)
        }
    }

    #[test]
    fn book_keeps_state_of_pairs_that_stay_and_forgets_the_rest() {
        let a: SocketAddr = "10.0.0.1:53".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:53".parse().unwrap();
        let mut book = HealthBook::new(th(1, 1));
        assert!(
            book.track([
                (a, Transport::Udp),
                (a, Transport::Tcp),
                (b, Transport::Udp)
            ])
            .is_empty()
        );
        let down = book.record(&report("10.0.0.1:53", Transport::Udp, false));
        assert_eq!(down.map(|t| t.state), Some(HealthState::Down));
        let up = book.record(&report("10.0.0.1:53", Transport::Tcp, true));
        assert_eq!(up.map(|t| t.state), Some(HealthState::Up));
        assert_eq!(book.verdict(a), TransportVerdict::UdpBlocked);
        assert_eq!(book.verdict(b), TransportVerdict::Unknown);
        // b goes away, a stays with its state; the order follows the new list.
        let gone = book.track([(a, Transport::Tcp), (a, Transport::Udp)]);
        assert_eq!(gone, vec![(b, Transport::Udp)]);
        assert_eq!(book.entries()[0].transport, Transport::Tcp);
        assert_eq!(
            book.get(a, Transport::Udp).unwrap().health.state,
            HealthState::Down
        );
        // Untracked reports change nothing.
        assert_eq!(
            book.record(&report("10.0.0.2:53", Transport::Udp, false)),
            None
        );
        assert_eq!(book.entries().len(), 2);
    }

    fn th(failure: u32, success: u32) -> Thresholds {
        Thresholds {
            failure: NonZeroU32::new(failure).unwrap(),
            success: NonZeroU32::new(success).unwrap(),
        }
    }

    #[test]
    fn flapping_needs_the_thresholds() {
        let t = th(3, 2);
        let mut h = Health::default();
        let seq = [false, false, true, false, false, false, true, true, false];
        let got: Vec<Option<HealthState>> = seq.iter().map(|ok| h.record(*ok, t)).collect();
        assert_eq!(
            got,
            [
                None,
                None,
                None,
                None,
                None,
                Some(HealthState::Down),
                None,
                Some(HealthState::Up),
                None
            ]
        );
        assert_eq!(h.consecutive_failures, 1);
    }

    #[test]
    fn unknown_until_a_threshold_is_met() {
        let mut h = Health::default();
        assert_eq!(h.record(false, th(3, 1)), None);
        assert_eq!(h.state, HealthState::Unknown);
    }

    #[test]
    fn not_probed_leaves_the_state_alone_but_is_kept_as_last() {
        let a: SocketAddr = "10.0.0.1:53".parse().unwrap();
        let mut book = HealthBook::new(th(2, 1));
        book.track([(a, Transport::Udp)]);
        let up = book.record(&report("10.0.0.1:53", Transport::Udp, true));
        assert_eq!(up.map(|t| t.state), Some(HealthState::Up));
        book.record(&report("10.0.0.1:53", Transport::Udp, false));
        let spec = ProbeSpec::new(a);
        let emfile = ProbeReport::failed(
            &spec,
            Transport::Udp,
            Failure::NotProbed {
                detail: "no socket: Too many open files (os error 24)".into(),
            },
        );
        for _ in 0..5 {
            assert_eq!(book.record(&emfile), None);
        }
        let e = book.get(a, Transport::Udp).unwrap();
        assert_eq!(e.health.state, HealthState::Up);
        assert_eq!(e.health.consecutive_failures, 1);
        assert_eq!(e.last.as_ref(), Some(&emfile));
    }
}
