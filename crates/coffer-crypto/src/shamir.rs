//! Shamir secret sharing over GF(2^8) (the AES field, polynomial x^8 + x^4 + x^3 + x + 1), and
//! the self-checking text form of an unseal share.
//!
//! Each secret byte gets its own random polynomial of degree `threshold - 1` whose constant term
//! is that byte; share `i` holds the polynomials evaluated at `x = i` (1..=255). Coefficients are
//! drawn uniformly from the whole field (zero included), which is what makes any `threshold - 1`
//! shares independent of the secret. Field arithmetic is branch-free (no log tables), so timing
//! does not depend on share or secret bytes.
//!
//! Text form of a share (what operators copy): URL-safe base64 without padding of
//! `version (1) = 1 | set id (4) | threshold (1) | index (1) | value | checksum (4)`, the checksum
//! being the first 4 bytes of SHA-256 over everything before it. The checksum catches typos and
//! truncation offline; the set id tells shares of an older `rekey` apart; the server additionally
//! checks each share against a digest it keeps and the combined key against the sealed root key
//! (see the server's seal module), so a wrong share is reported, never silently combined.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

const SHARE_FORMAT_V1: u8 = 1;
const CHECKSUM_LEN: usize = 4;
/// Header bytes before the value: version, set id, threshold, index.
const HEADER_LEN: usize = 1 + 4 + 1 + 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    #[error("the threshold must be between 1 and the number of shares, and shares at most 255")]
    BadParameters,
    #[error("no shares given")]
    NoShares,
    #[error("share {0} was given twice")]
    Duplicate(u8),
    #[error("shares have different lengths")]
    LengthMismatch,
    #[error("a share has index 0, which no share can have")]
    ZeroIndex,
}

/// Why a share's text was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    #[error("not a Coffer unseal share (bad encoding or length)")]
    Malformed,
    #[error("the share is corrupt or mistyped (its checksum does not match)")]
    Checksum,
}

// ---- GF(2^8) ---------------------------------------------------------------------------------

/// Product in GF(2^8), constant time: eight shift-and-conditionally-add steps with masks.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// Multiplicative inverse, `a^254` (so `inv(0) = 0`, never used: indices are non-zero and
/// distinct, so denominators are non-zero).
fn inv(a: u8) -> u8 {
    let a2 = mul(a, a);
    let a4 = mul(a2, a2);
    let a8 = mul(a4, a4);
    let a16 = mul(a8, a8);
    let a32 = mul(a16, a16);
    let a64 = mul(a32, a32);
    let a128 = mul(a64, a64);
    // 254 = 128 + 64 + 32 + 16 + 8 + 4 + 2
    mul(mul(mul(a128, a64), mul(a32, a16)), mul(mul(a8, a4), a2))
}

/// Evaluates the polynomial with `coeffs` (constant term first) at `x` (Horner).
fn eval(coeffs: &[u8], x: u8) -> u8 {
    coeffs.iter().rev().fold(0u8, |acc, c| mul(acc, x) ^ c)
}

/// The value at `x` of the unique polynomial of degree < `points.len()` through `points`
/// (Lagrange). Indices must be distinct; each point's value is one byte position of a share.
fn interpolate_byte(xs: &[u8], ys: &[u8], x: u8) -> u8 {
    let mut acc = 0u8;
    for (i, (&xi, &yi)) in xs.iter().zip(ys).enumerate() {
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                num = mul(num, x ^ xj);
                den = mul(den, xi ^ xj);
            }
        }
        acc ^= mul(yi, mul(num, inv(den)));
    }
    acc
}

// ---- split / combine -------------------------------------------------------------------------

/// One raw share: its index (1..=255) and one byte per secret byte.
#[derive(Clone, PartialEq, Eq)]
pub struct RawShare {
    pub index: u8,
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for RawShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawShare({}, <redacted>)", self.index)
    }
}

/// Splits `secret` into `shares` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], threshold: u8, shares: u8) -> Result<Vec<RawShare>, ShamirError> {
    if threshold == 0 || threshold > shares {
        return Err(ShamirError::BadParameters);
    }
    let mut out: Vec<RawShare> = (1..=shares)
        .map(|index| RawShare {
            index,
            value: Zeroizing::new(Vec::with_capacity(secret.len())),
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for &byte in secret {
        coeffs[0] = byte;
        crate::fill_random(&mut coeffs[1..]);
        for share in &mut out {
            share.value.push(eval(&coeffs, share.index));
        }
    }
    Ok(out)
}

/// Recovers the secret from shares (interpolation at 0). With fewer than the threshold this
/// returns an unrelated value: callers must check the result (the server opens the sealed
/// root key with it).
pub fn combine(shares: &[RawShare]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let first = shares.first().ok_or(ShamirError::NoShares)?;
    let len = first.value.len();
    let mut xs = Vec::with_capacity(shares.len());
    for s in shares {
        if s.index == 0 {
            return Err(ShamirError::ZeroIndex);
        }
        if s.value.len() != len {
            return Err(ShamirError::LengthMismatch);
        }
        if xs.contains(&s.index) {
            return Err(ShamirError::Duplicate(s.index));
        }
        xs.push(s.index);
    }
    let mut ys = Zeroizing::new(vec![0u8; shares.len()]);
    let mut secret = Zeroizing::new(Vec::with_capacity(len));
    for pos in 0..len {
        for (y, s) in ys.iter_mut().zip(shares) {
            *y = s.value[pos];
        }
        secret.push(interpolate_byte(&xs, &ys, 0));
    }
    Ok(secret)
}

/// The value a share with `index` must have so that `shares` plus it interpolate to `secret`
/// (test support for "fewer than the threshold reveal nothing": every secret has exactly one
/// completion).
#[cfg(test)]
fn completion(shares: &[RawShare], secret: &[u8], index: u8) -> Vec<u8> {
    let mut xs = vec![0u8];
    xs.extend(shares.iter().map(|s| s.index));
    (0..secret.len())
        .map(|pos| {
            let mut ys = vec![secret[pos]];
            ys.extend(shares.iter().map(|s| s.value[pos]));
            interpolate_byte(&xs, &ys, index)
        })
        .collect()
}

// ---- the operator-facing share ---------------------------------------------------------------

/// An unseal share as handed to an operator: a raw share plus the set it belongs to and the
/// threshold of that set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Share {
    /// Random per `init`/`rekey`: shares of different sets never combine.
    pub set_id: [u8; 4],
    pub threshold: u8,
    pub raw: RawShare,
}

impl Share {
    /// The text form (see the module doc).
    pub fn encode(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(self.body());
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        Zeroizing::new(URL_SAFE_NO_PAD.encode(&*bytes))
    }

    /// Parses the text form; surrounding whitespace is ignored.
    pub fn decode(text: &str) -> Result<Self, ShareError> {
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|_| ShareError::Malformed)?,
        );
        if bytes.len() < HEADER_LEN + 1 + CHECKSUM_LEN || bytes[0] != SHARE_FORMAT_V1 {
            return Err(ShareError::Malformed);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(ShareError::Checksum);
        }
        let index = body[6];
        let threshold = body[5];
        if index == 0 || threshold == 0 {
            return Err(ShareError::Malformed);
        }
        Ok(Self {
            set_id: [body[1], body[2], body[3], body[4]],
            threshold,
            raw: RawShare {
                index,
                value: Zeroizing::new(body[HEADER_LEN..].to_vec()),
            },
        })
    }

    /// SHA-256 over a domain tag and the share's body: what the server keeps to recognise each
    /// share of the current set. Shares are full-entropy values, so the digest reveals nothing.
    pub fn digest(&self) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"coffer-unseal-share-v1\0");
        ctx.update(&self.body());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    fn body(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.raw.value.len() + CHECKSUM_LEN);
        bytes.push(SHARE_FORMAT_V1);
        bytes.extend_from_slice(&self.set_id);
        bytes.push(self.threshold);
        bytes.push(self.raw.index);
        bytes.extend_from_slice(&self.raw.value);
        bytes
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&d.as_ref()[..CHECKSUM_LEN]);
    out
}

/// Splits `secret` into `shares` self-checking shares of a fresh set.
pub fn split_into_shares(
    secret: &[u8],
    threshold: u8,
    shares: u8,
) -> Result<Vec<Share>, ShamirError> {
    let set_id: [u8; 4] = crate::random_bytes();
    Ok(split(secret, threshold, shares)?
        .into_iter()
        .map(|raw| Share {
            set_id,
            threshold,
            raw,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Slow reference multiply (Russian peasant with explicit reduction) to check `mul`.
    fn mul_ref(a: u8, b: u8) -> u8 {
        let mut r: u16 = 0;
        for i in 0..8 {
            if b >> i & 1 == 1 {
                r ^= u16::from(a) << i;
            }
        }
        for i in (8..16).rev() {
            if r >> i & 1 == 1 {
                r ^= 0x11b << (i - 8);
            }
        }
        r as u8
    }

    #[test]
    fn field_arithmetic_matches_reference_and_inverses() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_ref(a, b), "{a} * {b}");
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            }
        }
        // A known AES-field product (FIPS-197 §4.2): {57} • {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert_eq!(split(b"k", 0, 3), Err(ShamirError::BadParameters));
        assert_eq!(split(b"k", 4, 3), Err(ShamirError::BadParameters));
        assert_eq!(combine(&[]), Err(ShamirError::NoShares));
        let s = split(b"key", 2, 3).unwrap();
        assert_eq!(
            combine(&[s[0].clone(), s[0].clone()]),
            Err(ShamirError::Duplicate(1))
        );
        let mut short = s[1].clone();
        short.value.pop();
        assert_eq!(
            combine(&[s[0].clone(), short]),
            Err(ShamirError::LengthMismatch)
        );
    }

    #[test]
    fn a_single_share_is_uniform_whatever_the_secret() {
        // With threshold 2, share 1's byte is secret + a uniform coefficient: over 16,384 splits
        // every byte value shows up (a miss has probability about 256·e^-64), for any secret.
        for secret in [0x00u8, 0xff, 0x5a] {
            let mut seen = [false; 256];
            for _ in 0..16_384 {
                let shares = split(&[secret], 2, 2).unwrap();
                seen[usize::from(shares[0].value[0])] = true;
            }
            assert!(seen.iter().all(|s| *s), "secret {secret:#x}");
        }
    }

    #[test]
    fn share_text_roundtrips_and_detects_damage() {
        let shares = split_into_shares(&[9u8; 32], 2, 3).unwrap();
        let text = shares[1].encode();
        assert_eq!(Share::decode(&text).unwrap(), shares[1]);
        assert_eq!(Share::decode(&format!("  {}\n", *text)).unwrap(), shares[1]);
        assert_eq!(Share::decode("not a share!"), Err(ShareError::Malformed));
        assert_eq!(Share::decode(""), Err(ShareError::Malformed));
        assert!(Share::decode(&text[..text.len() - 2]).is_err());
        assert_ne!(shares[0].digest(), shares[1].digest());
        assert!(!format!("{:?}", shares[0]).contains(&format!("{:?}", &shares[0].raw.value[..])));
    }

    proptest! {
        #[test]
        fn any_threshold_of_n_reconstruct(secret in proptest::collection::vec(any::<u8>(), 1..48),
                                          n in 1u8..=12, t_seed in any::<u8>(),
                                          order in any::<u64>(), extra in any::<u8>()) {
            let t = 1 + t_seed % n;
            let shares = split(&secret, t, n).unwrap();
            prop_assert_eq!(shares.len(), usize::from(n));
            // A pseudo-random subset of size t..=n, in a pseudo-random order.
            let mut idx: Vec<usize> = (0..shares.len()).collect();
            let mut r = order;
            for i in (1..idx.len()).rev() {
                idx.swap(i, (r % (i as u64 + 1)) as usize);
                r = r.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
            }
            let k = usize::from(t) + usize::from(extra) % (usize::from(n - t) + 1);
            let subset: Vec<RawShare> = idx[..k].iter().map(|&i| shares[i].clone()).collect();
            prop_assert_eq!(&*combine(&subset).unwrap(), &secret);
        }

        #[test]
        fn fewer_than_threshold_reveal_nothing(secret in proptest::collection::vec(any::<u8>(), 1..33),
                                               other in proptest::collection::vec(any::<u8>(), 33),
                                               n in 2u8..=10, t_seed in any::<u8>()) {
            let t = 2 + t_seed % (n - 1);
            let shares = split(&secret, t, n).unwrap();
            let few = &shares[..usize::from(t - 1)];
            // Whatever secret one guesses, exactly one missing share makes the T-1 shares
            // combine to it: T-1 shares are as consistent with `other` as with the real secret.
            let guess = &other[..secret.len()];
            let missing = shares[usize::from(t - 1)].index;
            let forged = RawShare { index: missing, value: Zeroizing::new(completion(few, guess, missing)) };
            let mut set = few.to_vec();
            set.push(forged);
            prop_assert_eq!(&*combine(&set).unwrap(), guess);
            // And the real completion gives the real secret.
            let mut real = few.to_vec();
            real.push(shares[usize::from(t - 1)].clone());
            prop_assert_eq!(&*combine(&real).unwrap(), &secret);
        }

        #[test]
        fn corrupt_share_text_is_detected(secret in proptest::collection::vec(any::<u8>(), 32),
                                          pos in any::<usize>(), bit in 0u8..6) {
            let shares = split_into_shares(&secret, 2, 3).unwrap();
            let text = shares[0].encode();
            let mut chars: Vec<u8> = text.as_bytes().to_vec();
            let pos = pos % chars.len();
            // Flip one bit of one base64 digit's value (staying in the alphabet).
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let v = ALPHABET.iter().position(|c| *c == chars[pos]).unwrap();
            chars[pos] = ALPHABET[v ^ (1 << bit)];
            let damaged = String::from_utf8(chars).unwrap();
            // Either it no longer decodes, or it decodes to a different share whose checksum
            // catches it (the last digit's low bits are padding, so a flip there may be a no-op).
            match Share::decode(&damaged) {
                Ok(s) => prop_assert_eq!(s, shares[0].clone()),
                Err(e) => prop_assert!(matches!(e, ShareError::Checksum | ShareError::Malformed)),
            }
        }
    }
}
