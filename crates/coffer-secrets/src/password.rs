//! `GetRandomPassword`: a pure password generator with Secrets Manager's semantics.
//!
//! Character classes are AWS's: lowercase, uppercase, digits and the 32 ASCII punctuation
//! characters, plus the space when asked for. `RequireEachIncludedType` (default true) guarantees
//! one character from each of the four classes that is still non-empty after the exclusions; the
//! space is never required, as AWS documents only the four classes.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

/// Bounds from the model's `PasswordLengthType` and `ExcludeCharactersType`.
pub const MIN_LENGTH: i64 = 1;
pub const MAX_LENGTH: i64 = 4096;
pub const DEFAULT_LENGTH: i64 = 32;
pub const MAX_EXCLUDE_CHARACTERS: usize = 4096;

const LOWERCASE: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPERCASE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NUMBERS: &str = "0123456789";
/// Exactly the set the API reference lists for `ExcludePunctuation`.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The `GetRandomPassword` request members, already decoded.
#[derive(Debug, Clone, Default)]
pub struct PasswordOptions {
    /// `PasswordLength`; `None` means 32.
    pub length: Option<i64>,
    pub exclude_characters: Option<String>,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    /// `None` means true, as in AWS.
    pub require_each_included_type: Option<bool>,
}

/// Why a password could not be generated. Messages never contain generated material.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "1 validation error detected: Value '{0}' at 'passwordLength' failed to satisfy constraint: Member must have value greater than or equal to 1"
    )]
    LengthTooSmall(i64),
    #[error(
        "1 validation error detected: Value '{0}' at 'passwordLength' failed to satisfy constraint: Member must have value less than or equal to 4096"
    )]
    LengthTooLarge(i64),
    #[error(
        "1 validation error detected: Value at 'excludeCharacters' failed to satisfy constraint: Member must have length less than or equal to 4096"
    )]
    ExcludeCharactersTooLong,
    #[error("The password cannot be generated because all the character types were excluded.")]
    NoCharactersAvailable,
    #[error("Password length is too short based on the required types.")]
    LengthTooShortForRequiredTypes,
    #[error("An error occurred on the server side.")]
    Random,
}

impl PasswordError {
    /// The AWS error code this maps to on the wire.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::LengthTooSmall(_) | Self::LengthTooLarge(_) | Self::ExcludeCharactersTooLong => {
                "ValidationException"
            }
            Self::NoCharactersAvailable | Self::LengthTooShortForRequiredTypes => {
                "InvalidParameterException"
            }
            Self::Random => "InternalServiceError",
        }
    }
}

/// Generates one password. The result and every intermediate buffer are zeroized on drop.
pub fn generate(opts: &PasswordOptions) -> Result<Zeroizing<String>, PasswordError> {
    generate_with(opts, &SystemRandom::new())
}

fn generate_with(
    opts: &PasswordOptions,
    rng: &dyn SecureRandom,
) -> Result<Zeroizing<String>, PasswordError> {
    let length = opts.length.unwrap_or(DEFAULT_LENGTH);
    if length < MIN_LENGTH {
        return Err(PasswordError::LengthTooSmall(length));
    }
    if length > MAX_LENGTH {
        return Err(PasswordError::LengthTooLarge(length));
    }
    // Bounded to 1..=4096 just above, so the conversion cannot fail.
    let length = usize::try_from(length).map_err(|_| PasswordError::LengthTooLarge(length))?;

    let excluded = opts.exclude_characters.as_deref().unwrap_or("");
    if excluded.chars().count() > MAX_EXCLUDE_CHARACTERS {
        return Err(PasswordError::ExcludeCharactersTooLong);
    }
    let keep = |set: &str| -> Vec<u8> {
        set.bytes()
            .filter(|b| !excluded.contains(char::from(*b)))
            .collect()
    };

    let mut required: Vec<Vec<u8>> = Vec::with_capacity(4);
    for (set, excluded_class) in [
        (LOWERCASE, opts.exclude_lowercase),
        (UPPERCASE, opts.exclude_uppercase),
        (NUMBERS, opts.exclude_numbers),
        (PUNCTUATION, opts.exclude_punctuation),
    ] {
        if !excluded_class {
            let class = keep(set);
            if !class.is_empty() {
                required.push(class);
            }
        }
    }
    let mut pool: Vec<u8> = required.iter().flatten().copied().collect();
    if opts.include_space {
        pool.extend(keep(" "));
    }
    if pool.is_empty() {
        return Err(PasswordError::NoCharactersAvailable);
    }

    let require_each = opts.require_each_included_type.unwrap_or(true);
    if !require_each {
        required.clear();
    }
    if length < required.len() {
        return Err(PasswordError::LengthTooShortForRequiredTypes);
    }

    let mut source = Uniform::new(rng);
    let mut out = Zeroizing::new(Vec::with_capacity(length));
    for class in &required {
        out.push(pick(&mut source, class)?);
    }
    while out.len() < length {
        out.push(pick(&mut source, &pool)?);
    }
    if !required.is_empty() {
        // Fisher–Yates so the guaranteed characters are not always at the front.
        for i in (1..out.len()).rev() {
            let j = source.below(i + 1)?;
            out.swap(i, j);
        }
    }

    let mut bytes = std::mem::take(&mut *out);
    // Every byte came from the ASCII sets above, so this cannot fail; the error path still wipes.
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            bytes = e.into_bytes();
            bytes.zeroize();
            Err(PasswordError::Random)
        }
    }
}

fn pick(source: &mut Uniform<'_>, set: &[u8]) -> Result<u8, PasswordError> {
    let i = source.below(set.len())?;
    set.get(i).copied().ok_or(PasswordError::Random)
}

/// Unbiased integers from a CSPRNG, read in blocks to keep the number of RNG calls low.
struct Uniform<'a> {
    rng: &'a dyn SecureRandom,
    buf: Zeroizing<[u8; 256]>,
    pos: usize,
}

impl<'a> Uniform<'a> {
    fn new(rng: &'a dyn SecureRandom) -> Self {
        Self {
            rng,
            buf: Zeroizing::new([0; 256]),
            pos: 256,
        }
    }

    fn next_u32(&mut self) -> Result<u32, PasswordError> {
        if self.pos + 4 > self.buf.len() {
            self.rng
                .fill(&mut self.buf[..])
                .map_err(|_| PasswordError::Random)?;
            self.pos = 0;
        }
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        self.pos += 4;
        Ok(u32::from_le_bytes(word))
    }

    /// A uniform integer in `0..n` (n ≥ 1): values in the incomplete top bucket are rejected so
    /// that every residue is equally likely.
    fn below(&mut self, n: usize) -> Result<usize, PasswordError> {
        let n = u32::try_from(n).map_err(|_| PasswordError::Random)?;
        if n == 0 {
            return Err(PasswordError::Random);
        }
        // Largest multiple of n that fits in 2^32; draws at or above it would favour small residues.
        let zone = u32::MAX - (u32::MAX - n + 1) % n;
        loop {
            let x = self.next_u32()?;
            if x <= zone {
                return Ok((x % n) as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn gen_ok(opts: &PasswordOptions) -> String {
        match generate(opts) {
            Ok(p) => p.to_string(),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn opts() -> PasswordOptions {
        PasswordOptions::default()
    }

    #[test]
    fn default_is_32_chars_from_all_four_classes() {
        for _ in 0..200 {
            let p = gen_ok(&opts());
            assert_eq!(p.len(), 32);
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()));
            assert!(p.bytes().any(|b| PUNCTUATION.as_bytes().contains(&b)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn lengths_at_the_bounds() {
        for len in [1, 4, 5, 100, 4096] {
            let o = PasswordOptions {
                length: Some(len),
                require_each_included_type: Some(len >= 4),
                ..opts()
            };
            assert_eq!(gen_ok(&o).len() as i64, len);
        }
    }

    #[test]
    fn length_out_of_range_is_rejected() {
        for len in [0, -1, i64::MIN] {
            let e = generate(&PasswordOptions {
                length: Some(len),
                ..opts()
            })
            .unwrap_err();
            assert!(matches!(e, PasswordError::LengthTooSmall(l) if l == len));
            assert_eq!(e.aws_code(), "ValidationException");
            assert!(e.to_string().contains("greater than or equal to 1"));
        }
        for len in [4097, i64::MAX] {
            let e = generate(&PasswordOptions {
                length: Some(len),
                ..opts()
            })
            .unwrap_err();
            assert!(matches!(e, PasswordError::LengthTooLarge(l) if l == len));
            assert!(e.to_string().contains("less than or equal to 4096"));
        }
    }

    #[test]
    fn too_short_for_required_types() {
        let e = generate(&PasswordOptions {
            length: Some(3),
            ..opts()
        })
        .unwrap_err();
        assert!(matches!(e, PasswordError::LengthTooShortForRequiredTypes));
        assert_eq!(e.aws_code(), "InvalidParameterException");
        // Fewer required classes make a shorter length fine.
        let o = PasswordOptions {
            length: Some(2),
            exclude_numbers: true,
            exclude_punctuation: true,
            ..opts()
        };
        for _ in 0..100 {
            let p = gen_ok(&o);
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
        }
        // Not requiring each type allows length 1.
        let o = PasswordOptions {
            length: Some(1),
            require_each_included_type: Some(false),
            ..opts()
        };
        assert_eq!(gen_ok(&o).len(), 1);
    }

    #[test]
    fn each_class_exclusion_is_honoured() {
        type Pred = fn(&u8) -> bool;
        let cases: [(PasswordOptions, Pred); 4] = [
            (
                PasswordOptions {
                    exclude_lowercase: true,
                    ..opts()
                },
                |b| b.is_ascii_lowercase(),
            ),
            (
                PasswordOptions {
                    exclude_uppercase: true,
                    ..opts()
                },
                |b| b.is_ascii_uppercase(),
            ),
            (
                PasswordOptions {
                    exclude_numbers: true,
                    ..opts()
                },
                |b| b.is_ascii_digit(),
            ),
            (
                PasswordOptions {
                    exclude_punctuation: true,
                    ..opts()
                },
                |b| PUNCTUATION.as_bytes().contains(b),
            ),
        ];
        for (o, forbidden) in cases {
            let o = PasswordOptions {
                length: Some(4096),
                ..o
            };
            for _ in 0..20 {
                let p = gen_ok(&o);
                assert!(!p.as_bytes().iter().any(forbidden), "{o:?}");
            }
        }
    }

    #[test]
    fn exclude_characters_is_honoured() {
        let o = PasswordOptions {
            length: Some(4096),
            exclude_characters: Some("aeiouAEIOU01\"'\\` ".to_string()),
            include_space: true,
            ..opts()
        };
        for _ in 0..20 {
            let p = gen_ok(&o);
            assert!(!p.chars().any(|c| "aeiouAEIOU01\"'\\` ".contains(c)));
        }
    }

    #[test]
    fn class_emptied_by_exclude_characters_is_not_required() {
        let o = PasswordOptions {
            length: Some(3),
            exclude_characters: Some(NUMBERS.to_string()),
            ..opts()
        };
        for _ in 0..100 {
            let p = gen_ok(&o);
            assert_eq!(p.len(), 3);
            assert!(!p.bytes().any(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn everything_excluded_is_an_error() {
        let o = PasswordOptions {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..opts()
        };
        let e = generate(&o).unwrap_err();
        assert!(matches!(e, PasswordError::NoCharactersAvailable));
        assert_eq!(e.aws_code(), "InvalidParameterException");

        let all = format!("{LOWERCASE}{UPPERCASE}{NUMBERS}{PUNCTUATION} ");
        let o = PasswordOptions {
            exclude_characters: Some(all),
            include_space: true,
            ..opts()
        };
        assert!(matches!(
            generate(&o),
            Err(PasswordError::NoCharactersAvailable)
        ));
    }

    #[test]
    fn only_space_left() {
        let o = PasswordOptions {
            length: Some(5),
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            include_space: true,
            ..opts()
        };
        assert_eq!(gen_ok(&o), "     ");
    }

    #[test]
    fn include_space_adds_space() {
        let o = PasswordOptions {
            length: Some(4096),
            include_space: true,
            ..opts()
        };
        // P(no space in 4096 draws from 95 chars) ≈ e^-43: cannot flake in practice.
        assert!(gen_ok(&o).contains(' '));
    }

    #[test]
    fn exclude_characters_too_long() {
        let o = PasswordOptions {
            exclude_characters: Some("x".repeat(4097)),
            ..opts()
        };
        assert!(matches!(
            generate(&o),
            Err(PasswordError::ExcludeCharactersTooLong)
        ));
        let o = PasswordOptions {
            exclude_characters: Some("x".repeat(4096)),
            ..opts()
        };
        assert!(generate(&o).is_ok());
    }

    #[test]
    fn non_ascii_exclusions_are_ignored() {
        let o = PasswordOptions {
            exclude_characters: Some("é漢🔑".to_string()),
            ..opts()
        };
        assert_eq!(gen_ok(&o).len(), 32);
    }

    #[test]
    fn required_types_at_minimum_length_land_anywhere() {
        // Length 4 with 4 required classes: every password is a permutation of one per class.
        let o = PasswordOptions {
            length: Some(4),
            ..opts()
        };
        let mut first_classes = HashSet::new();
        for _ in 0..400 {
            let p = gen_ok(&o);
            let b = p.as_bytes();
            assert_eq!(b.iter().filter(|c| c.is_ascii_lowercase()).count(), 1);
            assert_eq!(b.iter().filter(|c| c.is_ascii_uppercase()).count(), 1);
            assert_eq!(b.iter().filter(|c| c.is_ascii_digit()).count(), 1);
            assert_eq!(
                b.iter()
                    .filter(|c| PUNCTUATION.as_bytes().contains(c))
                    .count(),
                1
            );
            let c = b[0];
            first_classes.insert((
                c.is_ascii_lowercase(),
                c.is_ascii_uppercase(),
                c.is_ascii_digit(),
            ));
        }
        // The shuffle moves each class to the front sometimes (P(miss one) ≈ 4·(3/4)^400).
        assert_eq!(first_classes.len(), 4);
    }

    #[test]
    fn every_allowed_character_appears() {
        let o = PasswordOptions {
            length: Some(4096),
            include_space: true,
            require_each_included_type: Some(false),
            ..opts()
        };
        let mut counts = [0usize; 128];
        let mut total = 0;
        while total < 200_000 {
            for b in gen_ok(&o).bytes() {
                counts[usize::from(b)] += 1;
                total += 1;
            }
        }
        let allowed: Vec<u8> =
            format!("{LOWERCASE}{UPPERCASE}{NUMBERS}{PUNCTUATION} ").into_bytes();
        assert_eq!(allowed.len(), 95);
        for (c, n) in counts.iter().enumerate() {
            let is_allowed = allowed.contains(&(c as u8));
            assert_eq!(*n > 0, is_allowed, "char {c}");
            if is_allowed {
                // Expected ≈ 2100 each; these bounds are > 20 standard deviations away.
                assert!((1000..4000).contains(n), "char {c} appeared {n} times");
            }
        }
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let rng = SystemRandom::new();
        let mut u = Uniform::new(&rng);
        for n in [1usize, 2, 3, 7, 95, 4096] {
            let mut seen = vec![false; n];
            for _ in 0..(n * 40) {
                let v = u.below(n).unwrap();
                assert!(v < n);
                seen[v] = true;
            }
            assert!(seen.iter().all(|s| *s), "n={n}");
        }
        assert!(u.below(0).is_err());
    }

    #[test]
    fn passwords_differ() {
        let a = gen_ok(&opts());
        let b = gen_ok(&opts());
        assert_ne!(a, b);
    }
}
