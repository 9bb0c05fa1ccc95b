//! A long-running sweep: which pod namespaces to check this round (a rotating share, so a node
//! with 110 pods costs the same every round), and what is known of each between rounds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::enumerate::Namespace;
use crate::sweep::NsReport;

/// What is known of one namespace: its last report and the round that made it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KnownNamespace {
    /// The last sweep of it.
    pub report: NsReport,
    /// The round that swept it.
    pub round: u64,
    /// When.
    pub checked: SystemTime,
}

/// Counts for the namespace gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceSummary {
    /// Namespaces with a known state.
    pub checked: usize,
    /// Of those, how many are unhealthy.
    pub unhealthy: usize,
    /// Per finding code, how many namespaces show it (each namespace counted once per code).
    pub codes: Vec<(String, usize)>,
    /// How long ago the least recently checked namespace was checked.
    pub oldest_check: Option<Duration>,
}

/// The namespaces of a node across rounds.
///
/// ```
/// use hc_netns::{Namespace, NamespaceBook};
///
/// let present: Vec<Namespace> =
///     (1..=5).map(|i| Namespace::at((1, i), format!("/proc/{i}/ns/net").into())).collect();
/// let mut book = NamespaceBook::default();
/// let first = book.share(&present, 2);
/// assert_eq!(first.iter().map(|n| n.inode).collect::<Vec<_>>(), [1, 2]);
/// book.record(1, &present, &[]); // nothing swept: the rotation stays
/// book.skip(first.len());
/// let next = book.share(&present, 2);
/// assert_eq!(next.iter().map(|n| n.inode).collect::<Vec<_>>(), [3, 4]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceBook {
    known: BTreeMap<(u64, u64), KnownNamespace>,
    cursor: usize,
}

impl NamespaceBook {
    /// This round's share of `present`: `per_round` of them, starting where the rotation stands
    /// and wrapping around, or all when they are no more than `per_round`. In (device, inode)
    /// order, so the rotation is stable while namespaces come and go.
    pub fn share(&self, present: &[Namespace], per_round: usize) -> Vec<Namespace> {
        let mut all = present.to_vec();
        all.sort_by_key(|n| (n.dev, n.inode));
        if all.len() <= per_round {
            return all;
        }
        let start = self.cursor % all.len();
        let mut v: Vec<Namespace> = all
            .iter()
            .cycle()
            .skip(start)
            .take(per_round)
            .cloned()
            .collect();
        v.sort_by_key(|n| (n.dev, n.inode));
        v
    }

    /// Moves the rotation on by `n` namespaces (those just swept).
    pub fn skip(&mut self, n: usize) {
        self.cursor = self.cursor.wrapping_add(n);
    }

    /// Records round `round`: forgets the namespaces no longer `present`, keeps the reports of
    /// those `swept` and moves the rotation past them. Returns the reports whose health changed
    /// (a namespace found healthy the first time is not a change).
    pub fn record(
        &mut self,
        round: u64,
        present: &[Namespace],
        swept: &[NsReport],
    ) -> Vec<NsReport> {
        let keys: Vec<(u64, u64)> = present.iter().map(|n| (n.dev, n.inode)).collect();
        self.retain(&keys);
        let mut changed = Vec::new();
        for r in swept {
            let key = (r.ns.dev, r.ns.inode);
            let was = self.known.get(&key).map(|k| k.report.healthy());
            let now = r.healthy();
            if was.is_some_and(|w| w != now) || (was.is_none() && !now) {
                changed.push(r.clone());
            }
            self.known.insert(
                key,
                KnownNamespace {
                    report: r.clone(),
                    round,
                    checked: SystemTime::now(),
                },
            );
        }
        self.skip(swept.len());
        changed
    }

    /// Forgets every namespace whose (device, inode) is not in `keys`.
    pub fn retain(&mut self, keys: &[(u64, u64)]) {
        self.known.retain(|k, _| keys.contains(k));
    }

    /// The namespaces known, in (device, inode) order.
    pub fn known(&self) -> impl Iterator<Item = &KnownNamespace> {
        self.known.values()
    }

    /// The known namespaces as they were last seen (for a round whose scan failed).
    pub fn last_present(&self) -> Vec<Namespace> {
        self.known.values().map(|k| k.report.ns.clone()).collect()
    }

    /// How many are known, unhealthy, and showing each finding code.
    pub fn summary(&self) -> NamespaceSummary {
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        for k in self.known.values() {
            let mut seen: Vec<&str> = k.report.findings.iter().map(|f| f.code.as_str()).collect();
            seen.sort_unstable();
            seen.dedup();
            for c in seen {
                *codes.entry(c.to_owned()).or_default() += 1;
            }
        }
        let now = SystemTime::now();
        NamespaceSummary {
            checked: self.known.len(),
            unhealthy: self.known.values().filter(|k| !k.report.healthy()).count(),
            codes: codes.into_iter().collect(),
            oldest_check: (self.known.values())
                .map(|k| now.duration_since(k.checked).unwrap_or_default())
                .max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Finding, FindingCode};

    fn ns(i: u64) -> Namespace {
        Namespace::at((7, i), format!("/proc/{i}/ns/net").into())
    }

    fn report(i: u64, healthy: bool) -> NsReport {
        let mut r = NsReport::new(ns(i), false);
        if !healthy {
            r.findings
                .push(Finding::new(FindingCode::LinkDown, "eth0 is down"));
        }
        r
    }

    fn inodes(v: &[Namespace]) -> Vec<u64> {
        v.iter().map(|n| n.inode).collect()
    }

    #[test]
    fn the_rotation_visits_every_namespace_and_wraps() {
        let present: Vec<Namespace> = (1..=5).map(ns).collect();
        let mut book = NamespaceBook::default();
        let mut seen = Vec::new();
        for round in 1..=3 {
            let share = book.share(&present, 2);
            seen.push(inodes(&share));
            let reports: Vec<NsReport> = share.iter().map(|n| report(n.inode, true)).collect();
            book.record(round, &present, &reports);
        }
        assert_eq!(seen, [vec![1, 2], vec![3, 4], vec![1, 5]]);
        assert_eq!(book.summary().checked, 5);
        // Every namespace when the share covers them all.
        assert_eq!(inodes(&book.share(&present, 16)), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn vanished_namespaces_are_forgotten_and_changes_reported_once() {
        let mut present: Vec<Namespace> = (1..=3).map(ns).collect();
        let mut book = NamespaceBook::default();
        let first = book.record(1, &present, &[report(1, true), report(2, false)]);
        assert_eq!(
            inodes(&first.iter().map(|r| r.ns.clone()).collect::<Vec<_>>()),
            [2]
        );
        assert!(
            book.record(2, &present, &[report(2, false)]).is_empty(),
            "still unhealthy: no change"
        );
        let healed = book.record(3, &present, &[report(2, true)]);
        assert_eq!(healed.len(), 1);
        assert!(healed[0].healthy());
        book.record(4, &present, &[report(3, false)]);
        let s = book.summary();
        assert_eq!((s.checked, s.unhealthy), (3, 1));
        assert_eq!(s.codes, vec![("link-down".to_owned(), 1)]);
        present.remove(2);
        book.record(5, &present, &[]);
        let s = book.summary();
        assert_eq!((s.checked, s.unhealthy), (2, 0));
        assert!(s.codes.is_empty());
    }
}
