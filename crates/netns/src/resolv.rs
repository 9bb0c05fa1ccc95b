//! `resolv.conf` as glibc and musl read it (resolv.conf(5)): the parts that decide whether a
//! pod can reach the cluster DNS.

use std::net::IpAddr;

/// glibc uses at most this many `nameserver` lines (MAXNS); the rest are ignored.
pub const GLIBC_MAX_NAMESERVERS: usize = 3;
/// glibc before 2.26 used at most this many search domains (MAXDNSRCH); Kubernetes validates
/// pod DNS config against the same limit.
pub const GLIBC_MAX_SEARCH: usize = 6;

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` addresses in order (unparseable ones are skipped; see `invalid`).
    pub nameservers: Vec<IpAddr>,
    /// The search list (the last `search` or `domain` line wins, as in glibc).
    pub search: Vec<String>,
    /// `options ndots:N`, if given (glibc's default is 1, Kubernetes pods get 5).
    pub ndots: Option<u8>,
    /// Every option word, as written.
    pub options: Vec<String>,
    /// `nameserver` values that are not IP addresses.
    pub invalid: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text. Never fails: a resolver ignores what it does not understand.
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(v) = words.next() {
                        // A scoped IPv6 address (fe80::1%eth0) names its zone after '%'.
                        match v.split('%').next().unwrap_or(v).parse() {
                            Ok(ip) => rc.nameservers.push(ip),
                            Err(_) => rc.invalid.push(v.to_owned()),
                        }
                    }
                }
                Some("search") | Some("domain") => {
                    rc.search = words.map(str::to_owned).collect();
                }
                Some("options") => {
                    for o in words {
                        if let Some(n) = o.strip_prefix("ndots:") {
                            rc.ndots = n.parse::<u32>().ok().map(|n| n.min(15) as u8);
                        }
                        rc.options.push(o.to_owned());
                    }
                }
                _ => {}
            }
        }
        rc
    }

    /// The nameservers glibc actually uses (the first three).
    pub fn effective_nameservers(&self) -> &[IpAddr] {
        &self.nameservers[..self.nameservers.len().min(GLIBC_MAX_NAMESERVERS)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_pod_file() {
        let rc = ResolvConf::parse(
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
        );
        assert_eq!(
            rc.nameservers,
            vec!["10.96.0.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(rc.search.len(), 3);
        assert_eq!(rc.ndots, Some(5));
    }

    #[test]
    fn comments_scopes_and_junk() {
        let rc = ResolvConf::parse(
            "# generated\nnameserver 10.0.0.1 # primary\n; old\nnameserver fe80::1%eth0\nnameserver kube-dns\ndomain a.example\nsearch b.example c.example\noptions   rotate  ndots:99 timeout:1\nbogus line\n",
        );
        assert_eq!(rc.nameservers.len(), 2);
        assert_eq!(rc.invalid, vec!["kube-dns"]);
        assert_eq!(
            rc.search,
            vec!["b.example", "c.example"],
            "the last search/domain wins"
        );
        assert_eq!(rc.ndots, Some(15), "glibc caps ndots at 15");
        assert_eq!(rc.options, vec!["rotate", "ndots:99", "timeout:1"]);
    }

    #[test]
    fn only_three_nameservers_count() {
        let rc = ResolvConf::parse(
            "nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 8.8.8.8\nnameserver 10.96.0.10\n",
        );
        assert_eq!(rc.nameservers.len(), 4);
        assert_eq!(rc.effective_nameservers().len(), 3);
        assert!(
            !rc.effective_nameservers()
                .contains(&"10.96.0.10".parse().unwrap())
        );
    }
}
