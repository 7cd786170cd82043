//! The proxy's own TLS server side: the `[tls] cert`/`key` PEM files turned
//! into a rustls acceptor for MySQL clients (and the admin endpoint).
//!
//! Certificates are rotated by replacing the files: every TLS handshake first
//! compares the files' size and modification time with the loaded ones (two
//! `stat` calls, next to a handshake's public-key operations) and reloads when
//! they changed or the config now names other files. A file that does not
//! load (half written, wrong key) keeps the previous certificate in service
//! and is reported once per change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use tokio_rustls::TlsAcceptor;

use super::{load_certs, provider, TlsError};

/// What identifies one version of the files.
type Stamp = [(Option<SystemTime>, u64); 2];

struct Loaded {
    paths: (PathBuf, PathBuf),
    stamp: Stamp,
    acceptor: TlsAcceptor,
}

/// The current acceptor, reloaded when the files change.
#[derive(Default)]
pub struct ServerTls {
    loaded: Mutex<Option<Loaded>>,
    /// The stamp of files that failed to load (not retried until they change).
    failed: Mutex<Option<Stamp>>,
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    [one(cert), one(key)]
}

/// Builds an acceptor from PEM files: the certificate chain and its key
/// (PKCS#8, PKCS#1 or SEC1).
pub fn load_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
        path: key.to_path_buf(),
        what: format!("no usable private key: {e}"),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl ServerTls {
    /// Loads `cert`/`key` now (a bad file is a startup error) when both are set.
    pub fn new(cert: Option<&Path>, key: Option<&Path>) -> Result<Self, TlsError> {
        let tls = ServerTls::default();
        if let (Some(cert), Some(key)) = (cert, key) {
            let acceptor = load_acceptor(cert, key)?;
            *tls.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(Loaded {
                paths: (cert.to_path_buf(), key.to_path_buf()),
                stamp: stamp(cert, key),
                acceptor,
            });
        }
        Ok(tls)
    }

    /// The acceptor for the configured files, or None when TLS is not
    /// configured (or never loaded).
    pub fn acceptor(&self, cert: Option<&Path>, key: Option<&Path>) -> Option<TlsAcceptor> {
        let (cert, key) = (cert?, key?);
        let now = stamp(cert, key);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let current = loaded
            .as_ref()
            .is_some_and(|l| l.stamp == now && l.paths.0 == cert && l.paths.1 == key);
        if !current {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            if *failed != Some(now) {
                match load_acceptor(cert, key) {
                    Ok(acceptor) => {
                        tracing::info!(cert = %cert.display(), "TLS certificate (re)loaded");
                        *loaded = Some(Loaded {
                            paths: (cert.to_path_buf(), key.to_path_buf()),
                            stamp: now,
                            acceptor,
                        });
                        *failed = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in use");
                        *failed = Some(now);
                    }
                }
            }
        }
        loaded.as_ref().map(|l| l.acceptor.clone())
    }
}
