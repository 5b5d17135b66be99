//! Building a tonic [`Channel`] to a scaler from an address and TLS settings. The connection
//! pool keys its channels by [`ChannelSettings`] (which is `Eq + Hash`), so one connection is
//! shared by every trigger that names the same scaler with the same TLS material.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::ClientError;
use crate::insecure_tls::SkipIdentityVerifier;

/// How long to wait for a TCP (and TLS) connection before giving up, unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest header list ebb accepts from a scaler, a call's trailers (and so its status
/// message) included: gRPC-Go's default, so KEDA and ebb take the same answers. With hyper's
/// own limit, 16 KiB, h2 took a header list over 64 KiB (four times the limit) for an attack
/// and closed the whole connection: one trigger's long error message failed every trigger
/// sharing the scaler with `ResourceExhausted`. Now a message up to 16 MiB arrives whole and
/// fails its own call only (what is kept of it is cut to 1 KiB), one up to 64 MiB fails its
/// own stream with a protocol error, and only a larger one still closes the connection.
/// Measured with a healthy trigger beside one answering 3, 17, 22 and 70 MB errors
/// (`tests/runtime_poll.rs` keeps the 3 MB case).
pub const MAX_HEADER_LIST_BYTES: u32 = 16 << 20;

/// Where a scaler listens and how to reach it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ChannelSettings {
    /// `host:port`, or a full `http://` / `https://` URI. A bare `host:port` gets `https://`
    /// when [`ChannelSettings::tls`] is set and `http://` otherwise.
    pub address: String,
    /// TLS material; `None` means plain HTTP/2 (typical for a sidecar on 127.0.0.1).
    pub tls: Option<TlsSettings>,
    /// Limit on establishing the connection.
    pub connect_timeout: Duration,
}

impl ChannelSettings {
    /// Plain-text settings for `address` with the default connect timeout.
    pub fn plain(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// TLS material for a scaler connection, as PEM text (KEDA's `caCert`, `tlsClientCert`,
/// `tlsClientKey` carry PEM text too).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// CA certificate(s) that sign the scaler's certificate; `None` uses the roots built in.
    pub ca_pem: Option<String>,
    /// Client certificate chain for mutual TLS.
    pub client_cert_pem: Option<String>,
    /// Client private key for mutual TLS (a secret: never shown by `Debug`).
    pub client_key_pem: Option<String>,
    /// Name to verify the scaler's certificate against, when it differs from the address host.
    pub server_name: Option<String>,
    /// Skip verifying the scaler's identity (KEDA's `unsafeSsl`): any certificate is accepted
    /// for any name, and [`TlsSettings::ca_pem`] and [`TlsSettings::server_name`] are not
    /// checked against it (the name is still sent as SNI). The connection is still TLS with
    /// the handshake signatures checked, and a client identity is still presented. Each
    /// endpoint built this way logs a warning naming the address.
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "***"),
            )
            .field("server_name", &self.server_name)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// The endpoint URI for an address: keeps an explicit scheme, else adds one by TLS.
fn endpoint_uri(address: &str, tls: bool) -> String {
    if address.starts_with("http://") || address.starts_with("https://") {
        address.to_owned()
    } else if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    }
}

/// Builds the endpoint for `settings` without connecting.
pub fn endpoint(settings: &ChannelSettings) -> Result<Endpoint, ClientError> {
    let address = settings.address.trim();
    if address.is_empty() {
        return Err(ClientError::InvalidAddress {
            address: settings.address.clone(),
            reason: "the address is empty".into(),
        });
    }
    if settings.tls.is_some() && address.starts_with("http://") {
        // Connecting in plain text when TLS was asked for would send secrets in the clear.
        return Err(ClientError::InvalidAddress {
            address: settings.address.clone(),
            reason: "TLS settings are given but the address says http://; use https:// or \
                     a bare host:port"
                .into(),
        });
    }
    let uri = endpoint_uri(address, settings.tls.is_some());
    let endpoint = Endpoint::from_shared(uri).map_err(|error| ClientError::InvalidAddress {
        address: settings.address.clone(),
        reason: error.to_string(),
    })?;
    let endpoint = endpoint
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES);
    let Some(tls) = &settings.tls else {
        return Ok(endpoint);
    };
    let config = client_tls_config(tls)?;
    // A custom verifier goes through tonic's own TLS connector, so every user of the endpoint
    // (the pool's single and balanced channels, `connect`, `connect_lazy`) gets it, with
    // tonic's connect timeout, SNI, ALPN and client identity handling unchanged.
    let endpoint = if tls.insecure_skip_verify {
        endpoint.tls_config_with_verifier(config, SkipIdentityVerifier::shared())
    } else {
        endpoint.tls_config(config)
    }
    .map_err(|error| ClientError::InvalidTls(transport_reason(&error)))?;
    if tls.insecure_skip_verify {
        tracing::warn!(
            address = %settings.address,
            "TLS certificate verification is skipped for this scaler (insecureSkipVerify): \
             any certificate is accepted for any name"
        );
    }
    Ok(endpoint)
}

fn client_tls_config(tls: &TlsSettings) -> Result<ClientTlsConfig, ClientError> {
    let mut config = ClientTlsConfig::new();
    // tonic refuses roots next to a custom verifier; skipping verification ignores the CA.
    if !tls.insecure_skip_verify {
        config = match &tls.ca_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_enabled_roots(),
        };
    }
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => {
            return Err(ClientError::InvalidTls(
                "a client certificate and a client key must be given together".into(),
            ));
        }
    }
    if let Some(name) = &tls.server_name {
        config = config.domain_name(name.clone());
    }
    Ok(config)
}

/// A channel that connects on first use and reconnects by itself; what a pool wants.
pub fn connect_lazy(settings: &ChannelSettings) -> Result<Channel, ClientError> {
    Ok(endpoint(settings)?.connect_lazy())
}

/// A channel connected now, so an unreachable scaler is reported at once (what the CLI wants).
pub async fn connect(settings: &ChannelSettings) -> Result<Channel, ClientError> {
    endpoint(settings)?
        .connect()
        .await
        .map_err(|error| ClientError::Connect {
            address: settings.address.clone(),
            reason: transport_reason(&error),
        })
}

/// A transport error with its causes, which tonic keeps in the source chain.
fn transport_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_address_gets_scheme_by_tls() {
        assert_eq!(
            endpoint_uri("127.0.0.1:9000", false),
            "http://127.0.0.1:9000"
        );
        assert_eq!(endpoint_uri("scaler:9000", true), "https://scaler:9000");
        assert_eq!(endpoint_uri("http://x:1", true), "http://x:1");
    }

    #[test]
    fn tls_with_an_http_address_is_refused_not_sent_in_clear() {
        let settings = ChannelSettings {
            tls: Some(TlsSettings::default()),
            ..ChannelSettings::plain("http://scaler:9000")
        };
        let error = endpoint(&settings).unwrap_err();
        assert!(
            matches!(error, ClientError::InvalidAddress { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("http://"), "{error}");
    }

    #[test]
    fn empty_address_is_rejected() {
        let error = endpoint(&ChannelSettings::plain(" ")).unwrap_err();
        assert!(matches!(error, ClientError::InvalidAddress { .. }));
    }

    #[test]
    fn half_a_client_identity_is_rejected() {
        let settings = ChannelSettings {
            tls: Some(TlsSettings {
                client_cert_pem: Some("cert".into()),
                ..TlsSettings::default()
            }),
            ..ChannelSettings::plain("scaler:9000")
        };
        let error = endpoint(&settings).unwrap_err();
        assert!(error.to_string().contains("together"), "{error}");
    }

    fn insecure(tls: TlsSettings) -> ChannelSettings {
        ChannelSettings {
            tls: Some(TlsSettings {
                insecure_skip_verify: true,
                ..tls
            }),
            ..ChannelSettings::plain("scaler.shop.svc:9000")
        }
    }

    #[test]
    fn skipping_verification_builds_an_https_endpoint() {
        let endpoint = endpoint(&insecure(TlsSettings::default())).expect("endpoint");
        assert_eq!(endpoint.uri().scheme_str(), Some("https"));
        // A CA given alongside is ignored rather than clashing with the verifier.
        let with_ca = insecure(TlsSettings {
            ca_pem: Some("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into()),
            server_name: Some("scaler.internal".into()),
            ..TlsSettings::default()
        });
        endpoint_of(&with_ca);
    }

    fn endpoint_of(settings: &ChannelSettings) {
        if let Err(error) = endpoint(settings) {
            panic!("endpoint refused: {error}");
        }
    }

    #[test]
    fn skipping_verification_still_checks_the_client_identity() {
        let half = insecure(TlsSettings {
            client_key_pem: Some("key".into()),
            ..TlsSettings::default()
        });
        let error = endpoint(&half).unwrap_err();
        assert!(error.to_string().contains("together"), "{error}");

        let unreadable = insecure(TlsSettings {
            client_cert_pem: Some("not a certificate".into()),
            client_key_pem: Some("not a key".into()),
            ..TlsSettings::default()
        });
        let error = endpoint(&unreadable).unwrap_err();
        assert!(matches!(error, ClientError::InvalidTls(_)), "{error:?}");
    }

    /// Log lines written by the code under test, for one thread.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn skipping_verification_warns_once_without_secrets() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let settings = insecure(TlsSettings {
            client_cert_pem: Some("CLIENT-CERT-PEM".into()),
            client_key_pem: Some("TOP-SECRET-KEY".into()),
            ..TlsSettings::default()
        });
        tracing::subscriber::with_default(subscriber, || {
            // The PEM is junk, so building fails; the warning must not come before that.
            assert!(endpoint(&settings).is_err());
            endpoint_of(&insecure(TlsSettings::default()));
            endpoint_of(&ChannelSettings {
                tls: Some(TlsSettings::default()),
                ..ChannelSettings::plain("verified.shop.svc:9000")
            });
        });
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|line| line.contains("verification is skipped"))
            .collect();
        assert_eq!(warnings.len(), 1, "{logs}");
        assert!(warnings[0].contains("WARN"), "{logs}");
        assert!(warnings[0].contains("scaler.shop.svc:9000"), "{logs}");
        assert!(!logs.contains("TOP-SECRET-KEY") && !logs.contains("CLIENT-CERT-PEM"));
    }

    #[test]
    fn debug_never_shows_the_client_key() {
        let tls = TlsSettings {
            client_key_pem: Some("TOP-SECRET-KEY".into()),
            ..TlsSettings::default()
        };
        assert!(!format!("{tls:?}").contains("TOP-SECRET-KEY"));
    }
}
