//! TLS for every hop, with rustls (ring provider) only.
//!
//! Tandem opens connections to both engines and accepts MySQL clients; each
//! hop's URL or config says how much it must trust the other end. The modes
//! are the ones the engines' own clients use (libpq's `sslmode`, the MySQL
//! client's `ssl-mode`), mapped onto one [`SslMode`], and one function
//! ([`client_config`]) turns a mode and a CA file into the rustls
//! configuration every backend connection uses, so "verify" means the same
//! thing whether the far end is PostgreSQL, MariaDB or a MySQL 8 server:
//!
//! * `Prefer`/`Require` encrypt but accept any certificate (as libpq and the
//!   MySQL client do: they protect against passive sniffing only);
//! * `VerifyCa` checks the chain up to the given CA and the validity dates;
//! * `VerifyFull` also checks that the certificate names the host we dialled.
//!
//! A verified mode never falls back to plaintext: a server that does not offer
//! TLS is an error.

pub mod pg;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How much a backend connection insists on TLS and verifies the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, plaintext otherwise; no verification.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS or fail; the chain must lead to the configured CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// libpq's `sslmode` spelling (`allow` is not offered: it prefers
    /// plaintext, which no one should pick for a migration).
    pub fn from_libpq(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The MySQL client's `--ssl-mode` spelling, case-insensitive.
    pub fn from_mysql(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "DISABLED" => SslMode::Disable,
            "PREFERRED" => SslMode::Prefer,
            "REQUIRED" => SslMode::Require,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// True when a server without TLS must be refused.
    pub fn requires(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// The TLS part of a backend URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsTarget {
    pub mode: SslMode,
    /// PEM file of the CA(s) a verified mode trusts.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Pem { path: PathBuf, what: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("`{0}` is not a host name a certificate can be checked against")]
    ServerName(String),
    #[error("{0} needs a CA file (sslrootcert= / ssl-ca=)")]
    NoCa(&'static str),
    #[error("the server does not offer TLS, and the URL's ssl mode requires it")]
    NotOffered,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("unexpected bytes before the TLS handshake")]
    Unexpected,
}

/// The one crypto provider Tandem uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process default, for libraries (mysql_async) that build
/// their own rustls configuration. Harmless when already installed.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no CERTIFICATE block in the file".into(),
        });
    }
    Ok(certs)
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(path)? {
        store.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

/// The rustls client configuration for `target` (None for `Disable`).
pub fn client_config(target: &TlsTarget) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match target.mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                roots: None,
                provider,
            }))
            .with_no_client_auth(),
        SslMode::VerifyCa => {
            let ca = target.ca.as_deref().ok_or(TlsError::NoCa("verify-ca"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    roots: Some(Arc::new(roots(ca)?)),
                    provider,
                }))
                .with_no_client_auth()
        }
        SslMode::VerifyFull => {
            let ca = target.ca.as_deref().ok_or(TlsError::NoCa("verify-full"))?;
            builder
                .with_root_certificates(roots(ca)?)
                .with_no_client_auth()
        }
    };
    Ok(Some(Arc::new(config)))
}

/// The name sent as SNI and checked in `VerifyFull`.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName(host.to_string()))
}

/// A verifier for the modes rustls' own does not cover: `Prefer`/`Require`
/// (`roots: None`: encrypts without checking who answers) and `VerifyCa`
/// (the chain and dates against the CA, not the host name: for servers
/// reached by an address their certificate does not list). The handshake
/// signatures are checked either way, so the session key belongs to whoever
/// holds the certificate's private key.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_spellings() {
        assert_eq!(
            SslMode::from_libpq("verify-full"),
            Some(SslMode::VerifyFull)
        );
        assert_eq!(SslMode::from_libpq("allow"), None);
        assert_eq!(
            SslMode::from_mysql("verify_identity"),
            Some(SslMode::VerifyFull)
        );
        assert_eq!(SslMode::from_mysql("REQUIRED"), Some(SslMode::Require));
        assert_eq!(SslMode::from_mysql("required-ish"), None);
    }

    #[test]
    fn verified_modes_need_a_ca() {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let err = client_config(&TlsTarget { mode, ca: None }).unwrap_err();
            assert!(matches!(err, TlsError::NoCa(_)), "{err}");
        }
        assert!(client_config(&TlsTarget::default()).unwrap().is_some());
        let off = TlsTarget {
            mode: SslMode::Disable,
            ca: None,
        };
        assert!(client_config(&off).unwrap().is_none());
    }
}
