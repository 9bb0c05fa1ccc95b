//! Turning an accepted response into a verdict: the one place that decides which
//! [`FailureKind`](crate::FailureKind) a response is.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::report::Failure;
use crate::spec::{AnswerExpectation, Expectation, record_type_name};

/// The A and AAAA addresses in a response's answer section that answer its question, in order.
///
/// An address counts only when its owner is the name asked or a name the answer section leads to
/// from it through CNAMEs (followed in any order, each at most once): `evil.example. A
/// 10.96.0.1` in the reply to `kubernetes.default.svc.cluster.local. A` is not an answer. For an
/// A (AAAA) question only A (AAAA) records count. A message without a question (built by hand)
/// has every address in its answer section counted.
///
/// ```
/// use dnsprobe::hickory_proto::op::{Message, OpCode, Query};
/// use dnsprobe::hickory_proto::rr::{Name, RData, Record, RecordType, rdata::{A, CNAME}};
///
/// let name = |s| Name::from_ascii(s).unwrap();
/// let mut m = Message::response(7, OpCode::Query);
/// m.add_query(Query::query(name("www.example."), RecordType::A));
/// m.add_answer(Record::from_rdata(name("evil.example."), 5, RData::A(A::new(10, 0, 0, 66))));
/// m.add_answer(Record::from_rdata(name("www.example."), 5, RData::CNAME(CNAME(name("web.example.")))));
/// m.add_answer(Record::from_rdata(name("web.example."), 5, RData::A(A::new(10, 0, 0, 1))));
/// assert_eq!(dnsprobe::answer_addresses(&m), ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// ```
pub fn answer_addresses(response: &Message) -> Vec<IpAddr> {
    let Some(q) = response.queries.first() else {
        return response
            .answers
            .iter()
            .filter_map(|r| r.data.ip_addr())
            .collect();
    };
    let chain = alias_chain(response, &q.name);
    response
        .answers
        .iter()
        .filter(|r| match q.query_type {
            RecordType::A | RecordType::AAAA => r.record_type() == q.query_type,
            _ => true,
        })
        .filter(|r| chain.contains(&&r.name))
        .filter_map(|r| r.data.ip_addr())
        .collect()
}

/// `name` and every name the answer section's CNAMEs lead to from it (`Name` equality ignores
/// ASCII case). Bounded by the number of records: a CNAME loop ends when it comes back.
fn alias_chain<'a>(response: &'a Message, name: &'a Name) -> Vec<&'a Name> {
    let mut chain = vec![name];
    let mut current = name;
    while let Some(target) = response.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(CNAME(target)) if r.name == *current => Some(target),
        _ => None,
    }) {
        if chain.contains(&target) {
            break;
        }
        chain.push(target);
        current = target;
    }
    chain
}

/// Why an answer section holds records but no address for an A/AAAA question.
fn no_address(response: &Message) -> Option<Failure> {
    let q = response.queries.first()?;
    if !matches!(q.query_type, RecordType::A | RecordType::AAAA)
        || response.answers.is_empty()
        || !answer_addresses(response).is_empty()
    {
        return None;
    }
    let chain = alias_chain(response, &q.name);
    let detail = match chain.as_slice() {
        [_, .., last] if chain.len() > 1 => format!(
            "{} is an alias (CNAME) of {last}, and the answer holds no {} record for it",
            q.name,
            record_type_name(q.query_type)
        ),
        _ => {
            let others: Vec<String> = response
                .answers
                .iter()
                .take(3)
                .map(|r| format!("{} {}", r.name, record_type_name(r.record_type())))
                .collect();
            format!(
                "the answer holds only records of other names or types ({}{})",
                others.join(", "),
                if response.answers.len() > 3 {
                    ", ..."
                } else {
                    ""
                }
            )
        }
    };
    Some(Failure::NoAddress { detail })
}

/// Classifies a response that already matched its query (ID, question, source) against an
/// expectation.
///
/// In order: a truncated response is [`Failure::Truncated`] (the caller decides whether to retry
/// over TCP before asking); a response code not in `expect.rcodes` is [`Failure::Rcode`]; then the
/// answer expectation: [`Failure::EmptyAnswer`] for NOERROR with no records where records were
/// wanted, [`Failure::NoAddress`] for an A/AAAA question answered with records but no address
/// for the name asked (a CNAME that leads nowhere in the answer, records of other names),
/// [`Failure::WrongAnswer`] when the addresses ([`answer_addresses`]: the name asked and its
/// aliases only) do not contain, or do not equal, the expected ones.
///
/// ```
/// use dnsprobe::hickory_proto::op::{Message, OpCode, ResponseCode};
/// use dnsprobe::{classify, Expectation, FailureKind};
///
/// let mut servfail = Message::response(7, OpCode::Query);
/// servfail.metadata.response_code = ResponseCode::ServFail;
/// let verdict = classify(&servfail, &Expectation::default());
/// assert_eq!(verdict.unwrap_err().kind(), FailureKind::Rcode);
/// ```
pub fn classify(response: &Message, expect: &Expectation) -> Result<(), Failure> {
    if response.metadata.truncation {
        return Err(Failure::Truncated);
    }
    let rcode = response.metadata.response_code;
    if !expect.rcodes.contains(&rcode) {
        return Err(Failure::Rcode { rcode });
    }
    match &expect.answer {
        AnswerExpectation::Any => Ok(()),
        AnswerExpectation::NonEmpty => {
            if rcode != ResponseCode::NoError {
                Ok(())
            } else if response.answers.is_empty() {
                Err(Failure::EmptyAnswer)
            } else {
                no_address(response).map_or(Ok(()), Err)
            }
        }
        AnswerExpectation::Contains(want) => {
            let got = answer_addresses(response);
            if want.iter().all(|ip| got.contains(ip)) {
                Ok(())
            } else {
                Err(wrong(got, want, false))
            }
        }
        AnswerExpectation::Equals(want) => {
            let got = answer_addresses(response);
            let got_set: BTreeSet<_> = got.iter().collect();
            let want_set: BTreeSet<_> = want.iter().collect();
            if got_set == want_set {
                Ok(())
            } else {
                Err(wrong(got, want, true))
            }
        }
    }
}

fn wrong(answered: Vec<IpAddr>, expected: &[IpAddr], exact: bool) -> Failure {
    Failure::WrongAnswer {
        answered,
        expected: expected.to_vec(),
        exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FailureKind;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::A;

    fn response(rcode: ResponseCode, ips: &[&str]) -> Message {
        let mut m = Message::response(1, OpCode::Query);
        m.metadata.response_code = rcode;
        let name = Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap();
        for ip in ips {
            let a: std::net::Ipv4Addr = ip.parse().unwrap();
            m.add_answer(Record::from_rdata(name.clone(), 5, RData::A(A(a))));
        }
        m
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn kind(r: Result<(), Failure>) -> Option<FailureKind> {
        r.err().map(|f| f.kind())
    }

    #[test]
    fn table() {
        use AnswerExpectation::*;
        let noerr = vec![ResponseCode::NoError];
        let cases: Vec<(
            Message,
            Vec<ResponseCode>,
            AnswerExpectation,
            Option<FailureKind>,
        )> = vec![
            (
                response(ResponseCode::NoError, &["10.96.0.1"]),
                noerr.clone(),
                NonEmpty,
                None,
            ),
            (
                response(ResponseCode::NoError, &[]),
                noerr.clone(),
                NonEmpty,
                Some(FailureKind::EmptyAnswer),
            ),
            (
                response(ResponseCode::NoError, &[]),
                noerr.clone(),
                Any,
                None,
            ),
            (
                response(ResponseCode::ServFail, &[]),
                noerr.clone(),
                Any,
                Some(FailureKind::Rcode),
            ),
            (
                response(ResponseCode::NXDomain, &[]),
                vec![ResponseCode::NXDomain],
                NonEmpty,
                None,
            ),
            (
                response(ResponseCode::NoError, &["10.96.0.1", "10.96.0.2"]),
                noerr.clone(),
                Contains(ips(&["10.96.0.2"])),
                None,
            ),
            (
                response(ResponseCode::NoError, &["10.96.0.99"]),
                noerr.clone(),
                Contains(ips(&["10.96.0.1"])),
                Some(FailureKind::WrongAnswer),
            ),
            (
                response(ResponseCode::NoError, &["10.96.0.1", "10.96.0.2"]),
                noerr.clone(),
                Equals(ips(&["10.96.0.1"])),
                Some(FailureKind::WrongAnswer),
            ),
            (
                response(
                    ResponseCode::NoError,
                    &["10.96.0.2", "10.96.0.1", "10.96.0.1"],
                ),
                noerr.clone(),
                Equals(ips(&["10.96.0.1", "10.96.0.2"])),
                None,
            ),
        ];
        for (i, (msg, rcodes, answer, want)) in cases.into_iter().enumerate() {
            let expect = Expectation { rcodes, answer };
            assert_eq!(kind(classify(&msg, &expect)), want, "case {i}");
        }
    }

    #[test]
    fn truncation_first() {
        let mut m = response(ResponseCode::NoError, &["10.96.0.1"]);
        m.metadata.truncation = true;
        assert_eq!(
            kind(classify(&m, &Expectation::default())),
            Some(FailureKind::Truncated)
        );
    }

    #[test]
    fn wrong_answer_carries_evidence() {
        let m = response(ResponseCode::NoError, &["10.96.0.99"]);
        let expect = Expectation {
            answer: AnswerExpectation::Contains(ips(&["10.96.0.1"])),
            ..Expectation::default()
        };
        let f = classify(&m, &expect).unwrap_err();
        assert_eq!(f.to_string(), "answered 10.96.0.99, expected 10.96.0.1");
    }

    fn asked(records: &[(&str, RData)]) -> Message {
        let mut m = Message::response(1, OpCode::Query);
        let q = Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap();
        m.add_query(hickory_proto::op::Query::query(q, RecordType::A));
        for (owner, data) in records {
            let owner = Name::from_ascii(owner).unwrap();
            m.add_answer(Record::from_rdata(owner, 5, data.clone()));
        }
        m
    }

    fn a(ip: &str) -> RData {
        RData::A(A(ip.parse().unwrap()))
    }

    fn cname(to: &str) -> RData {
        RData::CNAME(CNAME(Name::from_ascii(to).unwrap()))
    }

    const Q: &str = "KUBERNETES.default.svc.cluster.local.";

    #[test]
    fn only_addresses_of_the_name_asked_and_its_aliases_count() {
        let exact = Expectation {
            answer: AnswerExpectation::Equals(ips(&["10.96.0.1"])),
            ..Expectation::default()
        };
        // Another owner's address is no answer, even when it is the one expected.
        let evil = asked(&[("evil.example.", a("10.96.0.1"))]);
        assert!(answer_addresses(&evil).is_empty());
        assert_eq!(
            kind(classify(&evil, &exact)),
            Some(FailureKind::WrongAnswer)
        );
        // The owner compared without case; CNAMEs followed in any order.
        let chain = asked(&[
            ("b.example.", a("10.96.0.1")),
            ("a.example.", cname("b.example.")),
            (Q, cname("a.example.")),
            ("c.example.", a("10.0.0.66")),
        ]);
        assert_eq!(answer_addresses(&chain), ips(&["10.96.0.1"]));
        assert_eq!(kind(classify(&chain, &exact)), None);
        // A loop ends.
        let looped = asked(&[(Q, cname("a.example.")), ("a.example.", cname(Q))]);
        assert!(answer_addresses(&looped).is_empty());
    }

    #[test]
    fn a_cname_that_leads_nowhere_is_no_address() {
        let dangling = asked(&[(Q, cname("gone.example."))]);
        let f = classify(&dangling, &Expectation::default()).unwrap_err();
        assert_eq!(f.kind(), FailureKind::EmptyAnswer);
        assert_eq!(
            f.to_string(),
            "no address for the name asked: kubernetes.default.svc.cluster.local. is an alias (CNAME) of gone.example., and the answer holds no A record for it"
        );
        let elsewhere = asked(&[("evil.example.", a("10.96.0.1"))]);
        let f = classify(&elsewhere, &Expectation::default()).unwrap_err();
        assert_eq!(
            f.to_string(),
            "no address for the name asked: the answer holds only records of other names or types (evil.example. A)"
        );
        // Any answer is still any answer.
        let any = Expectation::default().with_answer(AnswerExpectation::Any);
        assert_eq!(kind(classify(&dangling, &any)), None);
    }
}
