//! The certificate verifier behind `insecureSkipVerify` / `unsafeSsl`, shared by the
//! controller's scaler connections and the RabbitMQ scaler's broker connections.
//!
//! It skips identity verification only: any certificate chain is accepted for any name, at any
//! time, from any issuer. The handshake signatures are still checked, with ring's algorithms,
//! against the key of the certificate the scaler presented, so the session keys are bound to
//! that certificate and a peer that merely replays someone else's certificate cannot finish
//! the handshake. Encryption stays as strong as with verification; what is lost is knowing who
//! is on the other end.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};

/// Accepts every server certificate but verifies handshake signatures (see the module docs).
#[derive(Debug)]
pub struct SkipIdentityVerifier {
    /// Ring's signature algorithms, whatever provider the process installed: this build
    /// never links aws-lc-rs, and the choice must not depend on global state.
    algorithms: WebPkiSupportedAlgorithms,
}

impl SkipIdentityVerifier {
    /// The verifier, ready to hand to tonic.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self {
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for SkipIdentityVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `name`.
    fn certificate(name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        cert.der().clone()
    }

    #[test]
    fn any_certificate_is_accepted_for_any_name() {
        let verifier = SkipIdentityVerifier::shared();
        let cert = certificate("scaler.example");
        for name in ["other.example", "127.0.0.1"] {
            let name = ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .expect("accepted");
        }
        // Not even a certificate: identity is not looked at all.
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let name = ServerName::try_from("x").unwrap();
        assert!(
            verifier
                .verify_server_cert(&junk, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
    }

    /// The signature checks themselves are exercised over real handshakes in
    /// `tests/scaler_tls_insecure.rs`, against a server that does not hold its certificate's key.
    #[test]
    fn offers_ring_signature_schemes() {
        let schemes = SkipIdentityVerifier::shared().supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
    }
}
