//! A fuzz harness for reply parsing and classification that runs on the stable toolchain: a
//! seeded loop feeds `arbitrary`'s `Unstructured` with pseudo-random bytes and builds hostile
//! replies from them — random bytes, replies written field by field (lying counts and lengths,
//! compression pointers anywhere, records of every interesting type with random data), and
//! mutations of those — then decodes, matches and classifies each one and prints what it
//! shows.
//!
//! It must never panic, and a reply with the query's ID and question whose records are framed
//! right must never be dropped (whatever their data). `HC_FUZZ_SECONDS` bounds the run (default
//! 3 s); `HC_FUZZ_SEED` replays a run. The long run (docs/testing.md):
//! `HC_FUZZ_SECONDS=1200 cargo test --release -p dnsprobe --lib fuzz -- --nocapture`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::classify::{answer_addresses, classify};
use crate::spec::{AnswerExpectation, Expectation};
use crate::wire::{Mismatch, accept_reply, rdata_text, record_text};

/// splitmix64: a tiny, seedable source of bytes for `Unstructured`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const NAMES: &[&str] = &[
    "kubernetes.default.svc.cluster.local.",
    "a.b.",
    ".",
    "xn--bcher-kva.example.",
];

const TYPES: &[u16] = &[
    1, 28, 5, 257, 65, 64, 16, 41, 6, 33, 15, 2, 12, 13, 35, 0, 250, 251, 252, 255, 65535, 99,
];

/// One fuzz input: the query, the reply bytes, and whether the reply is framed right and
/// matches the query (then it must be accepted).
struct Case {
    query: Message,
    bytes: Vec<u8>,
    must_accept: bool,
}

/// The uncompressed wire form of `name` (hickory's encoder: the same bytes for these names).
fn name_bytes(name: &str) -> Vec<u8> {
    wire(&Name::from_ascii(name).expect("the fuzz names are valid"))
}

fn wire(name: &Name) -> Vec<u8> {
    use hickory_proto::serialize::binary::BinEncodable as _;
    name.to_bytes().expect("a valid name encodes")
}

/// RDATA for `rtype`: plausible (decodable or nearly) or random.
fn rdata(u: &mut Unstructured<'_>, rtype: u16) -> Result<Vec<u8>> {
    if u.ratio(1, 3)? {
        let n = u.int_in_range(0..=40)?;
        return u.bytes(n).map(<[u8]>::to_vec);
    }
    Ok(match rtype {
        1 => u.bytes(4)?.to_vec(),
        28 => u.bytes(16)?.to_vec(),
        5 | 2 | 12 => match u.int_in_range(0..=2)? {
            0 => name_bytes(u.choose(NAMES)?),
            1 => vec![0xC0, 12],
            _ => {
                let p: u16 = u.int_in_range(0..=0x3FFF)?;
                (0xC000 | p).to_be_bytes().to_vec()
            }
        },
        257 => {
            // flags, tag length (sometimes over 15), tag, value
            let tag_len = u.int_in_range(0..=20)?;
            let mut v = vec![u.arbitrary()?, tag_len];
            v.extend(std::iter::repeat_n(b'a', usize::from(tag_len)));
            let n = u.int_in_range(0..=10)?;
            v.extend_from_slice(u.bytes(n)?);
            v
        }
        64 | 65 => {
            // priority, target ".", then svc params with random keys and values
            let mut v = vec![0, u.int_in_range(0..=2)?, 0];
            for _ in 0..u.int_in_range(0..=3)? {
                let key: u16 = u.int_in_range(0..=8)?;
                let n = u.int_in_range(0..=8)?;
                v.extend_from_slice(&key.to_be_bytes());
                v.extend_from_slice(&(n as u16).to_be_bytes());
                v.extend_from_slice(u.bytes(n)?);
            }
            v
        }
        16 => {
            let n = u.int_in_range(0..=30)?;
            let mut v = vec![n as u8];
            v.extend_from_slice(u.bytes(n)?);
            v
        }
        _ => {
            let n = u.int_in_range(0..=24)?;
            u.bytes(n)?.to_vec()
        }
    })
}

/// A reply to `query` written field by field; `must_accept` when nothing in it lies.
fn structured(u: &mut Unstructured<'_>, query: &Message) -> Result<Case> {
    let q = &query.queries[0];
    let mut honest = true;
    let mut id = query.metadata.id;
    if u.ratio(1, 8)? {
        id = u.arbitrary()?;
        honest &= id == query.metadata.id;
    }
    let qr = !u.ratio(1, 16)?;
    honest &= qr;
    let flags: u8 = u.arbitrary()?;
    let mut out = id.to_be_bytes().to_vec();
    out.push((u8::from(qr) << 7) | (flags & 0x7F));
    out.push(u.arbitrary()?);
    let qcount: u16 = if u.ratio(1, 16)? {
        u.int_in_range(0..=3)?
    } else {
        1
    };
    honest &= qcount == 1;
    out.extend_from_slice(&qcount.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    for _ in 0..qcount {
        if u.ratio(1, 10)? {
            out.extend_from_slice(&name_bytes(u.choose(NAMES)?));
            honest = false;
        } else {
            out.extend_from_slice(&wire(&q.name));
        }
        out.extend_from_slice(&u16::from(q.query_type).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
    }
    let mut counts = [0u16; 3];
    for count in &mut counts {
        for _ in 0..u.int_in_range(0..=4)? {
            *count += 1;
            match u.int_in_range(0..=9)? {
                0 => {
                    // A pointer anywhere (maybe forward, maybe to itself).
                    let p: u16 = u.int_in_range(0..=(out.len() as u16 + 4))?;
                    out.extend_from_slice(&(0xC000 | p).to_be_bytes());
                    honest = false;
                }
                1 => out.extend_from_slice(&name_bytes(u.choose(NAMES)?)),
                _ => out.extend_from_slice(&[0xC0, 12]),
            }
            let rtype = if u.ratio(1, 10)? {
                u.arbitrary()?
            } else {
                *u.choose(TYPES)?
            };
            // OPT with a name other than the root, and TSIG, are framing faults for hickory.
            out.extend_from_slice(&rtype.to_be_bytes());
            let class: u16 = if u.ratio(1, 10)? { u.arbitrary()? } else { 1 };
            out.extend_from_slice(&class.to_be_bytes());
            out.extend_from_slice(&u.arbitrary::<u32>()?.to_be_bytes());
            let data = rdata(u, rtype)?;
            let mut len = data.len() as u16;
            if u.ratio(1, 20)? {
                len = u.arbitrary()?;
                honest &= usize::from(len) == data.len();
            }
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&data);
        }
    }
    if u.ratio(1, 20)? {
        counts[u.int_in_range(0..=2)?] = u.arbitrary()?;
        honest = false;
    }
    for (i, c) in counts.iter().enumerate() {
        // ANCOUNT, NSCOUNT, ARCOUNT at offsets 6, 8, 10.
        out[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
    }
    Ok(Case {
        query: query.clone(),
        bytes: out,
        must_accept: honest,
    })
}

fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let mut query = Message::query();
    let name = Name::from_ascii(u.choose(NAMES)?).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let qtype = RecordType::from(*u.choose(TYPES)?);
    query.add_query(Query::query(name, qtype));
    match u.int_in_range(0..=9)? {
        0 => {
            let n = u.int_in_range(0..=600)?;
            Ok(Case {
                query,
                bytes: u.bytes(n)?.to_vec(),
                must_accept: false,
            })
        }
        1..=2 => {
            let mut c = structured(u, &query)?;
            for _ in 0..u.int_in_range(1..=4)? {
                if c.bytes.is_empty() {
                    break;
                }
                let at = u.int_in_range(0..=c.bytes.len() - 1)?;
                match u.int_in_range(0..=2)? {
                    0 => c.bytes[at] = u.arbitrary()?,
                    1 => c.bytes.truncate(at),
                    _ => c.bytes.insert(at, u.arbitrary()?),
                }
            }
            c.must_accept = false;
            Ok(c)
        }
        _ => structured(u, &query),
    }
}

fn expectation(u: &mut Unstructured<'_>) -> Result<Expectation> {
    let ips = |u: &mut Unstructured<'_>| -> Result<Vec<IpAddr>> {
        (0..u.int_in_range(0..=2)?)
            .map(|_| {
                Ok(if u.arbitrary()? {
                    IpAddr::from(u.arbitrary::<[u8; 4]>()?)
                } else {
                    IpAddr::from(u.arbitrary::<[u8; 16]>()?)
                })
            })
            .collect()
    };
    let answer = match u.int_in_range(0..=3)? {
        0 => AnswerExpectation::NonEmpty,
        1 => AnswerExpectation::Any,
        2 => AnswerExpectation::Contains(ips(u)?),
        _ => AnswerExpectation::Equals(ips(u)?),
    };
    let rcodes = vec![<ResponseCode as From<u16>>::from(u.int_in_range(0..=5)?)];
    Ok(Expectation::default()
        .with_rcodes(rcodes)
        .with_answer(answer))
}

/// Everything a probe does with a received message, short of the socket.
fn exercise(c: &Case, expect: &Expectation) -> usize {
    match accept_reply(&c.query, &c.bytes) {
        Ok(reply) => {
            let mut seen = answer_addresses(&reply).len();
            for r in reply.answers.iter().chain(&reply.authorities) {
                seen += rdata_text(&r.data).len() + record_text(r).len();
            }
            if let Err(f) = classify(&reply, expect) {
                seen += f.to_string().len() + f.kind().as_str().len();
            }
            seen
        }
        Err(why) => {
            assert!(
                !c.must_accept,
                "a well-framed reply to the query was not accepted: {why:?}"
            );
            if let Mismatch::Broken(_) = why {
                assert!(!c.must_accept);
            }
            why.to_string().len()
        }
    }
}

/// Runs the fuzz loop for `limit`; returns (inputs, accepted).
fn run(seed: u64, limit: Duration) -> (u64, u64) {
    let mut rng = SplitMix(seed);
    let mut raw = vec![0u8; 4096];
    let started = Instant::now();
    let (mut inputs, mut accepted, mut sink) = (0u64, 0u64, 0usize);
    while started.elapsed() < limit {
        // Check the clock every 1,024 inputs: it costs more than an input.
        for _ in 0..1024 {
            rng.fill(&mut raw);
            let mut u = Unstructured::new(&raw);
            let Ok(c) = case(&mut u) else { continue };
            let Ok(expect) = expectation(&mut u) else {
                continue;
            };
            let input = inputs;
            let result = std::panic::catch_unwind(|| exercise(&c, &expect));
            match result {
                Ok(n) => sink = sink.wrapping_add(n),
                Err(e) => {
                    eprintln!(
                        "fuzz: input {input} of seed {seed:#x} failed: reply {:02x?}",
                        c.bytes
                    );
                    std::panic::resume_unwind(e);
                }
            }
            inputs += 1;
            accepted += u64::from(accept_reply(&c.query, &c.bytes).is_ok());
        }
    }
    std::hint::black_box(sink);
    (inputs, accepted)
}

#[test]
fn fuzz_reply_parsing_and_classification() {
    let seconds: f64 = std::env::var("HC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let seed = std::env::var("HC_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let limit = Duration::from_secs_f64(seconds.max(0.0));
    let started = Instant::now();
    let (inputs, accepted) = run(seed, limit);
    let took = started.elapsed().as_secs_f64();
    println!(
        "fuzz: {inputs} inputs in {took:.1} s ({:.0}/s), {accepted} accepted, seed {seed:#x}, no panic",
        inputs as f64 / took
    );
    assert!(inputs > 0);
    assert!(accepted > 0, "the generator makes acceptable replies too");
}
