//! TLS material for the channel to a scaler, gathered from every form it may take: the
//! `scaler.tls` block (Secret references, files), KEDA's metadata keys (inline, `FromEnv`,
//! `FromFile`) and `authenticationRef` parameters. Whatever the form, it ends up in the
//! channel's settings and nowhere else.

use super::{Context, Problem};
use crate::client::TlsSettings as ChannelTls;
use crate::spec::{PemSource, TlsSettings};

/// The three pieces of TLS material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsPart {
    /// CA bundle that signs the scaler's certificate.
    Ca,
    /// Client certificate (mutual TLS).
    ClientCert,
    /// Client private key (mutual TLS).
    ClientKey,
}

impl TlsPart {
    /// The part a metadata or authentication parameter names, if it names one. KEDA's
    /// spellings; `tlsCertFile` is its older name for the client certificate.
    pub(super) fn of_parameter(parameter: &str) -> Option<Self> {
        match parameter {
            "caCert" => Some(Self::Ca),
            "tlsClientCert" | "tlsCertFile" => Some(Self::ClientCert),
            "tlsClientKey" => Some(Self::ClientKey),
            _ => None,
        }
    }
}

/// Material found so far, each piece with the field it came from (for "given twice").
#[derive(Default)]
pub(super) struct Material {
    ca: Option<(String, String)>,
    client_cert: Option<(String, String)>,
    client_key: Option<(String, String)>,
}

impl Material {
    /// Records `part`; a second source of the same part is a problem naming both fields.
    pub(super) fn set(&mut self, part: TlsPart, pem: String, field: &str) -> Result<(), Problem> {
        let slot = match part {
            TlsPart::Ca => &mut self.ca,
            TlsPart::ClientCert => &mut self.client_cert,
            TlsPart::ClientKey => &mut self.client_key,
        };
        if let Some((_, first)) = slot {
            return Err(Problem::new(
                field,
                "InvalidTriggerField",
                format!("the same TLS material is also given by {first}; give it once"),
            ));
        }
        *slot = Some((pem, field.to_owned()));
        Ok(())
    }

    /// Reads the `scaler.tls` block's sources through the host's lookups.
    pub(super) async fn add_pem_sources(
        &mut self,
        context: &Context<'_>,
        tls: &TlsSettings,
        field: &str,
    ) -> Result<(), Problem> {
        let parts = [
            (TlsPart::Ca, &tls.ca, "ca"),
            (TlsPart::ClientCert, &tls.client_cert, "clientCert"),
            (TlsPart::ClientKey, &tls.client_key, "clientKey"),
        ];
        for (part, source, name) in parts {
            let (pem, field) = match source {
                None => continue,
                Some(PemSource::Inline(text)) => (text.clone(), format!("{field}.{name}")),
                Some(PemSource::Secret(secret)) => {
                    let field = if part == TlsPart::Ca {
                        format!("{field}.caSecretRef")
                    } else {
                        format!("{field}.clientCertSecretRef")
                    };
                    let key = secret.key.as_deref().unwrap_or("ca.crt");
                    let pem = context
                        .secret_text(context.namespace, &secret.name, key, &field)
                        .await?;
                    (pem, field)
                }
                Some(PemSource::File(path)) => {
                    let field = match part {
                        TlsPart::Ca => format!("{field}.caFile"),
                        TlsPart::ClientCert => format!("{field}.certFile"),
                        TlsPart::ClientKey => format!("{field}.keyFile"),
                    };
                    let pem = context.file_text(path, &field).await?;
                    (pem, field)
                }
            };
            self.set(part, pem, &field)?;
        }
        Ok(())
    }

    /// The channel's TLS settings: `flags` (server name, skip-verify) from the trigger's TLS
    /// block when it has one, the material found anywhere. Material without a block turns TLS
    /// on, with `insecure_default` (KEDA's `unsafeSsl`) as the verification flag.
    pub(super) fn into_settings(
        self,
        flags: Option<&TlsSettings>,
        insecure_default: bool,
    ) -> Result<Option<ChannelTls>, Problem> {
        let empty = self.ca.is_none() && self.client_cert.is_none() && self.client_key.is_none();
        if empty && flags.is_none() {
            return Ok(None);
        }
        match (&self.client_cert, &self.client_key) {
            (Some((_, field)), None) => {
                return Err(Problem::new(
                    field,
                    "InvalidTriggerField",
                    "a client certificate needs its private key (tlsClientKey)",
                ));
            }
            (None, Some((_, field))) => {
                return Err(Problem::new(
                    field,
                    "InvalidTriggerField",
                    "a client private key needs its certificate (tlsClientCert)",
                ));
            }
            _ => {}
        }
        Ok(Some(ChannelTls {
            ca_pem: self.ca.map(|(pem, _)| pem),
            client_cert_pem: self.client_cert.map(|(pem, _)| pem),
            client_key_pem: self.client_key.map(|(pem, _)| pem),
            server_name: flags.and_then(|flags| flags.server_name.clone()),
            insecure_skip_verify: flags
                .map_or(insecure_default, |flags| flags.insecure_skip_verify),
        }))
    }
}
