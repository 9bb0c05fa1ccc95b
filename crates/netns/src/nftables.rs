//! Which nftables rule drops DNS: the ruleset read over netlink (`nft -a list ruleset`), each
//! dropping or rejecting rule reduced to the conditions it puts on protocol, addresses and ports,
//! and matched against the failing path's packets.
//!
//! Read over nfnetlink with `netlink-packet-netfilter` (the rust-netlink family of the
//! `rtnetlink` crate this crate already uses), not by running `nft -j list ruleset`: no binary
//! to ship in the image, no JSON schema that changes between nft releases, and the same
//! namespace-entering thread as every other diagnosis. iptables-nft rules are nftables rules
//! too (tables `filter`, `raw`, ...): their `-p udp --dport 53` is read from native expressions
//! or from the `udp`/`tcp` compat match, `-j REJECT` from the compat target, `-m comment` from
//! the compat match. Rules of iptables-legacy (x_tables without nftables) are not visible here.
//!
//! A rule's conditions are kept when they concern the layer 3 and 4 protocol, the addresses
//! and the ports (with masks and ranges); any other condition (a set lookup, conntrack state, an
//! interface) may or may not hold, so such a rule only "may" match ([`Fit::Maybe`]) and is named
//! only when its counter grows during a failing probe.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use dnsprobe::Transport;

use crate::finding::{Finding, FindingCode};

/// A header field a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `meta nfproto` (2 IPv4, 10 IPv6).
    NfProto,
    /// `meta protocol` (the EtherType).
    EtherType,
    /// `meta l4proto`, `ip protocol`, `ip6 nexthdr`.
    L4Proto,
    /// Source address (IPv4 or IPv6 layout).
    SrcAddr,
    /// Destination address.
    DstAddr,
    /// Transport source port.
    SrcPort,
    /// Transport destination port.
    DstPort,
    /// `len` bytes of the source address from byte `at` (a prefix nft loads alone), of an
    /// IPv6 address when `v6`.
    SrcAddrBytes {
        /// IPv6 layout.
        v6: bool,
        /// First byte.
        at: u8,
        /// Bytes.
        len: u8,
    },
    /// `len` bytes of the destination address from byte `at`.
    DstAddrBytes {
        /// IPv6 layout.
        v6: bool,
        /// First byte.
        at: u8,
        /// Bytes.
        len: u8,
    },
}

/// A comparison of `cmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `(field & mask) ^ xor OP value`, on network-order bytes.
    Cmp {
        /// What is compared.
        field: Field,
        /// A mask and xor applied first (`ip daddr 10.0.0.0/8`).
        mask: Option<(Vec<u8>, Vec<u8>)>,
        /// The comparison.
        op: CmpOp,
        /// The value compared with.
        value: Vec<u8>,
    },
    /// `field` within `from..=to` (network order), or outside when `invert`.
    Range {
        /// What is compared.
        field: Field,
        /// Lower bound.
        from: Vec<u8>,
        /// Upper bound.
        to: Vec<u8>,
        /// Outside the range.
        invert: bool,
    },
    /// Anything else: it may or may not hold (what it is, for the message).
    Unknown(String),
}

/// What a rule does to what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `drop` (`-j DROP`).
    Drop,
    /// `reject` (`-j REJECT`).
    Reject,
}

/// A dropping or rejecting rule, as `nft -a list ruleset` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NftRule {
    /// The table's family: `ip`, `ip6`, `inet`, `bridge`, `netdev`, `arp`.
    pub family: &'static str,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// The rule's handle (`nft -a`).
    pub handle: u64,
    /// Its comment, if any.
    pub comment: Option<String>,
    /// Drop or reject.
    pub action: Action,
    /// Packets its `counter` counted, if it has one.
    pub packets: Option<u64>,
    /// Its conditions, all of which must hold.
    pub conds: Vec<Cond>,
}

/// Whether a rule matches a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// A condition rules it out.
    No,
    /// Some condition cannot be told.
    Maybe,
    /// Every condition holds.
    Yes,
}

/// The packets of one direction of a DNS exchange; `None` fields are unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The IP protocol number (17 UDP, 6 TCP).
    pub proto: u8,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
}

impl Flow {
    /// The flows of DNS over `transport` to `server`: the query (to `server`) and the answer
    /// (from it).
    pub fn dns(transport: Transport, server: SocketAddr) -> [Flow; 2] {
        let proto = match transport {
            Transport::Udp => 17,
            Transport::Tcp => 6,
        };
        let (ip, port) = (server.ip(), server.port());
        let base = Flow {
            v6: ip.is_ipv6(),
            proto,
            src: None,
            dst: None,
            sport: None,
            dport: None,
        };
        [
            Flow {
                dst: Some(ip),
                dport: Some(port),
                ..base
            },
            Flow {
                src: Some(ip),
                sport: Some(port),
                ..base
            },
        ]
    }

    fn value(&self, field: Field) -> Option<Vec<u8>> {
        let addr = |a: Option<IpAddr>| {
            a.map(|a| match a {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            })
        };
        match field {
            Field::NfProto => Some(vec![if self.v6 { 10 } else { 2 }]),
            Field::EtherType => Some(if self.v6 {
                vec![0x86, 0xdd]
            } else {
                vec![0x08, 0x00]
            }),
            Field::L4Proto => Some(vec![self.proto]),
            Field::SrcAddr => addr(self.src),
            Field::DstAddr => addr(self.dst),
            Field::SrcPort => self.sport.map(|p| p.to_be_bytes().to_vec()),
            Field::DstPort => self.dport.map(|p| p.to_be_bytes().to_vec()),
            Field::SrcAddrBytes { v6, at, len } if v6 == self.v6 => part(addr(self.src), at, len),
            Field::DstAddrBytes { v6, at, len } if v6 == self.v6 => part(addr(self.dst), at, len),
            Field::SrcAddrBytes { .. } | Field::DstAddrBytes { .. } => None,
        }
    }
}

/// Bytes `at..at + len` of an address, if it has them.
fn part(a: Option<Vec<u8>>, at: u8, len: u8) -> Option<Vec<u8>> {
    let (at, len) = (usize::from(at), usize::from(len));
    a.and_then(|a| a.get(at..at + len).map(<[u8]>::to_vec))
}

impl Cond {
    fn fits(&self, flow: &Flow) -> Fit {
        let holds = |b: bool| if b { Fit::Yes } else { Fit::No };
        match self {
            Cond::Unknown(_) => Fit::Maybe,
            Cond::Cmp {
                field,
                mask,
                op,
                value,
            } => {
                let Some(mut v) = flow.value(*field).filter(|v| v.len() == value.len()) else {
                    return Fit::Maybe;
                };
                if let Some((m, x)) = mask {
                    if m.len() != v.len() || x.len() != v.len() {
                        return Fit::Maybe;
                    }
                    for ((b, m), x) in v.iter_mut().zip(m).zip(x) {
                        *b = (*b & m) ^ x;
                    }
                }
                let ord = v.as_slice().cmp(value.as_slice());
                holds(match op {
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Neq => ord.is_ne(),
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Lte => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Gte => ord.is_ge(),
                })
            }
            Cond::Range {
                field,
                from,
                to,
                invert,
            } => {
                let Some(v) = flow
                    .value(*field)
                    .filter(|v| v.len() == from.len() && v.len() == to.len())
                else {
                    return Fit::Maybe;
                };
                let inside = v.as_slice() >= from.as_slice() && v.as_slice() <= to.as_slice();
                holds(inside != *invert)
            }
        }
    }
}

impl NftRule {
    /// Whether this rule matches `flow`: its table's family first (an `ip` table never sees
    /// IPv6), then every condition.
    pub fn fits(&self, flow: &Flow) -> Fit {
        let family_ok = match self.family {
            "ip" => !flow.v6,
            "ip6" => flow.v6,
            "arp" => false,
            _ => true,
        };
        if !family_ok {
            return Fit::No;
        }
        self.conds
            .iter()
            .map(|c| c.fits(flow))
            .min()
            .unwrap_or(Fit::Yes)
    }

    /// Same rule (the handle is unique within a table).
    pub fn same(&self, other: &NftRule) -> bool {
        self.family == other.family
            && self.table == other.table
            && self.chain == other.chain
            && self.handle == other.handle
    }

    /// The commands that list its chain with handles, quoted.
    pub fn command(&self) -> String {
        let iptables = matches!(
            self.table.as_str(),
            "filter" | "raw" | "mangle" | "nat" | "security"
        ) && self.chain.bytes().all(|b| !b.is_ascii_lowercase());
        let nft = format!(
            "`nft -a list chain {} {} {}`",
            self.family, self.table, self.chain
        );
        match (iptables, self.family) {
            (true, "ip") => format!("{nft}; `iptables-nft -t {} -S {}`", self.table, self.chain),
            (true, "ip6") => format!("{nft}; `ip6tables-nft -t {} -S {}`", self.table, self.chain),
            _ => nft,
        }
    }
}

impl fmt::Display for NftRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {} {}, chain {}, handle {}",
            self.family, self.table, self.chain, self.handle
        )?;
        if let Some(c) = &self.comment {
            write!(f, " (comment {c:?})")?;
        }
        Ok(())
    }
}

/// A rule that drops or rejects DNS on a failing path, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    /// The rule (its counter as read after the failing probe).
    pub rule: NftRule,
    /// Where it is: `this namespace`, `the node's namespace`.
    pub place: &'static str,
    /// The transport and server of the failing probe it matches.
    pub transport: Transport,
    /// The server.
    pub target: SocketAddr,
    /// How much its counter grew during the failing probe (`None`: it has no counter).
    pub grew: Option<u64>,
}

/// Picks the culprits among `before` and `after` (one ruleset, read before and after the
/// failing probes were sent again) for the failing `(transport, target)` pairs; `endpoints`
/// are the addresses a Service address may be translated to (a rule on the node's forward
/// path sees the pod's address, not the Service's). A rule is named when its counter grew while
/// it may match, or, without a counter, when it surely matches.
pub fn culprits(
    before: &[NftRule],
    after: &[NftRule],
    failing: &[(Transport, SocketAddr)],
    endpoints: &[IpAddr],
    place: &'static str,
) -> Vec<Culprit> {
    let mut out: Vec<Culprit> = Vec::new();
    for (transport, target) in failing {
        let mut servers = vec![*target];
        if !endpoints.contains(&target.ip()) {
            servers.extend(
                (endpoints.iter())
                    .filter(|e| e.is_ipv6() == target.is_ipv6())
                    .map(|e| SocketAddr::new(*e, target.port())),
            );
        }
        let flows: Vec<Flow> = (servers.iter())
            .flat_map(|s| Flow::dns(*transport, *s))
            .collect();
        for rule in after {
            if out.iter().any(|c| c.rule.same(rule)) {
                continue;
            }
            let fit = flows.iter().map(|f| rule.fits(f)).max().unwrap_or(Fit::No);
            if fit == Fit::No {
                continue;
            }
            let grew = match (rule.packets, before.iter().find(|b| b.same(rule))) {
                (Some(now), Some(b)) => Some(now.saturating_sub(b.packets.unwrap_or(0))),
                (Some(_), None) => continue, // a rule added meanwhile: no evidence
                (None, _) => None,
            };
            let named = match grew {
                Some(n) => n > 0,
                None => fit == Fit::Yes,
            };
            if named {
                out.push(Culprit {
                    rule: rule.clone(),
                    place,
                    transport: *transport,
                    target: *target,
                    grew,
                });
            }
        }
    }
    out
}

/// The `nftables-drop` finding for a culprit.
pub fn culprit_finding(c: &Culprit) -> Finding {
    let verb = match c.rule.action {
        Action::Drop => "drops",
        Action::Reject => "rejects",
    };
    let proto = match c.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    let evidence = match c.grew {
        Some(n) => format!(
            "its counter grew by {n} packet{} while the probe failed",
            if n == 1 { "" } else { "s" }
        ),
        None => "it has no counter to confirm it".to_owned(),
    };
    Finding::for_target(
        FindingCode::NftablesDrop,
        c.target,
        format!(
            "{} in {} {verb} {proto} DNS to {}: {evidence} ({})",
            c.rule,
            c.place,
            c.target,
            c.rule.command()
        ),
    )
}

#[cfg(target_os = "linux")]
pub use linux::read_ruleset;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;
    use std::path::Path;

    use netlink_packet_core::{DefaultNla, Nla};
    use netlink_packet_netfilter::nftables::{
        Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute,
        Lookup, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute,
        VerdictAttribute,
    };
    use netlink_packet_netfilter::{
        NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
    };

    use super::{Action, CmpOp, Cond, Field, NftRule};
    use crate::error::NetnsError;

    /// Rules a dump reads at most.
    const MAX_RULES: usize = 200_000;

    /// The dropping and rejecting rules of every table of the namespace at `path` (`None`: the
    /// caller's own), with their counters: `nft -a list ruleset`, over netlink. Needs
    /// CAP_NET_ADMIN.
    pub fn read_ruleset(path: Option<&Path>) -> Result<Vec<NftRule>, NetnsError> {
        let work = || {
            let mut out = Vec::new();
            let request = NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
                NfTablesMessage::GetRule(netlink_packet_netfilter::nftables::RuleMessage {
                    attributes: vec![],
                }),
            );
            crate::nfnl::dump(request, MAX_RULES, |inner, header| {
                if let NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(r)) = inner
                    && let Some(rule) = rule(family(header.family), r.attributes)
                {
                    out.push(rule);
                }
            })
            .map(|_| out)
            .map_err(|e| e.to_string())
        };
        crate::nfnl::dump_in(path, "nftables ruleset", work)
    }

    fn family(f: NetfilterProtoFamily) -> &'static str {
        match f {
            NetfilterProtoFamily::Inet => "inet",
            NetfilterProtoFamily::IPv4 => "ip",
            NetfilterProtoFamily::IPv6 => "ip6",
            NetfilterProtoFamily::ARP => "arp",
            NetfilterProtoFamily::Bridge => "bridge",
            NetfilterProtoFamily::NetDev => "netdev",
            _ => "unknown",
        }
    }

    /// What a register holds: a field (with a mask and xor), or something not modelled.
    #[derive(Clone)]
    enum Reg {
        Field(Field, Option<(Vec<u8>, Vec<u8>)>),
        Other(String),
    }

    fn reg_num(r: &Register) -> u32 {
        u32::from(*r)
    }

    fn data_value(d: &DataAttribute) -> Option<Vec<u8>> {
        match d {
            DataAttribute::Value(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The field a payload load reads; `v6`: the layer 3 family, when the table or an earlier
    /// `meta nfproto` says.
    fn payload_field(base: u32, offset: u32, len: u32, v6: Option<bool>) -> Option<Field> {
        let (v4_ok, v6_ok) = (v6 != Some(true), v6 != Some(false));
        // A part of an address: nft loads only the bytes a prefix needs (`ip daddr 10.0.0.0/8`
        // is one byte at offset 16).
        let part = |start: u32, size: u32| {
            (offset >= start && offset + len <= start + size)
                .then(|| ((offset - start) as u8, len as u8))
        };
        Some(match (base, offset, len) {
            (1, 9, 1) if v4_ok => Field::L4Proto,
            (1, 6, 1) if v6_ok => Field::L4Proto,
            (1, 12, 4) if v4_ok => Field::SrcAddr,
            (1, 16, 4) if v4_ok => Field::DstAddr,
            (1, 8, 16) if v6_ok => Field::SrcAddr,
            (1, 24, 16) if v6_ok => Field::DstAddr,
            (2, 0, 2) => Field::SrcPort,
            (2, 2, 2) => Field::DstPort,
            (1, ..) => {
                let v4 = (v4_ok.then(|| part(12, 4)).flatten())
                    .map(|(at, len)| Field::SrcAddrBytes { v6: false, at, len })
                    .or_else(|| {
                        (v4_ok.then(|| part(16, 4)).flatten())
                            .map(|(at, len)| Field::DstAddrBytes { v6: false, at, len })
                    });
                let v6 = (v6_ok.then(|| part(8, 16)).flatten())
                    .map(|(at, len)| Field::SrcAddrBytes { v6: true, at, len })
                    .or_else(|| {
                        (v6_ok.then(|| part(24, 16)).flatten())
                            .map(|(at, len)| Field::DstAddrBytes { v6: true, at, len })
                    });
                match (v4, v6) {
                    (Some(f), None) | (None, Some(f)) => f,
                    // Both layouts fit and nothing says which: not modelled.
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    /// The u32 of a big-endian attribute value.
    fn be32(nla: &DefaultNla) -> Option<u32> {
        let mut v = vec![0u8; nla.value_len()];
        nla.emit_value(&mut v);
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    fn bytes(nla: &DefaultNla) -> Vec<u8> {
        let mut v = vec![0u8; nla.value_len()];
        nla.emit_value(&mut v);
        v
    }

    /// NFTA_DATA_VALUE inside a nested NFTA_*_DATA attribute.
    fn nested_value(nla: &DefaultNla) -> Option<Vec<u8>> {
        let raw = bytes(nla);
        let mut at = 0;
        while at + 4 <= raw.len() {
            let len = usize::from(u16::from_ne_bytes([raw[at], raw[at + 1]]));
            let kind = u16::from_ne_bytes([raw[at + 2], raw[at + 3]]) & 0x3fff;
            if len < 4 || at + len > raw.len() {
                return None;
            }
            if kind == 1 {
                return Some(raw[at + 4..at + len].to_vec());
            }
            at += (len + 3) & !3;
        }
        None
    }

    fn rule(family: &'static str, attrs: Vec<RuleAttribute>) -> Option<NftRule> {
        let mut r = NftRule {
            family,
            table: String::new(),
            chain: String::new(),
            handle: 0,
            comment: None,
            action: Action::Drop,
            packets: None,
            conds: Vec::new(),
        };
        let mut action = None;
        for a in attrs {
            match a {
                RuleAttribute::Table(t) => r.table = t,
                RuleAttribute::Chain(c) => r.chain = c,
                RuleAttribute::Handle(h) => r.handle = h,
                RuleAttribute::UserData(u) => r.comment = r.comment.or_else(|| comment(&u)),
                RuleAttribute::Expressions(list) => {
                    let mut regs: HashMap<u32, Reg> = HashMap::new();
                    let mut state = State {
                        v6: match family {
                            "ip" => Some(false),
                            "ip6" => Some(true),
                            _ => None,
                        },
                        action: None,
                    };
                    for item in list {
                        if let ListAttribute::Element(e) = item {
                            expression(e, &mut regs, &mut r, &mut state);
                        }
                    }
                    action = state.action;
                }
                _ => {}
            }
        }
        r.action = action?;
        Some(r)
    }

    /// The comment of a rule's user data (NFTNL_UDATA_RULE_COMMENT, type 0: type, length,
    /// NUL-terminated text).
    fn comment(u: &[u8]) -> Option<String> {
        let mut at = 0;
        while at + 2 <= u.len() {
            let (ty, len) = (u[at], usize::from(u[at + 1]));
            let value = u.get(at + 2..at + 2 + len)?;
            if ty == 0 {
                let text = value.split(|b| *b == 0).next().unwrap_or_default();
                return Some(String::from_utf8_lossy(text).into_owned());
            }
            at += 2 + len;
        }
        None
    }

    /// What the expressions so far of a rule say: its layer 3 family, its action.
    struct State {
        v6: Option<bool>,
        action: Option<Action>,
    }

    fn expression(
        e: Vec<ExpressionAttribute>,
        regs: &mut HashMap<u32, Reg>,
        r: &mut NftRule,
        state: &mut State,
    ) {
        let Some(data) = e.into_iter().find_map(|a| match a {
            ExpressionAttribute::Data(d) => Some(d),
            _ => None,
        }) else {
            return;
        };
        match data {
            Expressions::Payload(p) => {
                let (mut base, mut offset, mut len, mut dreg) = (None, None, None, None);
                for a in &p {
                    match a {
                        Payload::Base(b) => base = Some(*b),
                        Payload::Offset(o) => offset = Some(*o),
                        Payload::Len(l) => len = Some(*l),
                        Payload::DestinationRegister(d) => dreg = Some(reg_num(d)),
                        _ => {}
                    }
                }
                if let Some(d) = dreg {
                    let field = match (base, offset, len) {
                        (Some(b), Some(o), Some(l)) => payload_field(b, o, l, state.v6),
                        _ => None,
                    };
                    let desc = format!("payload {base:?}/{offset:?}/{len:?}");
                    regs.insert(d, field.map_or(Reg::Other(desc), |f| Reg::Field(f, None)));
                }
            }
            Expressions::Meta(m) => {
                let key = m.iter().find_map(|a| match a {
                    Meta::Key(k) => Some(*k),
                    _ => None,
                });
                if let Some(d) = m.iter().find_map(|a| match a {
                    Meta::DestinationRegister(d) => Some(reg_num(d)),
                    _ => None,
                }) {
                    let field = match key {
                        Some(MetaKey::L4Proto) => Some(Field::L4Proto),
                        Some(MetaKey::Nfproto) => Some(Field::NfProto),
                        Some(MetaKey::EtherTypeProtocol) => Some(Field::EtherType),
                        _ => None,
                    };
                    let desc = format!("meta {key:?}");
                    regs.insert(d, field.map_or(Reg::Other(desc), |f| Reg::Field(f, None)));
                }
            }
            Expressions::Bitwise(b) => {
                let (mut sreg, mut dreg, mut mask, mut xor, mut op) = (None, None, None, None, 0);
                for a in &b {
                    match a {
                        Bitwise::SourceRegister(s) => sreg = Some(reg_num(s)),
                        Bitwise::DestinationRegister(d) => dreg = Some(reg_num(d)),
                        Bitwise::Mask(m) => mask = data_value(m),
                        Bitwise::Xor(x) => xor = data_value(x),
                        Bitwise::Op(o) => op = *o,
                        _ => {}
                    }
                }
                if let Some(d) = dreg {
                    let src = sreg.and_then(|s| regs.get(&s).cloned());
                    let out = match (src, mask, xor) {
                        (Some(Reg::Field(f, None)), Some(m), Some(x)) if op == 0 => {
                            Reg::Field(f, Some((m, x)))
                        }
                        _ => Reg::Other("bitwise".into()),
                    };
                    regs.insert(d, out);
                }
            }
            Expressions::Cmp(c) => {
                let (mut sreg, mut op, mut value) = (None, None, None);
                for a in &c {
                    match a {
                        Cmp::SourceRegister(s) => sreg = Some(reg_num(s)),
                        Cmp::Op(o) => op = Some(*o),
                        Cmp::Data(d) => value = data_value(d),
                        _ => {}
                    }
                }
                let op = match op {
                    Some(Operator::Equal) => Some(CmpOp::Eq),
                    Some(Operator::NotEqual) => Some(CmpOp::Neq),
                    Some(Operator::LessThan) => Some(CmpOp::Lt),
                    Some(Operator::LessThanEqual) => Some(CmpOp::Lte),
                    Some(Operator::GreaterThan) => Some(CmpOp::Gt),
                    Some(Operator::GreatherThanEqual) => Some(CmpOp::Gte),
                    _ => None,
                };
                let cond = match (sreg.and_then(|s| regs.get(&s).cloned()), op, value) {
                    (Some(Reg::Field(field, mask)), Some(op), Some(value)) => Cond::Cmp {
                        field,
                        mask,
                        op,
                        value,
                    },
                    (Some(Reg::Other(what)), ..) => Cond::Unknown(what),
                    _ => Cond::Unknown("cmp".into()),
                };
                // `meta nfproto ipv4` and the like tell how to read the network header next.
                if let Cond::Cmp {
                    field: Field::NfProto | Field::EtherType,
                    mask: None,
                    op: CmpOp::Eq,
                    value,
                } = &cond
                {
                    state.v6 = match value.as_slice() {
                        [2] | [0x08, 0x00] => Some(false),
                        [10] | [0x86, 0xdd] => Some(true),
                        _ => state.v6,
                    };
                }
                r.conds.push(cond);
            }
            Expressions::Immediate(i) => {
                let to_verdict = i
                    .iter()
                    .any(|a| matches!(a, Immediate::DestinationRegister(Register::Verdict)));
                let code = i.iter().find_map(|a| match a {
                    Immediate::Data(DataAttribute::Verdict(v)) => v.iter().find_map(|v| match v {
                        VerdictAttribute::Code(c) => Some(u32::from(*c)),
                        _ => None,
                    }),
                    _ => None,
                });
                // NF_DROP is 0.
                if to_verdict && code == Some(0) {
                    state.action = Some(Action::Drop);
                }
            }
            // A set lookup (not a map, which loads a register): its elements are not read.
            Expressions::Lookup(l)
                if !l
                    .iter()
                    .any(|a| matches!(a, Lookup::DestinationRegister(_))) =>
            {
                let set = l.iter().find_map(|a| match a {
                    Lookup::Set(s) => Some(s.clone()),
                    _ => None,
                });
                r.conds.push(Cond::Unknown(format!(
                    "lookup in set {}",
                    set.unwrap_or_default()
                )));
            }
            Expressions::Other {
                expression_type,
                attributes,
            } => other(&expression_type, &attributes, regs, r, &mut state.action),
            _ => {}
        }
    }

    /// Expressions `netlink-packet-netfilter` leaves as attributes: counter, reject, range, the
    /// iptables compat match and target, and loads of other kinds.
    fn other(
        kind: &str,
        attrs: &[DefaultNla],
        regs: &mut HashMap<u32, Reg>,
        r: &mut NftRule,
        action: &mut Option<Action>,
    ) {
        let attr = |k: u16| attrs.iter().find(|a| a.kind() & 0x3fff == k);
        match kind {
            // NFTA_COUNTER_PACKETS
            "counter" => {
                if let Some(a) = attr(2) {
                    let v = bytes(a);
                    if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                        r.packets = Some(u64::from_be_bytes(b));
                    }
                }
            }
            "reject" => *action = Some(Action::Reject),
            // NFTA_TARGET_NAME
            "target" => {
                if attr(1).is_some_and(|a| bytes(a).starts_with(b"REJECT\0")) {
                    *action = Some(Action::Reject);
                }
            }
            // NFTA_RANGE_SREG, _OP, _FROM_DATA, _TO_DATA
            "range" => {
                let field = attr(1).and_then(be32).and_then(|s| regs.get(&s).cloned());
                let invert = attr(2).and_then(be32) == Some(1);
                let (from, to) = (
                    attr(3).and_then(nested_value),
                    attr(4).and_then(nested_value),
                );
                r.conds.push(match (field, from, to) {
                    (Some(Reg::Field(field, None)), Some(from), Some(to)) => Cond::Range {
                        field,
                        from,
                        to,
                        invert,
                    },
                    _ => Cond::Unknown("range".into()),
                });
            }
            // NFTA_MATCH_NAME, NFTA_MATCH_INFO: xt_udp / xt_tcp, host byte order.
            "match" => {
                let name = attr(1).map(bytes).unwrap_or_default();
                let name =
                    String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or_default())
                        .into_owned();
                let info = attr(3).map(bytes).unwrap_or_default();
                match name.as_str() {
                    "udp" | "tcp" if info.len() >= 9 => {
                        let port = |i: usize| {
                            u16::from_ne_bytes([info[i], info[i + 1]])
                                .to_be_bytes()
                                .to_vec()
                        };
                        let inv = info[if name == "udp" {
                            8
                        } else {
                            11.min(info.len() - 1)
                        }];
                        for (field, at, bit) in [(Field::SrcPort, 0, 1), (Field::DstPort, 4, 2)] {
                            let (from, to) = (port(at), port(at + 2));
                            let any = from == [0, 0] && to == [0xff, 0xff];
                            if !any || inv & bit != 0 {
                                r.conds.push(Cond::Range {
                                    field,
                                    from,
                                    to,
                                    invert: inv & bit != 0,
                                });
                            }
                        }
                    }
                    "comment" => {
                        let text = info.split(|b| *b == 0).next().unwrap_or_default();
                        r.comment = Some(String::from_utf8_lossy(text).into_owned());
                    }
                    other => r.conds.push(Cond::Unknown(format!("match {other}"))),
                }
            }
            // Conditions that depend on more than the packet's header.
            "limit" | "quota" | "connlimit" | "socket" | "fib" | "osf" => {
                r.conds.push(Cond::Unknown(kind.to_owned()))
            }
            // Loads into a register (NFTA_*_DREG is attribute 1 for ct, rt, exthdr, numgen,
            // hash, ...): what they load is not modelled.
            _ => {
                if let Some(d) = attr(1).and_then(be32).filter(|_| kind != "log") {
                    regs.insert(d, Reg::Other(kind.to_owned()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(family: &'static str, conds: Vec<Cond>, packets: Option<u64>) -> NftRule {
        NftRule {
            family,
            table: "fw".into(),
            chain: "forward".into(),
            handle: 4,
            comment: Some("block dns".into()),
            action: Action::Drop,
            packets,
            conds,
        }
    }

    fn eq(field: Field, value: &[u8]) -> Cond {
        Cond::Cmp {
            field,
            mask: None,
            op: CmpOp::Eq,
            value: value.to_vec(),
        }
    }

    fn vip() -> SocketAddr {
        "10.96.0.10:53".parse().unwrap()
    }

    #[test]
    fn conditions_on_protocol_address_and_port() {
        let [query, answer] = Flow::dns(Transport::Udp, vip());
        let udp53 = vec![eq(Field::L4Proto, &[17]), eq(Field::DstPort, &[0, 53])];
        assert_eq!(rule("inet", udp53.clone(), None).fits(&query), Fit::Yes);
        assert_eq!(
            rule("inet", udp53.clone(), None).fits(&answer),
            Fit::Maybe,
            "dport unknown"
        );
        assert_eq!(
            rule("ip6", udp53.clone(), None).fits(&query),
            Fit::No,
            "another family"
        );
        let [tcp, _] = Flow::dns(Transport::Tcp, vip());
        assert_eq!(rule("ip", udp53, None).fits(&tcp), Fit::No);
        // ip daddr 10.0.0.0/8
        let net = Cond::Cmp {
            field: Field::DstAddr,
            mask: Some((vec![255, 0, 0, 0], vec![0; 4])),
            op: CmpOp::Eq,
            value: vec![10, 0, 0, 0],
        };
        assert_eq!(rule("ip", vec![net.clone()], None).fits(&query), Fit::Yes);
        let other = Flow::dns(Transport::Udp, "192.0.2.1:53".parse().unwrap())[0];
        assert_eq!(rule("ip", vec![net], None).fits(&other), Fit::No);
        // udp dport != 53; dport 1-1024; a set lookup.
        let neq = Cond::Cmp {
            field: Field::DstPort,
            mask: None,
            op: CmpOp::Neq,
            value: vec![0, 53],
        };
        assert_eq!(rule("inet", vec![neq], None).fits(&query), Fit::No);
        let range = Cond::Range {
            field: Field::DstPort,
            from: vec![0, 1],
            to: vec![4, 0],
            invert: false,
        };
        assert_eq!(rule("inet", vec![range], None).fits(&query), Fit::Yes);
        let set = Cond::Unknown("lookup in set __set0".into());
        assert_eq!(rule("inet", vec![set], None).fits(&query), Fit::Maybe);
        // IPv6 flows never match an IPv4 address condition for sure.
        let v6 = Flow::dns(Transport::Udp, "[fd00::a]:53".parse().unwrap())[0];
        assert_eq!(
            rule("inet", vec![eq(Field::DstAddr, &[10, 96, 0, 10])], None).fits(&v6),
            Fit::Maybe
        );
        assert_eq!(
            rule("inet", vec![eq(Field::NfProto, &[2])], None).fits(&v6),
            Fit::No
        );
    }

    #[test]
    fn a_rule_is_named_on_counter_growth_or_a_sure_match_without_counter() {
        let failing = [(Transport::Udp, vip())];
        let pod: IpAddr = "10.244.0.2".parse().unwrap();
        let to_pod = vec![
            eq(Field::DstAddr, &[10, 244, 0, 2]),
            eq(Field::DstPort, &[0, 53]),
        ];
        // On the node's forward path the Service address is already translated: the rule names
        // the pod, and matches through the endpoints.
        let before = [rule("inet", to_pod.clone(), Some(3))];
        let after = [rule("inet", to_pod.clone(), Some(5))];
        let c = culprits(&before, &after, &failing, &[pod], "the node's namespace");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].grew, Some(2));
        let f = culprit_finding(&c[0]);
        assert_eq!(f.code.as_str(), "nftables-drop");
        assert_eq!(
            f.message,
            "table inet fw, chain forward, handle 4 (comment \"block dns\") in the node's namespace drops UDP DNS to 10.96.0.10:53: its counter grew by 2 packets while the probe failed (`nft -a list chain inet fw forward`)"
        );
        // Without the endpoints it may still match (the answers' direction is unknown): named
        // because its counter grew.
        assert_eq!(culprits(&before, &after, &failing, &[], "x").len(), 1);
        // A TCP rule is not on a UDP path, however its counter moves.
        let tcp = |n| [rule("inet", vec![eq(Field::L4Proto, &[6])], Some(n))];
        assert!(culprits(&tcp(1), &tcp(9), &failing, &[pod], "x").is_empty());
        // A counter that did not move: not this rule.
        assert!(culprits(&before, &before, &failing, &[pod], "x").is_empty());
        // No counter: named when it surely matches, not when it only may.
        let sure = [rule("inet", to_pod, None)];
        assert_eq!(culprits(&sure, &sure, &failing, &[pod], "x")[0].grew, None);
        let maybe = [rule("inet", vec![Cond::Unknown("ct state".into())], None)];
        assert!(culprits(&maybe, &maybe, &failing, &[pod], "x").is_empty());
        let maybe_counted = [rule(
            "inet",
            vec![Cond::Unknown("ct state".into())],
            Some(1),
        )];
        let grown = [rule(
            "inet",
            vec![Cond::Unknown("ct state".into())],
            Some(2),
        )];
        assert_eq!(
            culprits(&maybe_counted, &grown, &failing, &[pod], "x").len(),
            1
        );
        // iptables-nft chains get the iptables command too.
        let mut ipt = rule("ip", vec![], None);
        ipt.table = "filter".into();
        ipt.chain = "OUTPUT".into();
        assert_eq!(
            ipt.command(),
            "`nft -a list chain ip filter OUTPUT`; `iptables-nft -t filter -S OUTPUT`"
        );
    }
}
