//! TLS and mutual TLS on the scaler's gRPC port, over real loopback connections.

mod common;

use std::sync::Arc;

use common::{QueueScaler, Source};
use ebb_scaler_sdk::proto::v1;
use ebb_scaler_sdk::{ServeOptions, TlsPem, serve};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf("localhost"),
        client: leaf("ebb-controller"),
    }
}

async fn start(tls: TlsPem) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let source = Arc::new(Source::default());
    source.set("q", 4.0, 0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        tls: Some(tls),
        ..Default::default()
    };
    tokio::spawn(serve(
        QueueScaler { source, push: None },
        listener,
        options,
        async {
            let _ = stopped.await;
        },
    ));
    (address, stop)
}

async fn call(address: std::net::SocketAddr, tls: ClientTlsConfig) -> Result<f64, String> {
    let channel = Channel::from_shared(format!("https://localhost:{}", address.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut client = v1::scaler_client::ScalerClient::new(channel);
    let request = v1::TriggerRequest {
        metadata: [("queueName".to_string(), "q".to_string())].into(),
        ..Default::default()
    };
    let reply = client
        .get_metrics(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(reply.into_inner().metric_values[0].value)
}

#[tokio::test]
async fn serves_over_tls() {
    let pki = pki();
    let (address, _stop) = start(TlsPem {
        cert: pki.server.0.clone(),
        key: pki.server.1.clone(),
        client_ca: None,
    })
    .await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    assert_eq!(call(address, tls).await.unwrap(), 4.0);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki();
    let (address, _stop) = start(TlsPem {
        cert: pki.server.0.clone(),
        key: pki.server.1.clone(),
        client_ca: Some(pki.ca.clone()),
    })
    .await;
    let with_identity = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .identity(Identity::from_pem(&pki.client.0, &pki.client.1))
        .domain_name("localhost");
    assert_eq!(call(address, with_identity).await.unwrap(), 4.0);

    let without_identity = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    assert!(
        call(address, without_identity).await.is_err(),
        "a client without a certificate got in"
    );
}
