//! `insecureSkipVerify` over real TLS on loopback: a scaler with a self-signed certificate for
//! another name is refused when verifying and reached when skipping; a client identity is still
//! presented to a scaler that requires one; and a server that shows a certificate without
//! holding its key cannot finish the handshake, because signatures are still checked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ebb::client::{ChannelSettings, ClientError, Protocol, ScalerClient, TlsSettings, channel};
use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{
    Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, ServeOptions, TlsPem, Trigger,
    serve,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Trigger metadata of [`FixedScaler`]: none.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
struct NoConfig {}

/// A scaler that always reads 7.
struct FixedScaler;

impl Scaler for FixedScaler {
    type Config = NoConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "fixed".into(),
            version: "0.0.1".into(),
            description: "Always 7".into(),
        }
    }

    fn metric_specs(&self, _trigger: &Trigger<NoConfig>) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: "fixed".into(),
            target: 1.0,
            activation_target: 0.0,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(&self, _trigger: &Trigger<NoConfig>) -> Result<Measurement, ScalerError> {
        Ok(Measurement::single("fixed", 7.0))
    }

    fn source_key(&self, _trigger: &Trigger<NoConfig>) -> String {
        "fixed".into()
    }
}

/// A certificate and its key, as PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A self-signed server certificate for a name the client never dials.
fn self_signed_server() -> Pem {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["scaler.invalid".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A client CA and a client certificate it signed.
fn client_pki() -> (String, Pem) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["ebb-controller".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca.pem(),
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
    )
}

/// Serves [`FixedScaler`] over TLS on `127.0.0.1:0` until the sender is dropped.
async fn start_scaler(
    server: &Pem,
    client_ca: Option<String>,
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions {
        tls: Some(TlsPem {
            cert: server.cert.clone(),
            key: server.key.clone(),
            client_ca,
        }),
        ..Default::default()
    };
    tokio::spawn(serve(FixedScaler, listener, options, async {
        let _ = stopped.await;
    }));
    (address, stop)
}

fn settings(address: SocketAddr, tls: TlsSettings) -> ChannelSettings {
    ChannelSettings {
        tls: Some(tls),
        ..ChannelSettings::plain(address.to_string())
    }
}

fn skip_verify() -> TlsSettings {
    TlsSettings {
        insecure_skip_verify: true,
        ..TlsSettings::default()
    }
}

/// The `Connect` reason of a failed connection.
async fn connect_failure(settings: &ChannelSettings) -> String {
    match channel::connect(settings).await {
        Ok(_) => panic!("connected to {}", settings.address),
        Err(ClientError::Connect { reason, .. }) => reason,
        Err(other) => panic!("expected a connection failure, got {other:?}"),
    }
}

#[tokio::test]
async fn verifying_refuses_a_self_signed_scaler() {
    let server = self_signed_server();
    let (address, _stop) = start_scaler(&server, None).await;
    let reason = connect_failure(&settings(address, TlsSettings::default())).await;
    assert!(reason.contains("invalid peer certificate"), "{reason}");
}

#[tokio::test]
async fn skipping_verification_reaches_a_self_signed_scaler() {
    let server = self_signed_server();
    let (address, _stop) = start_scaler(&server, None).await;
    let settings = settings(address, skip_verify());

    let client = ScalerClient::new(channel::connect(&settings).await.expect("connect"));
    let info = client.info(TIMEOUT).await.expect("GetInfo");
    assert_eq!(info.protocol, Protocol::V1);
    assert_eq!(info.name, "fixed");

    // The pool's path: connects on first use.
    let lazy = ScalerClient::new(channel::connect_lazy(&settings).expect("lazy channel"));
    let info = lazy.info(TIMEOUT).await.expect("GetInfo");
    assert_eq!(info.name, "fixed");
}

#[tokio::test]
async fn skipping_verification_still_presents_the_client_identity() {
    let server = self_signed_server();
    let (client_ca, client) = client_pki();
    let (address, _stop) = start_scaler(&server, Some(client_ca)).await;

    let with_identity = settings(
        address,
        TlsSettings {
            client_cert_pem: Some(client.cert.clone()),
            client_key_pem: Some(client.key.clone()),
            ..skip_verify()
        },
    );
    let client = ScalerClient::new(channel::connect(&with_identity).await.expect("connect"));
    let info = client
        .info(TIMEOUT)
        .await
        .expect("GetInfo with a client certificate");
    assert_eq!(info.name, "fixed");

    // Without one, the scaler turns the client away: the identity above is what let it in.
    let anonymous = settings(address, skip_verify());
    // With TLS 1.3 the server judges the client after the client's handshake is done, so the
    // refusal may only show on the first call.
    if let Ok(connected) = channel::connect(&anonymous).await {
        let client = ScalerClient::new(connected);
        if let Ok(info) = client.info(TIMEOUT).await {
            panic!("a client without a certificate got in: {info:?}");
        }
    }
}

/// Hands out a fixed certificate and signing key, even ones that do not belong together.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A bare TLS server on `127.0.0.1:0` that presents `cert` and signs with `signing_key`, then
/// holds each connection open without speaking HTTP/2.
async fn start_raw_tls(cert: &Pem, signing_key: &Pem) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        vec![CertificateDer::from_pem_slice(cert.cert.as_bytes()).unwrap()];
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::from_pem_slice(signing_key.key.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(CertifiedKey::new(chain, key)))));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut sink = Vec::new();
                    let _ = tls.read_to_end(&mut sink).await;
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn skipping_verification_still_checks_handshake_signatures() {
    let server = self_signed_server();
    let impostor = self_signed_server();

    // Control: the same bare server with the certificate's own key completes the handshake.
    let honest = start_raw_tls(&server, &server).await;
    channel::connect(&settings(honest, skip_verify()))
        .await
        .expect("handshake with a server holding its key");

    // Showing the certificate while signing with another key must fail.
    let forged = start_raw_tls(&server, &impostor).await;
    let reason = connect_failure(&settings(forged, skip_verify())).await;
    assert!(reason.contains("BadSignature"), "{reason}");
}
