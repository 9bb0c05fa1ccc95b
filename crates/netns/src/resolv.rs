//! `resolv.conf` as glibc and musl read it (resolv.conf(5)): the parts that decide whether a
//! pod can reach the cluster DNS.

use std::net::IpAddr;
use std::time::Duration;

/// glibc uses at most this many `nameserver` lines (MAXNS); the rest are ignored.
pub const GLIBC_MAX_NAMESERVERS: usize = 3;
/// Search domains Kubernetes (>= 1.28) accepts in a pod's DNS config, and glibc (>= 2.26, which
/// dropped its own limit) resolves through: more is what this crate flags.
pub const GLIBC_MAX_SEARCH: usize = 32;
/// The limit of glibc before 2.26 (MAXDNSRCH) and of Kubernetes before 1.28: older clients
/// silently ignore the domains past it.
pub const LEGACY_MAX_SEARCH: usize = 6;
/// glibc's default `timeout:` (RES_TIMEOUT), in seconds: the wait for a reply before a retry.
pub const GLIBC_DEFAULT_TIMEOUT: u32 = 5;
/// glibc's default `attempts:` (RES_DFLRETRY).
pub const GLIBC_DEFAULT_ATTEMPTS: u32 = 2;

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

    /// The resolver options as glibc reads them from the `options` lines: defaults for what is
    /// absent, glibc's caps for what is too large, the last word winning.
    pub fn resolver_options(&self) -> ResolverOptions {
        let mut o = ResolverOptions {
            ndots: self.ndots.unwrap_or(1),
            ..ResolverOptions::default()
        };
        for word in &self.options {
            let num = |prefix: &str| {
                word.strip_prefix(prefix)
                    .and_then(|n| n.parse::<u32>().ok())
            };
            if let Some(n) = num("timeout:") {
                o.timeout = n.clamp(1, 30);
            } else if let Some(n) = num("attempts:") {
                o.attempts = n.clamp(1, 5);
            }
            match word.as_str() {
                "rotate" => o.rotate = true,
                "single-request" => o.single_request = true,
                "single-request-reopen" => o.single_request_reopen = true,
                "use-vc" => o.use_vc = true,
                "no-tld-query" => o.no_tld_query = true,
                _ => {}
            }
        }
        o
    }

    /// The names glibc's `res_search` tries for `name`, in order: a name with a trailing dot as
    /// is; one with at least `ndots` dots as is, then with each search domain; one with fewer
    /// dots with each search domain first, then as is (unless `no-tld-query` and it has no dot).
    /// Each returned name is fully qualified (ends with a dot).
    ///
    /// ```
    /// let rc = hc_netns::ResolvConf::parse(
    ///     "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    /// );
    /// assert_eq!(
    ///     rc.candidates("kubernetes.default"),
    ///     [
    ///         "kubernetes.default.default.svc.cluster.local.",
    ///         "kubernetes.default.svc.cluster.local.",
    ///         "kubernetes.default.cluster.local.",
    ///         "kubernetes.default.",
    ///     ]
    /// );
    /// ```
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_owned()];
        }
        let o = self.resolver_options();
        let dots = name.matches('.').count();
        let as_is = format!("{name}.");
        let mut out = Vec::new();
        let first = dots >= usize::from(o.ndots);
        if first {
            out.push(as_is.clone());
        }
        for domain in &self.search {
            out.push(format!("{name}.{}.", domain.trim_end_matches('.')));
        }
        let skip_as_is = o.no_tld_query && dots == 0;
        if !first && !skip_as_is {
            out.push(as_is);
        }
        out
    }
}

/// The options of glibc's stub resolver that decide how many queries a lookup sends and how
/// long it waits (resolv.conf(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolverOptions {
    /// `ndots:N` (default 1, at most 15): names with fewer dots go through the search list first.
    pub ndots: u8,
    /// `timeout:N` in seconds (default 5, 1 to 30): the wait for a reply from the first
    /// nameserver; glibc scales it for the others (see [`ResolverOptions::wait_for`]).
    pub timeout: u32,
    /// `attempts:N` (default 2, 1 to 5): rounds over the nameservers.
    pub attempts: u32,
    /// `rotate`: each query starts at another nameserver.
    pub rotate: bool,
    /// `single-request`: A and AAAA one after the other, not in parallel.
    pub single_request: bool,
    /// `single-request-reopen`: as `single-request`, on a new socket for the second.
    pub single_request_reopen: bool,
    /// `use-vc`: every query over TCP.
    pub use_vc: bool,
    /// `no-tld-query`: a name without a dot is never tried as is.
    pub no_tld_query: bool,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            ndots: 1,
            timeout: GLIBC_DEFAULT_TIMEOUT,
            attempts: GLIBC_DEFAULT_ATTEMPTS,
            rotate: false,
            single_request: false,
            single_request_reopen: false,
            use_vc: false,
            no_tld_query: false,
        }
    }
}

impl ResolverOptions {
    /// How long glibc waits for a reply from the `index`-th of `count` nameservers (0-based):
    /// `timeout` for the first, `(timeout << index) / count` for the others, at least 1 s
    /// (`send_dg` in glibc's res_send.c).
    pub fn wait_for(&self, index: usize, count: usize) -> Duration {
        let index = index.min(GLIBC_MAX_NAMESERVERS) as u32;
        let mut secs = self.timeout << index;
        if index > 0 {
            secs /= count.max(1) as u32;
        }
        Duration::from_secs(u64::from(secs.max(1)))
    }

    /// A and AAAA go one after the other (`single-request` or `single-request-reopen`).
    pub fn sequential(&self) -> bool {
        self.single_request || self.single_request_reopen
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
    fn options_as_glibc_reads_them() {
        let o = ResolvConf::parse("nameserver 10.96.0.10\n").resolver_options();
        assert_eq!((o.ndots, o.timeout, o.attempts), (1, 5, 2));
        assert!(!o.rotate && !o.sequential() && !o.use_vc);
        let o = ResolvConf::parse(
            "options ndots:5 timeout:2 attempts:9 rotate\noptions single-request-reopen timeout:0 use-vc\n",
        )
        .resolver_options();
        assert_eq!(o.ndots, 5);
        assert_eq!(o.timeout, 1, "timeout:0 is raised to 1");
        assert_eq!(o.attempts, 5, "attempts are capped at 5");
        assert!(o.rotate && o.sequential() && o.use_vc);
        let o = ResolvConf::parse("options timeout:99\n").resolver_options();
        assert_eq!(o.timeout, 30);
    }

    #[test]
    fn glibc_scales_the_wait_per_nameserver() {
        let o = ResolverOptions::default();
        let s = |i, n| o.wait_for(i, n).as_secs();
        assert_eq!([s(0, 1)], [5]);
        assert_eq!([s(0, 2), s(1, 2)], [5, 5]);
        assert_eq!([s(0, 3), s(1, 3), s(2, 3)], [5, 3, 6]);
        let fast = ResolverOptions { timeout: 1, ..o };
        assert_eq!(fast.wait_for(1, 3).as_secs(), 1, "never below 1 s");
    }

    #[test]
    fn search_candidates() {
        let rc = ResolvConf::parse("search a.example b.example\noptions ndots:2\n");
        assert_eq!(
            rc.candidates("x.y.z"),
            ["x.y.z.", "x.y.z.a.example.", "x.y.z.b.example."],
            "enough dots: as is first"
        );
        assert_eq!(
            rc.candidates("x.y"),
            ["x.y.a.example.", "x.y.b.example.", "x.y."],
            "fewer dots: the search list first"
        );
        assert_eq!(
            rc.candidates("x.y."),
            ["x.y."],
            "a trailing dot: as is only"
        );
        let rc = ResolvConf::parse("search a.example.\noptions no-tld-query\n");
        assert_eq!(rc.candidates("x"), ["x.a.example."]);
        assert_eq!(ResolvConf::parse("").candidates("x"), ["x."]);
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
