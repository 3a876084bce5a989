//! TLS with rustls (aws-lc-rs provider): operator-supplied files, or a self-signed pair generated
//! in the data directory on first start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{ServerConfig, StartError, TlsMode};

pub(crate) struct Tls {
    pub acceptor: Option<TlsAcceptor>,
    /// Set when a self-signed certificate was generated now.
    pub generated_fingerprint: Option<String>,
}

pub(crate) fn acceptor(config: &ServerConfig) -> Result<Tls, StartError> {
    let (cert_path, key_path, fingerprint) = match &config.tls {
        TlsMode::Off => {
            return Ok(Tls {
                acceptor: None,
                generated_fingerprint: None,
            });
        }
        TlsMode::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsMode::SelfSigned => {
            let dir = config.data_dir.clone().ok_or_else(|| {
                StartError::Tls("--tls-self-signed needs a data directory".into())
            })?;
            let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
            let fp = if cert.exists() && key.exists() {
                None
            } else {
                Some(generate(&cert, &key)?)
            };
            (cert, key, fp)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: Some(TlsAcceptor::from(Arc::new(cfg))),
        generated_fingerprint: fingerprint,
    })
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<String, StartError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| StartError::Tls(e.to_string()))?;
    write_private(key_path, ck.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, ck.cert.pem())?;
    Ok(fingerprint(ck.cert.der()))
}

/// `AA:BB:...` SHA-256 of the DER certificate, as browsers and openssl print it.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let pem = std::fs::read(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| StartError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartError> {
    let pem = std::fs::read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| StartError::Tls(format!("{}: {e}", path.display())))?
        .ok_or_else(|| StartError::Tls(format!("{}: no private key found", path.display())))
}
