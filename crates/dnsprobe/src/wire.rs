//! Building queries and accepting replies, per RFC 5452 §9.1 and RFC 7766 §8.
//!
//! A reply is accepted only when it parses, is a response (QR=1), carries the query's
//! transaction ID and echoes its question (name compared case-insensitively, type and class
//! exactly). The source address and port are checked by the transports. Anything else is dropped
//! and the probe keeps waiting until its deadline, so a spoofed or stray datagram can neither
//! satisfy nor abort a probe.

use std::fmt;

use hickory_proto::op::{Edns, Header, Message, MessageType, Query};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError, Restrict};

use crate::spec::{EDNS_PAYLOAD, ProbeSpec, record_type_name};

/// Why a received message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Its header or question did not parse: nobody can tell what it answers. Dropped.
    Malformed(String),
    /// QR=0: a query, not a response. Dropped.
    NotResponse {
        /// Its transaction ID.
        id: u16,
    },
    /// Another transaction ID. Dropped.
    Id {
        /// The ID it carried.
        got: u16,
        /// The ID asked.
        want: u16,
        /// The question it echoed, as text, if it had exactly one.
        question: Option<String>,
    },
    /// Another question (or none, or several). Dropped.
    Question {
        /// Its transaction ID (the query's).
        id: u16,
        /// What it echoed instead: `evil.example. A`, `no question`, `2 questions`.
        got: String,
    },
    /// The reply to this query (ID and question match) whose records cannot be read at all (a
    /// record cut short, an owner name that loops): the server's reply is broken. Not dropped:
    /// the probe fails at once as `malformed`.
    Broken(String),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Malformed(detail) => write!(f, "an unreadable message ({detail})"),
            Mismatch::NotResponse { id } => write!(f, "a query (QR=0) with ID {id}, not a reply"),
            Mismatch::Id {
                got,
                want,
                question: Some(q),
            } => write!(f, "a reply to {q} with ID {got} (asked with ID {want})"),
            Mismatch::Id {
                got,
                want,
                question: None,
            } => write!(f, "a reply with ID {got} (asked with ID {want})"),
            Mismatch::Question { id, got } => write!(f, "a reply with ID {id} to {got}"),
            Mismatch::Broken(detail) => write!(f, "a reply whose records are broken ({detail})"),
        }
    }
}

/// A fresh query for `spec`: random transaction ID (from hickory-proto's `Message::query`).
pub(crate) fn build_query(spec: &ProbeSpec) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = spec.recursion_desired;
    m.add_query(Query::query(spec.name.clone(), spec.query_type));
    if spec.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(edns);
    }
    m
}

/// `name TYPE` of a question, as `dig` writes it.
pub(crate) fn question_text(q: &Query) -> String {
    format!("{} {}", q.name, record_type_name(q.query_type))
}

/// Decodes `bytes` and accepts it as the reply to `query`, or says why not.
///
/// The header and the question are decoded first: a message that is not a response, carries
/// another ID or echoes another question is not the reply, whatever follows. Then the records,
/// one at a time: RDATA that hickory-proto cannot decode (a CAA tag longer than 15 characters, an
/// ALPN id that is not UTF-8, ...) is kept as raw bytes (`RData::Unknown`), as `dig` shows it, so
/// a server that answered is never taken for one that did not. Only a record whose framing is
/// broken (its owner name, its length) makes a matching reply [`Mismatch::Broken`].
pub(crate) fn accept_reply(query: &Message, bytes: &[u8]) -> Result<Message, Mismatch> {
    let mut d = BinDecoder::new(bytes);
    let Header {
        mut metadata,
        counts,
    } = Header::read(&mut d).map_err(|e| Mismatch::Malformed(e.to_string()))?;
    let mut queries = Vec::with_capacity(usize::from(counts.queries.min(4)));
    for _ in 0..counts.queries {
        queries.push(Query::read(&mut d).map_err(|e| Mismatch::Malformed(e.to_string()))?);
    }
    if metadata.message_type != MessageType::Response {
        return Err(Mismatch::NotResponse { id: metadata.id });
    }
    if metadata.id != query.metadata.id {
        return Err(Mismatch::Id {
            got: metadata.id,
            want: query.metadata.id,
            question: match queries.as_slice() {
                [q] => Some(question_text(q)),
                _ => None,
            },
        });
    }
    let (Some(q), [r]) = (query.queries.first(), queries.as_slice()) else {
        return Err(Mismatch::Question {
            id: metadata.id,
            got: match queries.len() {
                0 => "no question".to_owned(),
                n => format!("{n} questions"),
            },
        });
    };
    // `Name`'s equality ignores ASCII case (RFC 4343).
    if r.name != q.name || r.query_type != q.query_type || r.query_class != q.query_class {
        return Err(Mismatch::Question {
            id: metadata.id,
            got: if r.query_class == q.query_class {
                question_text(r)
            } else {
                format!("{} (class {})", question_text(r), class_name(r.query_class))
            },
        });
    }
    // The reply to this query: from here on, a fault is the server's.
    let truncated = metadata.truncation;
    let mut reply = Message::new(metadata.id, metadata.message_type, metadata.op_code);
    reply.queries = queries;
    let sections = [counts.answers, counts.authorities, counts.additionals];
    for (section, count) in sections.into_iter().enumerate() {
        for _ in 0..count {
            let record = match read_record(&mut d, bytes) {
                Ok(r) => r,
                // A truncated reply may be cut anywhere (RFC 2181 §9): keep what came whole.
                Err(_) if truncated => break,
                Err(e) => {
                    let which = ["answer", "authority", "additional"][section];
                    return Err(Mismatch::Broken(format!("{which} section: {e}")));
                }
            };
            match section {
                0 => reply.answers.push(record),
                1 => reply.authorities.push(record),
                // A decoded OPT record only (hickory-proto's conversion panics on anything else):
                // an OPT whose data did not decode stays an ordinary record.
                _ if matches!(record.data, RData::OPT(_)) && record.name.is_root() => {
                    if reply.edns.is_none() {
                        let edns = Edns::from(&record);
                        metadata.merge_response_code(edns.rcode_high());
                        reply.edns = Some(edns);
                    }
                }
                _ => reply.additionals.push(record),
            }
        }
    }
    reply.metadata = metadata;
    Ok(reply)
}

/// One resource record; RDATA that does not decode is kept raw.
fn read_record(d: &mut BinDecoder<'_>, message: &[u8]) -> Result<Record, DecodeError> {
    let name = Name::read(d)?;
    let record_type = RecordType::from(d.read_u16()?.unverified());
    let class = d.read_u16()?.unverified();
    let ttl = d.read_u32()?.unverified();
    let len = d.read_u16()?.unverified();
    let start = d.index();
    let raw = d.read_slice(usize::from(len))?.unverified();
    let data = decode_rdata(message, start, len, record_type).unwrap_or_else(|| RData::Unknown {
        code: record_type,
        rdata: if raw.is_empty() {
            NULL::new()
        } else {
            NULL::with(raw.to_vec())
        },
    });
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = if record_type == RecordType::OPT {
        DNSClass::for_opt(class)
    } else {
        DNSClass::from(class)
    };
    Ok(record)
}

/// RDATA of `len` bytes at `start` in `message`, decoded; `None` when hickory-proto cannot. The
/// decoder sees the message up to the RDATA's end: names may point back into it, not past it.
fn decode_rdata(message: &[u8], start: usize, len: u16, record_type: RecordType) -> Option<RData> {
    let within = message.get(..start + usize::from(len))?;
    let mut d = BinDecoder::new(within);
    d.read_slice(start).ok()?;
    match RData::read(&mut d, record_type, Restrict::new(len)) {
        // hickory-proto's placeholder for an empty RDATA in updates: keep the data raw.
        Ok(RData::Update0(_)) | Err(_) => None,
        // Data hickory-proto decodes but cannot write as text (its `Display` fails, e.g. an OPT
        // record in the answer section): keep it raw, so that the report can show it.
        Ok(data) => {
            use std::fmt::Write;
            write!(Discard, "{data}").ok().map(|()| data)
        }
    }
}

/// A `fmt::Write` that keeps nothing: to learn whether a `Display` succeeds without allocating.
struct Discard;

impl fmt::Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// A record's data as text: hickory-proto's form, or RFC 3597's `\# LEN HEX` for data kept raw
/// (an unknown type, or data that did not decode), as `dig` prints it.
pub(crate) fn rdata_text(data: &RData) -> String {
    match data {
        RData::Unknown { rdata, .. } => {
            let bytes = &rdata.anything;
            let mut s = format!("\\# {}", bytes.len());
            if !bytes.is_empty() {
                s.push(' ');
                for b in bytes {
                    s.push_str(&format!("{b:02X}"));
                }
            }
            s
        }
        other => {
            use std::fmt::Write;
            let mut text = String::new();
            match write!(text, "{other}") {
                Ok(()) => text,
                Err(_) => format!(
                    "({} data that cannot be shown)",
                    record_type_name(other.record_type())
                ),
            }
        }
    }
}

/// A record as zone-file text: `name TTL class type data`.
pub(crate) fn record_text(r: &Record) -> String {
    format!(
        "{} {} {} {} {}",
        r.name,
        r.ttl,
        class_name(r.dns_class),
        record_type_name(r.record_type()),
        rdata_text(&r.data)
    )
}

fn class_name(class: DNSClass) -> String {
    match class {
        DNSClass::Unknown(n) => format!("CLASS{n}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    fn spec() -> ProbeSpec {
        ProbeSpec::new("127.0.0.1:53".parse().unwrap())
    }

    fn reply_to(q: &Message) -> Message {
        let mut r = Message::response(q.metadata.id, q.metadata.op_code);
        r.add_queries(q.queries.clone());
        r
    }

    #[test]
    fn query_shape() {
        let q = build_query(&spec());
        assert!(q.metadata.recursion_desired);
        assert_eq!(q.queries.len(), 1);
        assert_eq!(q.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        let mut s = spec();
        s.edns = false;
        s.recursion_desired = false;
        let q = build_query(&s);
        assert!(q.edns.is_none());
        assert!(!q.metadata.recursion_desired);
    }

    #[test]
    fn ids_are_random() {
        let ids: std::collections::BTreeSet<u16> =
            (0..64).map(|_| build_query(&spec()).metadata.id).collect();
        assert!(ids.len() > 50, "64 queries shared IDs: {}", ids.len());
    }

    #[test]
    fn accepts_the_matching_reply_in_any_case() {
        let q = build_query(&spec());
        let mut r = reply_to(&q);
        r.queries[0].name = Name::from_ascii("KUBERNETES.default.svc.Cluster.Local.").unwrap();
        assert!(accept_reply(&q, &r.to_vec().unwrap()).is_ok());
    }

    #[test]
    fn drops_what_does_not_match_and_says_what_it_was() {
        let q = build_query(&spec());
        let id = q.metadata.id;
        let mut wrong_id = reply_to(&q);
        wrong_id.metadata.id = id.wrapping_add(1);
        let e = accept_reply(&q, &wrong_id.to_vec().unwrap()).unwrap_err();
        assert!(matches!(e, Mismatch::Id { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "a reply to kubernetes.default.svc.cluster.local. A with ID {} (asked with ID {id})",
                id.wrapping_add(1)
            )
        );

        let mut other_q = reply_to(&q);
        other_q.queries[0].name = Name::from_ascii("evil.example.").unwrap();
        let e = accept_reply(&q, &other_q.to_vec().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("a reply with ID {id} to evil.example. A")
        );

        let mut other_type = reply_to(&q);
        other_type.queries[0].query_type = RecordType::Unknown(65280);
        let e = accept_reply(&q, &other_type.to_vec().unwrap()).unwrap_err();
        assert!(e.to_string().ends_with("cluster.local. TYPE65280"), "{e}");

        let mut no_question = reply_to(&q);
        no_question.queries.clear();
        let e = accept_reply(&q, &no_question.to_vec().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("a reply with ID {id} to no question")
        );

        assert_eq!(
            accept_reply(&q, &q.to_vec().unwrap()).unwrap_err(),
            Mismatch::NotResponse { id }
        );
        assert!(matches!(
            accept_reply(&q, b"\x00\x01garbage"),
            Err(Mismatch::Malformed(_))
        ));
        assert!(matches!(accept_reply(&q, b""), Err(Mismatch::Malformed(_))));
    }

    /// `q`'s reply with this answer section, written by hand: (owner, type, rdata), class IN.
    fn reply_with(q: &Message, records: &[(&str, u16, &[u8])]) -> Vec<u8> {
        let mut bytes = reply_to(q).to_vec().unwrap();
        bytes[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (owner, rtype, rdata) in records {
            for label in owner.trim_end_matches('.').split('.') {
                bytes.push(label.len() as u8);
                bytes.extend_from_slice(label.as_bytes());
            }
            bytes.push(0);
            bytes.extend_from_slice(&rtype.to_be_bytes());
            bytes.extend_from_slice(&1u16.to_be_bytes());
            bytes.extend_from_slice(&300u32.to_be_bytes());
            bytes.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            bytes.extend_from_slice(rdata);
        }
        bytes
    }

    const NAME: &str = "kubernetes.default.svc.cluster.local.";

    #[test]
    fn records_hickory_cannot_decode_are_kept_raw() {
        let q = build_query(&spec());
        // CAA with a 16-character tag (RFC 8659 allows up to 15; servers serve it, dig reads it).
        let caa = b"\x00\x10abcdefghijklmnopx";
        // HTTPS (65) priority 1, target ".", alpn (key 1) holding one id that is not UTF-8.
        let https = b"\x00\x01\x00\x00\x01\x00\x03\x02\xff\xfe";
        let a = [10, 96, 0, 1];
        let bytes = reply_with(&q, &[(NAME, 257, caa), (NAME, 65, https), (NAME, 1, &a)]);
        assert!(
            Message::from_vec(&bytes).is_err(),
            "hickory-proto alone drops this reply"
        );
        let reply = accept_reply(&q, &bytes).unwrap();
        assert_eq!(reply.answers.len(), 3);
        assert_eq!(
            rdata_text(&reply.answers[0].data),
            "\\# 19 00106162636465666768696A6B6C6D6E6F7078"
        );
        assert_eq!(
            record_text(&reply.answers[1]),
            format!("{NAME} 300 IN HTTPS \\# 10 0001000001000302FFFE")
        );
        assert_eq!(rdata_text(&reply.answers[2].data), "10.96.0.1");
    }

    #[test]
    fn a_matching_reply_with_broken_records_is_not_dropped() {
        let q = build_query(&spec());
        let mut bytes = reply_with(&q, &[(NAME, 1, &[10, 96, 0, 1])]);
        bytes.truncate(bytes.len() - 2);
        let e = accept_reply(&q, &bytes).unwrap_err();
        assert!(matches!(e, Mismatch::Broken(_)), "{e:?}");
        // Truncated (TC): what came whole is kept.
        bytes[2] |= 0x02;
        let reply = accept_reply(&q, &bytes).unwrap();
        assert!(reply.metadata.truncation);
        assert!(reply.answers.is_empty());
    }

    #[test]
    fn an_owner_name_that_loops_is_broken() {
        let q = build_query(&spec());
        let mut bytes = reply_to(&q).to_vec().unwrap();
        bytes[6..8].copy_from_slice(&1u16.to_be_bytes());
        let at = bytes.len() as u16;
        // A compression pointer to itself.
        bytes.extend_from_slice(&(0xC000 | at).to_be_bytes());
        bytes.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, 1]);
        assert!(matches!(accept_reply(&q, &bytes), Err(Mismatch::Broken(_))));
    }

    #[test]
    fn unknown_types_and_empty_rdata_read_as_rfc3597() {
        let q = build_query(&spec());
        let bytes = reply_with(&q, &[(NAME, 65280, &[1, 2]), (NAME, 1, &[])]);
        let reply = accept_reply(&q, &bytes).unwrap();
        assert_eq!(
            record_text(&reply.answers[0]),
            format!("{NAME} 300 IN TYPE65280 \\# 2 0102")
        );
        assert_eq!(
            record_text(&reply.answers[1]),
            format!("{NAME} 300 IN A \\# 0")
        );
    }
}
