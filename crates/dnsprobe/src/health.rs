//! Turning single probe results into an up/down state with thresholds, the way kubelet probes
//! do (`failureThreshold`, `successThreshold`), so that one lost packet does not flap a target.

use std::num::NonZeroU32;

/// How many consecutive results it takes to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that make a target down (kubelet's default: 3).
    pub failure: NonZeroU32,
    /// Consecutive successes that make a target up (kubelet's default: 1).
    pub success: NonZeroU32,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
