//! Offline verification of a trail (from the live store or from an export): the records must
//! form one unbroken chain, every digest must be signed by the trusted key and chain to the one
//! before it, and every digest must agree with the records it covers. The first problem is
//! reported by sequence number.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chain::{ChainEntry, GENESIS, Hash, Head, hex32};
use crate::digest::{Digest, fingerprint};

/// Where a pruned trail starts: the first retained record and the hash it chains to. Sealed by
/// the digest whose `endSequence` is `seq - 1`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    #[serde(with = "hex32")]
    pub prev: Hash,
}

/// Everything verification looks at.
#[derive(Debug, Default)]
pub struct Trail {
    /// Records in stored (key) or file order. `slot` is the sequence number the store key
    /// names, when read from a store; `None` for exports.
    pub entries: Vec<(Option<u64>, ChainEntry)>,
    pub digests: Vec<Digest>,
    pub anchor: Option<Anchor>,
    /// The chain head as recorded by the writer, when known.
    pub head: Option<Head>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record's content no longer gives its hash.
    Modified { seq: u64 },
    /// The record does not chain to the one before it (that one was rewritten with a fresh
    /// hash, or this one was put in).
    Broken { seq: u64 },
    /// Records `from..=to` are absent.
    Missing { from: u64, to: u64 },
    /// Record `seq` is out of its place (after `after`).
    Reordered { seq: u64, after: u64 },
    /// A second record claims number `seq`, or a record beyond the chain head.
    Inserted { seq: u64 },
    /// Records after `last` are gone although digest/head say the chain reaches `end`.
    Truncated { last: u64, end: u64 },
    /// The digest's signature is not valid under the trusted key.
    BadSignature { digest: u64 },
    /// The digest does not follow the one before it (one removed, reordered or forged).
    DigestChain { digest: u64 },
    /// Record `seq` is not what the signed digest says the chain ended with.
    DigestMismatch { digest: u64, seq: u64 },
    /// The prune point is not sealed by a digest.
    UnsealedAnchor { seq: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Modified { seq } => write!(
                f,
                "record {seq} was modified (its content does not match its hash)"
            ),
            Problem::Broken { seq } => write!(
                f,
                "chain broken at record {seq}: it does not chain to record {} (that record was rewritten, or {seq} was inserted)",
                seq.saturating_sub(1)
            ),
            Problem::Missing { from, to } if from == to => write!(f, "record {from} is missing"),
            Problem::Missing { from, to } => write!(f, "records {from} to {to} are missing"),
            Problem::Reordered { seq, after } => write!(
                f,
                "record {seq} is out of order (found after record {after})"
            ),
            Problem::Inserted { seq } => write!(
                f,
                "record {seq} was inserted (a second record with that number, or beyond the chain head)"
            ),
            Problem::Truncated { last, end } => write!(
                f,
                "records {} to {end} are missing (the trail ends at {last})",
                last + 1
            ),
            Problem::BadSignature { digest } => {
                write!(f, "digest {digest} has an invalid signature")
            }
            Problem::DigestChain { digest } => {
                write!(f, "digest {digest} does not follow the digest before it")
            }
            Problem::DigestMismatch { digest, seq } => {
                write!(f, "record {seq} does not match signed digest {digest}")
            }
            Problem::UnsealedAnchor { seq } => write!(
                f,
                "the prune point before record {seq} is not sealed by a digest"
            ),
        }
    }
}

impl Problem {
    /// The sequence number a problem is about, for ordering.
    fn seq(&self) -> u64 {
        match self {
            Problem::Modified { seq }
            | Problem::Broken { seq }
            | Problem::Inserted { seq }
            | Problem::UnsealedAnchor { seq }
            | Problem::DigestMismatch { seq, .. } => *seq,
            Problem::Missing { from, .. } => *from,
            Problem::Reordered { seq, after } => (*seq).min(after + 1),
            Problem::Truncated { last, .. } => last + 1,
            Problem::BadSignature { .. } | Problem::DigestChain { .. } => u64::MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: usize,
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub digests: usize,
    /// The last record a valid digest seals.
    pub sealed_through: Option<u64>,
    pub problem: Option<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies `trail` against the trusted raw Ed25519 `public_key`.
pub fn verify(trail: &Trail, public_key: &[u8]) -> Report {
    let mut problems = Vec::new();
    let records = check_records(trail, &mut problems);
    let sealed_through = check_digests(trail, public_key, &records, &mut problems);
    // Report the earliest problem in chain order; digest-only problems come last.
    let problem = problems.into_iter().min_by_key(|p| p.seq());
    Report {
        records: trail.entries.len(),
        first: trail.entries.first().map(|(_, e)| e.seq),
        last: trail.entries.iter().map(|(_, e)| e.seq).max(),
        digests: trail.digests.len(),
        sealed_through,
        problem,
    }
}

/// Walks the records; returns seq → hash of every record that checked out up to the first
/// problem (used to check digests against).
fn check_records(trail: &Trail, problems: &mut Vec<Problem>) -> Vec<(u64, Hash)> {
    let mut good = Vec::new();
    let (mut expected, mut prev) = match trail.anchor {
        Some(a) => (a.seq, a.prev),
        None => (1, GENESIS),
    };
    let all: Vec<u64> = trail.entries.iter().map(|(_, e)| e.seq).collect();
    let mut seen = HashSet::new();
    let mut last_good = expected.saturating_sub(1);
    for (i, (slot, e)) in trail.entries.iter().enumerate() {
        if let Some(k) = slot
            && *k != e.seq
        {
            // A copy of a record that is also in its own place was put in; otherwise records
            // were moved.
            let copy = trail
                .entries
                .iter()
                .any(|(s, x)| *s == Some(e.seq) && x.seq == e.seq);
            problems.push(if copy {
                Problem::Inserted { seq: *k }
            } else {
                Problem::Reordered {
                    seq: e.seq,
                    after: last_good,
                }
            });
            return good;
        }
        if !seen.insert(e.seq) || e.seq < expected {
            problems.push(Problem::Inserted { seq: e.seq });
            return good;
        }
        if e.seq > expected {
            // Gone, or somewhere later in the file?
            if all[i + 1..].contains(&expected) {
                problems.push(Problem::Reordered {
                    seq: expected,
                    after: e.seq,
                });
            } else if all[i + 1..].contains(&e.seq) {
                problems.push(Problem::Inserted { seq: e.seq });
            } else {
                problems.push(Problem::Missing {
                    from: expected,
                    to: e.seq - 1,
                });
            }
            return good;
        }
        if e.computed_hash() != e.hash {
            problems.push(Problem::Modified { seq: e.seq });
            return good;
        }
        if e.prev != prev {
            // The predecessor was rewritten with a fresh hash: name it, unless this is the
            // first record we have (then it is this record that does not fit).
            let seq = if good.is_empty() { e.seq } else { e.seq - 1 };
            problems.push(if good.is_empty() {
                Problem::Broken { seq }
            } else {
                Problem::Modified { seq }
            });
            return good;
        }
        good.push((e.seq, e.hash));
        prev = e.hash;
        last_good = e.seq;
        expected += 1;
    }
    if let Some(h) = trail.head {
        if h.seq > last_good && good.len() == trail.entries.len() {
            problems.push(Problem::Truncated {
                last: last_good,
                end: h.seq,
            });
        } else if h.seq == last_good && h.hash != prev && !good.is_empty() {
            problems.push(Problem::Modified { seq: h.seq });
        } else if h.seq < last_good {
            problems.push(Problem::Inserted { seq: h.seq + 1 });
        }
    }
    good
}

fn check_digests(
    trail: &Trail,
    public_key: &[u8],
    records: &[(u64, Hash)],
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    let fp = fingerprint(public_key);
    let mut prev: Option<&Digest> = None;
    let mut sealed = None;
    let last_record = trail.entries.iter().map(|(_, e)| e.seq).max().unwrap_or(0);
    let complete = records.len() == trail.entries.len();
    for d in &trail.digests {
        if d.public_key_fingerprint != fp || !d.verify(public_key) {
            problems.push(Problem::BadSignature { digest: d.number });
            return sealed;
        }
        if let Some(p) = prev
            && (d.number != p.number + 1
                || d.previous_digest_hash != p.hash()
                || d.start_sequence != p.end_sequence + 1)
        {
            problems.push(Problem::DigestChain { digest: d.number });
            return sealed;
        }
        if let Some((_, h)) = records.iter().find(|(s, _)| *s == d.end_sequence) {
            if *h != d.end_hash {
                problems.push(Problem::DigestMismatch {
                    digest: d.number,
                    seq: d.end_sequence,
                });
                return sealed;
            }
            sealed = Some(d.end_sequence);
        } else if complete && d.end_sequence > last_record {
            problems.push(Problem::Truncated {
                last: last_record,
                end: d.end_sequence,
            });
            return sealed;
        }
        prev = Some(d);
    }
    if let Some(a) = trail.anchor {
        let sealed_anchor = trail
            .digests
            .iter()
            .any(|d| d.end_sequence + 1 == a.seq && d.end_hash == a.prev);
        if !sealed_anchor {
            problems.push(Problem::UnsealedAnchor { seq: a.seq });
        }
    }
    sealed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use crate::digest::Signer;
    use serde_json::json;

    fn chain(n: u64) -> Vec<ChainEntry> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|seq| {
                let c = canonical::to_vec(&json!({"eventName": "E", "n": seq}));
                let (bytes, h) = ChainEntry::encode(seq, &prev, &c);
                prev = h;
                serde_json::from_slice(&bytes).unwrap()
            })
            .collect()
    }

    fn digest(s: &Signer, number: u64, start: u64, e: &ChainEntry, prev: Hash) -> Digest {
        s.sign(Digest {
            number,
            start_sequence: start,
            end_sequence: e.seq,
            end_hash: e.hash,
            previous_digest_hash: prev,
            digest_time: "2026-01-01T00:00:00Z".into(),
            reason: "interval".into(),
            signature_algorithm: String::new(),
            public_key_fingerprint: String::new(),
            signature: String::new(),
        })
    }

    fn file(entries: Vec<ChainEntry>) -> Trail {
        Trail {
            entries: entries.into_iter().map(|e| (None, e)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn intact_chain_verifies() {
        let (s, _) = Signer::generate().unwrap();
        let c = chain(6);
        let d1 = digest(&s, 1, 1, &c[2], GENESIS);
        let d2 = digest(&s, 2, 4, &c[5], d1.hash());
        let mut t = file(c);
        t.digests = vec![d1, d2];
        let r = verify(&t, s.public_key());
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.sealed_through, Some(6));
    }

    #[test]
    fn each_tampering_is_named() {
        let (s, _) = Signer::generate().unwrap();
        let key = s.public_key();
        let problem = |t: Trail| verify(&t, key).problem.unwrap();

        let mut c = chain(6);
        c[2].record["n"] = json!(99);
        assert_eq!(problem(file(c)), Problem::Modified { seq: 3 });

        // Edited and re-hashed: the next record no longer chains to it.
        let mut c = chain(6);
        c[2].record["n"] = json!(99);
        c[2].hash = c[2].computed_hash();
        assert_eq!(problem(file(c)), Problem::Modified { seq: 3 });

        let mut c = chain(6);
        c.remove(3);
        assert_eq!(problem(file(c)), Problem::Missing { from: 4, to: 4 });

        let mut c = chain(6);
        c.swap(2, 3);
        assert_eq!(problem(file(c)), Problem::Reordered { seq: 3, after: 4 });

        let mut c = chain(6);
        let dup = c[2].clone();
        c.insert(3, dup);
        assert_eq!(problem(file(c)), Problem::Inserted { seq: 3 });

        // In a store, the key names the slot.
        let c = chain(4);
        let mut t = Trail::default();
        for (i, e) in c.iter().enumerate() {
            let slot = i as u64 + 1;
            let e = match slot {
                2 => c[2].clone(),
                3 => c[1].clone(),
                _ => e.clone(),
            };
            t.entries.push((Some(slot), e));
        }
        assert_eq!(problem(t), Problem::Reordered { seq: 3, after: 1 });

        // Truncation after the last digest-covered record.
        let c = chain(5);
        let d = digest(&s, 1, 1, &c[4], GENESIS);
        let mut t = file(c[..3].to_vec());
        t.digests = vec![d];
        assert_eq!(problem(t), Problem::Truncated { last: 3, end: 5 });

        // A fully rewritten chain is caught by the digest.
        let c = chain(3);
        let d = digest(&s, 1, 1, &c[2], GENESIS);
        let mut forged = chain(3);
        let mut prev = GENESIS;
        for e in &mut forged {
            e.record["forged"] = json!(true);
            e.prev = prev;
            e.hash = e.computed_hash();
            prev = e.hash;
        }
        let mut t = file(forged);
        t.digests = vec![d.clone()];
        assert_eq!(problem(t), Problem::DigestMismatch { digest: 1, seq: 3 });

        // A digest under another key, or a removed digest.
        let (other, _) = Signer::generate().unwrap();
        let mut t = file(chain(3));
        t.digests = vec![digest(&other, 1, 1, &chain(3)[2], GENESIS)];
        assert_eq!(problem(t), Problem::BadSignature { digest: 1 });
        let c = chain(6);
        let d1 = digest(&s, 1, 1, &c[1], GENESIS);
        let d2 = digest(&s, 2, 3, &c[3], d1.hash());
        let d3 = digest(&s, 3, 5, &c[5], d2.hash());
        let mut t = file(c);
        t.digests = vec![d1, d3];
        assert_eq!(problem(t), Problem::DigestChain { digest: 3 });
    }

    #[test]
    fn pruned_trail_needs_a_sealed_anchor() {
        let (s, _) = Signer::generate().unwrap();
        let c = chain(6);
        let seal = digest(&s, 1, 1, &c[2], GENESIS);
        let mut t = file(c[3..].to_vec());
        t.anchor = Some(Anchor {
            seq: 4,
            prev: c[2].hash,
        });
        t.digests = vec![seal];
        assert!(verify(&t, s.public_key()).ok());
        t.digests.clear();
        assert_eq!(
            verify(&t, s.public_key()).problem,
            Some(Problem::UnsealedAnchor { seq: 4 })
        );
        // Without an anchor, records 1..3 are missing.
        let t = file(c[3..].to_vec());
        assert_eq!(
            verify(&t, s.public_key()).problem,
            Some(Problem::Missing { from: 1, to: 3 })
        );
    }
}
