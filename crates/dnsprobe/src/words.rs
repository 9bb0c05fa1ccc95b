//! The words of a query as `dig`, `doggo` and `q` take them: `@SERVER NAME TYPE`, in any order.

use hickory_proto::rr::{Name, RecordType};

use crate::error::SpecError;
use crate::spec::{parse_name, parse_record_type};

/// A query written the way `dig @10.96.0.10 kubernetes.default A` writes it, sorted into its
/// parts. Servers are kept as written (after the `@`): the caller parses them as targets, with
/// its own default port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryWords {
    /// Each `@SERVER`, without the `@`, in the order given.
    pub servers: Vec<String>,
    /// The query name, if one was given.
    pub name: Option<Name>,
    /// The query type, if one was given.
    pub query_type: Option<RecordType>,
}

/// Sorts query words: `@SERVER` (repeatable) is a server; a word that is a query type (`A`,
/// `aaaa`, `SRV`, `TYPE65`) is the type, as in `dig`; the class `IN` is accepted and ignored;
/// any other word is the name (taken as fully qualified). A second name or a second type is an
/// error that names both, as is a class other than `IN`. A name that reads as a type (`mx`)
/// is given with the caller's name flag instead.
///
/// ```
/// use dnsprobe::{QueryWords, parse_query_words};
/// use dnsprobe::hickory_proto::rr::RecordType;
///
/// let w = parse_query_words(["@10.96.0.10", "kubernetes.default", "A"]).unwrap();
/// assert_eq!(w.servers, ["10.96.0.10"]);
/// assert_eq!(w.name.unwrap().to_ascii(), "kubernetes.default.");
/// assert_eq!(w.query_type, Some(RecordType::A));
/// let w = parse_query_words(["srv", "_dns._udp.kube-dns.kube-system.svc.cluster.local"]).unwrap();
/// assert_eq!(w.query_type, Some(RecordType::SRV));
/// assert!(w.servers.is_empty());
/// assert!(parse_query_words(["a.example", "b.example"]).is_err());
/// ```
pub fn parse_query_words<I, S>(words: I) -> Result<QueryWords, SpecError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = QueryWords::default();
    let mut name_word: Option<String> = None;
    let mut type_word: Option<String> = None;
    for word in words {
        let w = word.as_ref().trim();
        if let Some(server) = w.strip_prefix('@') {
            if server.is_empty() {
                return Err(SpecError::InvalidTarget {
                    input: w.to_owned(),
                });
            }
            out.servers.push(server.to_owned());
        } else if w.eq_ignore_ascii_case("IN") {
            // The only class probed; written by habit (`dig example.com IN A`).
        } else if ["CH", "CHAOS", "HS", "HESIOD"]
            .iter()
            .any(|c| w.eq_ignore_ascii_case(c))
        {
            return Err(SpecError::UnsupportedClass {
                input: w.to_owned(),
            });
        } else if let Ok(t) = parse_record_type(w) {
            if let Some(first) = type_word.replace(w.to_owned()) {
                return Err(SpecError::RepeatedWord {
                    what: "query type",
                    first,
                    second: w.to_owned(),
                });
            }
            out.query_type = Some(t);
        } else {
            if let Some(first) = name_word.replace(w.to_owned()) {
                return Err(SpecError::RepeatedWord {
                    what: "query name",
                    first,
                    second: w.to_owned(),
                });
            }
            out.name = Some(parse_name(w)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Result<QueryWords, SpecError> {
        parse_query_words(w)
    }

    #[test]
    fn any_order_like_dig() {
        for order in [
            ["@10.96.0.10", "kubernetes.default", "A"],
            ["kubernetes.default", "A", "@10.96.0.10"],
            ["A", "@10.96.0.10", "kubernetes.default"],
        ] {
            let w = words(&order).unwrap();
            assert_eq!(w.servers, ["10.96.0.10"], "{order:?}");
            assert_eq!(w.name.unwrap().to_ascii(), "kubernetes.default.");
            assert_eq!(w.query_type, Some(RecordType::A));
        }
        let w = words(&["@[::1]:5353", "@127.0.0.1", "example.org", "IN", "aaaa"]).unwrap();
        assert_eq!(w.servers, ["[::1]:5353", "127.0.0.1"]);
        assert_eq!(w.query_type, Some(RecordType::AAAA));
        assert_eq!(
            words(&["TYPE65"]).unwrap().query_type,
            Some(RecordType::HTTPS)
        );
        assert_eq!(words(&[]).unwrap(), QueryWords::default());
    }

    #[test]
    fn mistakes_are_named() {
        let e = words(&["a.example", "b.example"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"two query names, "a.example" and "b.example": give one (and the server as @IP)"#
        );
        let e = words(&["A", "AAAA"]).unwrap_err();
        assert!(e.to_string().starts_with("two query types"), "{e}");
        assert!(matches!(
            words(&["@"]).unwrap_err(),
            SpecError::InvalidTarget { .. }
        ));
        let e = words(&["CH", "version.bind", "TXT"]).unwrap_err();
        assert!(e.to_string().contains("class CH"), "{e}");
        assert!(matches!(
            words(&["a..b"]).unwrap_err(),
            SpecError::InvalidName { .. }
        ));
        // ANY is the query type, not the class.
        assert_eq!(words(&["ANY"]).unwrap().query_type, Some(RecordType::ANY));
    }
}
