//! Root key, AES-256-GCM sealing, zeroizing secret types. Pure: no I/O except where a function
//! says it reads or writes a key file.
//!
//! Sealed format (every layer uses it): `nonce (12) || ciphertext || tag (16)`. The nonce is
//! random per seal; with 96-bit random nonces a single key stays safe far beyond the number of
//! values one key ever seals here (each data key seals exactly one value).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

pub mod root_wrapped;
pub mod shamir;

/// Bytes a sealed value adds to its plaintext: nonce + tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Wrong key, wrong AAD, or any bit of the sealed bytes changed. Deliberately says no more.
    #[error("authentication failed")]
    Open,
    /// The plaintext is larger than AES-GCM can seal in one message.
    #[error("plaintext too large to seal")]
    TooLarge,
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `N` bytes from the system CSPRNG.
///
/// # Panics
/// If the operating system's random source fails. Nothing here can continue safely without
/// randomness (keys and nonces would repeat), so this is treated like memory exhaustion.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// Fills `dest` from the system CSPRNG. Panics only if the OS random source fails (see
/// [`random_bytes`]).
pub fn fill_random(dest: &mut [u8]) {
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(dest).expect("system random source failed");
}

/// A fresh random 256-bit key, zeroized on drop.
pub fn random_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    fill_random(k.as_mut());
    k
}

/// An AES-256-GCM key with its schedule expanded once, for keys used repeatedly (key material
/// on the hot path). The raw bytes are not kept; aws-lc zeroizes the schedule on drop.
pub struct AeadKey(LessSafeKey);

impl AeadKey {
    pub fn new(key: &[u8; 32]) -> Self {
        // AES_256_GCM takes exactly 32 bytes; a `[u8; 32]` cannot be rejected.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key");
        Self(LessSafeKey::new(unbound))
    }

    /// Seals `plaintext` with `aad`: `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::TooLarge)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`AeadKey::seal`] produced with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        // Decrypt in a zeroizing buffer so a failed or successful open leaves no plaintext behind.
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| CryptoError::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

/// AES-256-GCM seal under `key` with `aad`; a random 96-bit nonce is prepended, the tag appended.
/// A 256-bit key for one `purpose`, derived from `secret` with HKDF-SHA256: the same inputs give
/// the same key (across restarts, and across nodes sharing the root key); different purposes give
/// independent keys.
pub fn derive_key(secret: &[u8; 32], purpose: &str) -> Zeroizing<[u8; 32]> {
    use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
    struct Len32;
    impl KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = Salt::new(HKDF_SHA256, b"coffer-derive-v1").extract(secret);
    let mut out = Zeroizing::new([0u8; 32]);
    let info = [purpose.as_bytes()];
    // Expanding 32 bytes from SHA-256 cannot exceed HKDF's 255-block limit.
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("HKDF-SHA256 expand of 32 bytes");
    out
}

pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    AeadKey::new(key).seal(plaintext, aad)
}

/// Opens a [`seal`]ed value; any change to key, aad or sealed bytes gives [`CryptoError::Open`].
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    AeadKey::new(key).open(sealed, aad)
}

/// The 256-bit root key. Lives only in memory; zeroized on drop.
pub struct RootKey(Zeroizing<[u8; 32]>);

impl RootKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A fresh random root key.
    pub fn generate() -> Self {
        Self(random_key())
    }

    /// Reads a 32-byte key file that must exist (mode 0600).
    pub fn load_existing(path: &Path) -> io::Result<RootKey> {
        read_key_file(path)
    }

    /// Reads a 32-byte key from `path`, or creates it (mode 0600, atomically) if absent.
    /// Returns `(key, created)`. The server keeps auto-unseal keys in such files; the root key
    /// itself is never written anywhere (see the server's seal module).
    pub fn load_or_create(path: &Path) -> io::Result<(RootKey, bool)> {
        match read_key_file(path) {
            Ok(k) => return Ok((k, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = RootKey::generate();
        match create_key_file(path, key.as_bytes()) {
            Ok(()) => Ok((key, true)),
            // Another process created it between our read and our link: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((read_key_file(path)?, false)),
            Err(e) => Err(e),
        }
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

fn read_key_file(path: &Path) -> io::Result<RootKey> {
    let mut f = File::open(path)?;
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "root key file {} is accessible by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(33));
    // Read one byte more than a key so a longer file is detected, not truncated silently.
    (&mut f).take(33).read_to_end(&mut buf)?;
    let bytes: [u8; 32] = buf.as_slice().try_into().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("root key file {} is not exactly 32 bytes", path.display()),
        )
    })?;
    let key = RootKey::from_bytes(bytes);
    let mut bytes = bytes;
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(key)
}

/// Writes a temp file (0600, fsynced) beside `path`, then hard-links it into place. Unlike
/// `rename`, `link` fails if `path` already exists, so two processes starting at once cannot
/// replace each other's key. The directory is fsynced so the new name survives a crash.
fn create_key_file(path: &Path, key: &[u8; 32]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "root key path has no file name",
        )
    })?;
    let suffix: [u8; 8] = random_bytes();
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", u64::from_le_bytes(suffix)));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key)?;
        f.sync_all()?;
        drop(f);
        fs::hard_link(&tmp, path)
    })();
    // The temp name is only scaffolding; remove it whatever happened.
    let _ = fs::remove_file(&tmp);
    result?;
    File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod derive_tests {
    use super::*;

    #[test]
    fn derivation_is_stable_and_separates_purposes() {
        let secret = [7u8; 32];
        assert_eq!(*derive_key(&secret, "a"), *derive_key(&secret, "a"));
        assert_ne!(*derive_key(&secret, "a"), *derive_key(&secret, "b"));
        assert_ne!(*derive_key(&secret, "a"), *derive_key(&[8u8; 32], "a"));
        assert_ne!(*derive_key(&secret, "a"), secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_and_format() {
        let key = random_key();
        let sealed = seal(&key, b"hello", b"ctx").unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&key, &sealed, b"ctx").unwrap().as_slice(), b"hello");
        // Random nonces: sealing twice differs.
        assert_ne!(seal(&key, b"hello", b"ctx").unwrap(), sealed);
    }

    #[test]
    fn short_or_empty_input_is_rejected() {
        let key = random_key();
        for n in 0..SEAL_OVERHEAD {
            assert_eq!(
                open(&key, &vec![0u8; n], b"").unwrap_err(),
                CryptoError::Open
            );
        }
        let sealed = seal(&key, b"", b"").unwrap();
        assert!(open(&key, &sealed, b"").unwrap().is_empty());
    }

    #[test]
    fn random_bytes_differ() {
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }

    #[test]
    fn debug_redacts() {
        let k = RootKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{k:?}"), "RootKey(<redacted>)");
        assert_eq!(
            format!("{:?}", AeadKey::new(&[7u8; 32])),
            "AeadKey(<redacted>)"
        );
    }

    proptest! {
        #[test]
        fn prop_roundtrip(pt in proptest::collection::vec(any::<u8>(), 0..512),
                          aad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let key = random_key();
            let sealed = seal(&key, &pt, &aad).unwrap();
            let opened = open(&key, &sealed, &aad).unwrap();
            prop_assert_eq!(opened.as_slice(), pt.as_slice());
        }

        #[test]
        fn prop_any_ciphertext_bit_flip_fails(pt in proptest::collection::vec(any::<u8>(), 0..256),
                                              bit in any::<usize>()) {
            let key = random_key();
            let mut sealed = seal(&key, &pt, b"aad").unwrap();
            let bit = bit % (sealed.len() * 8);
            sealed[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(open(&key, &sealed, b"aad").unwrap_err(), CryptoError::Open);
        }

        #[test]
        fn prop_any_aad_bit_flip_fails(aad in proptest::collection::vec(any::<u8>(), 1..64),
                                       bit in any::<usize>()) {
            let key = random_key();
            let sealed = seal(&key, b"secret", &aad).unwrap();
            let mut bad = aad.clone();
            let bit = bit % (bad.len() * 8);
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(open(&key, &sealed, &bad).unwrap_err(), CryptoError::Open);
            // Truncated or extended AAD fails too.
            prop_assert!(open(&key, &sealed, &aad[..aad.len() - 1]).is_err());
            let mut longer = aad.clone();
            longer.push(0);
            prop_assert!(open(&key, &sealed, &longer).is_err());
        }

        #[test]
        fn prop_wrong_key_fails(pt in proptest::collection::vec(any::<u8>(), 0..128)) {
            let sealed = seal(&random_key(), &pt, b"").unwrap();
            prop_assert_eq!(open(&random_key(), &sealed, b"").unwrap_err(), CryptoError::Open);
        }
    }

    #[test]
    fn key_file_created_0600_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let (k1, created) = RootKey::load_or_create(&path).unwrap();
        assert!(created);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let (k2, created) = RootKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.as_bytes(), k2.as_bytes());
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn key_file_bad_length_or_mode_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        fs::write(&path, [1u8; 31]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            RootKey::load_or_create(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::write(&path, [1u8; 33]).unwrap();
        assert!(RootKey::load_or_create(&path).is_err());
        fs::write(&path, [1u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = RootKey::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        // The file was not replaced.
        assert_eq!(fs::read(&path).unwrap(), vec![1u8; 32]);
    }

    #[test]
    fn concurrent_creation_agrees_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| *RootKey::load_or_create(&path).unwrap().0.as_bytes()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0]));
    }
}
