//! Turning an accepted response into a verdict: the one place that decides which
//! [`FailureKind`](crate::FailureKind) a response is.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};

use crate::report::Failure;
use crate::spec::{AnswerExpectation, Expectation};

/// The A and AAAA addresses in a response's answer section, in order.
pub fn answer_addresses(response: &Message) -> Vec<IpAddr> {
    response
        .answers
        .iter()
        .filter_map(|r| r.data.ip_addr())
        .collect()
}

/// Classifies a response that already matched its query (ID, question, source) against an
/// expectation.
///
/// In order: a truncated response is [`Failure::Truncated`] (the caller decides whether to retry
/// over TCP before asking); a response code not in `expect.rcodes` is [`Failure::Rcode`]; then the
/// answer expectation: [`Failure::EmptyAnswer`] for NOERROR with no records where records were
/// wanted, [`Failure::WrongAnswer`] when the addresses do not contain, or do not equal, the
/// expected ones.
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
            if rcode == ResponseCode::NoError && response.answers.is_empty() {
                Err(Failure::EmptyAnswer)
            } else {
                Ok(())
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
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record};

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
}
