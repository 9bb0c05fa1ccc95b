//! Building queries and accepting replies, per RFC 5452 §9.1 and RFC 7766 §8.
//!
//! A reply is accepted only when it parses, is a response (QR=1), carries the query's
//! transaction ID and echoes its question (name compared case-insensitively, type and class
//! exactly). The source address and port are checked by the transports. Anything else is dropped
//! and the probe keeps waiting until its deadline, so a spoofed or stray datagram can neither
//! satisfy nor abort a probe.

use hickory_proto::op::{Edns, Message, MessageType, Query};

use crate::spec::{EDNS_PAYLOAD, ProbeSpec};

/// Why a received message was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// It did not parse.
    Malformed(String),
    /// QR=0: a query, not a response.
    NotResponse,
    /// Another transaction ID.
    Id,
    /// Another question (or none).
    Question,
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

/// Parses `bytes` and accepts it as the reply to `query`, or says why not.
pub(crate) fn accept_reply(query: &Message, bytes: &[u8]) -> Result<Message, Mismatch> {
    let reply = Message::from_vec(bytes).map_err(|e| Mismatch::Malformed(e.to_string()))?;
    if reply.metadata.message_type != MessageType::Response {
        return Err(Mismatch::NotResponse);
    }
    if reply.metadata.id != query.metadata.id {
        return Err(Mismatch::Id);
    }
    let (Some(q), [r]) = (query.queries.first(), reply.queries.as_slice()) else {
        return Err(Mismatch::Question);
    };
    // `Name`'s equality ignores ASCII case (RFC 4343).
    if r.name != q.name || r.query_type != q.query_type || r.query_class != q.query_class {
        return Err(Mismatch::Question);
    }
    Ok(reply)
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
    fn drops_what_does_not_match() {
        let q = build_query(&spec());
        let mut wrong_id = reply_to(&q);
        wrong_id.metadata.id = q.metadata.id.wrapping_add(1);
        assert_eq!(
            accept_reply(&q, &wrong_id.to_vec().unwrap()).unwrap_err(),
            Mismatch::Id
        );

        let mut other_q = reply_to(&q);
        other_q.queries[0].name = Name::from_ascii("evil.example.").unwrap();
        assert_eq!(
            accept_reply(&q, &other_q.to_vec().unwrap()).unwrap_err(),
            Mismatch::Question
        );

        let mut other_type = reply_to(&q);
        other_type.queries[0].query_type = RecordType::AAAA;
        assert_eq!(
            accept_reply(&q, &other_type.to_vec().unwrap()).unwrap_err(),
            Mismatch::Question
        );

        let mut no_question = reply_to(&q);
        no_question.queries.clear();
        assert_eq!(
            accept_reply(&q, &no_question.to_vec().unwrap()).unwrap_err(),
            Mismatch::Question
        );

        assert_eq!(
            accept_reply(&q, &q.to_vec().unwrap()).unwrap_err(),
            Mismatch::NotResponse
        );
        assert!(matches!(
            accept_reply(&q, b"\x00\x01garbage"),
            Err(Mismatch::Malformed(_))
        ));
        assert!(matches!(accept_reply(&q, b""), Err(Mismatch::Malformed(_))));
    }
}
