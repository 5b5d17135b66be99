//! rustls client configurations (ring provider) for AMQP over TLS and the management API.

use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::TlsOptions;

/// Why TLS material cannot be used. Messages name the key and never quote the material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A PEM value holds no usable certificate or key.
    #[error("`{key}` is not valid PEM: {reason}")]
    BadPem {
        /// Metadata key of the value.
        key: &'static str,
        /// What is wrong, in fixed words: parser errors can quote the material's bytes.
        reason: &'static str,
    },
    /// rustls refused the client key with `cert` (a key for another certificate, or a key
    /// type it cannot sign with).
    #[error("`key` does not match `cert`, or is not a supported private key type")]
    KeyMismatch,
    /// rustls could not set up TLS at all (no safe protocol version); not the trigger's fault.
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

impl TlsError {
    /// The metadata key at fault.
    pub fn key(&self) -> &'static str {
        match self {
            Self::BadPem { key, .. } => key,
            Self::KeyMismatch => "key",
            Self::Setup(_) => "cert",
        }
    }
}

/// Builds a client configuration: system roots plus `ca`, the client certificate if given,
/// and no verification at all with `unsafe_ssl`.
pub fn client_config(options: &TlsOptions) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(error.to_string()))?;
    let builder = if options.unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(ebb::insecure_tls::SkipIdentityVerifier::shared())
    } else {
        builder.with_root_certificates(roots(options.ca.as_deref())?)
    };
    match &options.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = certificates(cert, "cert")?;
            let key =
                PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| TlsError::BadPem {
                    key: "key",
                    reason: "no private key found",
                })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| TlsError::KeyMismatch)
        }
    }
}

fn roots(ca: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    // Unreadable system certificates are skipped: a given `ca` may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(native.certs);
    if let Some(ca) = ca {
        for certificate in certificates(ca, "ca")? {
            store.add(certificate).map_err(|_| TlsError::BadPem {
                key: "ca",
                reason: "a certificate in it cannot be parsed",
            })?;
        }
    }
    Ok(store)
}

fn certificates(pem: &str, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::BadPem {
            key,
            reason: "a CERTIFICATE block does not decode",
        })?;
    if certificates.is_empty() {
        return Err(TlsError::BadPem {
            key,
            reason: "no certificate found",
        });
    }
    Ok(certificates)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_and_unsafe_configs_build() {
        client_config(&TlsOptions::default()).unwrap();
        client_config(&TlsOptions {
            unsafe_ssl: true,
            ..TlsOptions::default()
        })
        .unwrap();
    }

    #[test]
    fn bad_pem_names_key_without_quoting_it() {
        let options = TlsOptions {
            ca: Some("not a certificate SECRETISH".into()),
            ..TlsOptions::default()
        };
        let error = client_config(&options).unwrap_err();
        assert_eq!(error.key(), "ca");
        assert!(!error.to_string().contains("SECRETISH"));
        let options = TlsOptions {
            client: Some(("garbage".into(), "garbage-key".into())),
            ..TlsOptions::default()
        };
        let error = client_config(&options).unwrap_err();
        assert_eq!(error.key(), "cert");
        assert!(!error.to_string().contains("garbage-key"));
    }

    #[test]
    fn a_key_for_another_certificate_is_blamed_on_key() {
        let mine = rcgen::generate_simple_self_signed(vec!["me".into()]).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let options = TlsOptions {
            client: Some((mine.cert.pem(), other.serialize_pem())),
            ..TlsOptions::default()
        };
        assert_eq!(client_config(&options).unwrap_err(), TlsError::KeyMismatch);
        let garbage_key = TlsOptions {
            client: Some((mine.cert.pem(), "garbage".into())),
            ..TlsOptions::default()
        };
        assert_eq!(client_config(&garbage_key).unwrap_err().key(), "key");
    }

    #[test]
    fn a_broken_ca_block_is_described_in_words() {
        let broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        for ca in [broken, truncated] {
            let options = TlsOptions {
                ca: Some(ca.into()),
                ..TlsOptions::default()
            };
            let error = client_config(&options).unwrap_err().to_string();
            assert!(error.starts_with("`ca` is not valid PEM"), "{error}");
            assert!(!error.contains('['), "no byte arrays: {error}");
        }
    }
}
