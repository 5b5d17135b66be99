//! The `ebb scaler` subcommands and the arguments they share.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::channel::{ChannelSettings, DEFAULT_CONNECT_TIMEOUT, TlsSettings};
use super::{ClientError, TriggerInput};

/// `ebb scaler ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScalerCommand {
    /// Detect a scaler's protocol and show its info, metric spec, current metrics, activity
    /// and latency, as a host would see them. Works with KEDA external scalers too.
    Check(TargetArgs),
    /// Run protocol conformance checks against a scaler (any language) and print PASS/FAIL
    /// per check; exits non-zero when a check fails.
    Conformance(ConformanceArgs),
}

/// Which scaler to call and the trigger to call it with.
#[derive(Args)]
pub struct TargetArgs {
    /// Scaler address: `host:port`, or an `http://` / `https://` URI.
    #[arg(env = "EBB_SCALER_ADDRESS")]
    pub address: String,
    /// Trigger metadata as `key=value`; repeat for more keys.
    #[arg(short = 'm', long = "metadata", value_name = "KEY=VALUE", value_parser = parse_pair, env = "EBB_SCALER_METADATA")]
    pub metadata: Vec<(String, String)>,
    /// A resolved secret as `key=value`, sent as a credential; never printed. Repeatable.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = parse_pair, env = "EBB_SCALER_SECRET")]
    pub secrets: Vec<(String, String)>,
    /// Namespace of the (pretend) scaled object.
    #[arg(long, default_value = "default", env = "EBB_SCALER_NAMESPACE")]
    pub namespace: String,
    /// Name of the (pretend) scaled object.
    #[arg(long, default_value = "ebb-check", env = "EBB_SCALER_OBJECT")]
    pub name: String,
    /// Name of the trigger within the object.
    #[arg(long, default_value = "trigger-0", env = "EBB_SCALER_TRIGGER")]
    pub trigger: String,
    /// Deadline of every call, e.g. `2s` or `500ms`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, env = "EBB_SCALER_TIMEOUT")]
    pub timeout: Duration,
    /// Connect with TLS (implied by the other TLS flags and an `https://` address).
    #[arg(long, env = "EBB_SCALER_TLS")]
    pub tls: bool,
    /// PEM file with the CA certificate that signs the scaler's certificate.
    #[arg(long, value_name = "FILE", env = "EBB_SCALER_CA_FILE")]
    pub ca_file: Option<String>,
    /// PEM file with the client certificate, for mutual TLS.
    #[arg(long, value_name = "FILE", env = "EBB_SCALER_CERT_FILE")]
    pub cert_file: Option<String>,
    /// PEM file with the client private key, for mutual TLS.
    #[arg(long, value_name = "FILE", env = "EBB_SCALER_KEY_FILE")]
    pub key_file: Option<String>,
    /// Name to verify the scaler's certificate against, if not the address host.
    #[arg(long, env = "EBB_SCALER_SERVER_NAME")]
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TargetArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secret values must never reach logs; their keys are enough to debug with.
        let secret_keys: Vec<&str> = self.secrets.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("TargetArgs")
            .field("address", &self.address)
            .field("metadata", &self.metadata)
            .field("secret_keys", &secret_keys)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// Arguments of `ebb scaler conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The scaler and trigger to test; the metadata must describe a working trigger.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Relative tolerance when comparing values read over two protocols (the source may
    /// change between the reads).
    #[arg(long, default_value_t = 0.05, env = "EBB_SCALER_TOLERANCE")]
    pub tolerance: f64,
    /// How many GetMetrics calls to send at once in the concurrency check.
    #[arg(long, default_value_t = 16, env = "EBB_SCALER_CONCURRENCY")]
    pub concurrency: usize,
}

/// Parses `key=value` (the value may contain `=`).
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err("expected KEY=VALUE with a non-empty key".into()),
    }
}

impl TargetArgs {
    /// The trigger the arguments describe.
    pub fn trigger_input(&self) -> TriggerInput {
        TriggerInput {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            trigger_name: self.trigger.clone(),
            trigger_index: 0,
            metadata: self.metadata.iter().cloned().collect(),
            secrets: self.secrets.iter().cloned().collect(),
        }
    }

    /// Channel settings from the address and TLS flags, reading the PEM files.
    pub fn channel_settings(&self) -> Result<ChannelSettings, ClientError> {
        let wants_tls = self.tls
            || self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.server_name.is_some()
            || self.address.starts_with("https://");
        let tls = if wants_tls {
            Some(TlsSettings {
                ca_pem: read_optional(self.ca_file.as_deref())?,
                client_cert_pem: read_optional(self.cert_file.as_deref())?,
                client_key_pem: read_optional(self.key_file.as_deref())?,
                server_name: self.server_name.clone(),
                insecure_skip_verify: false,
            })
        } else {
            None
        };
        Ok(ChannelSettings {
            address: self.address.clone(),
            tls,
            connect_timeout: self.timeout.max(DEFAULT_CONNECT_TIMEOUT),
        })
    }
}

fn read_optional(path: Option<&str>) -> Result<Option<String>, ClientError> {
    path.map(|path| {
        std::fs::read_to_string(path).map_err(|source| ClientError::ReadFile {
            path: path.to_owned(),
            source,
        })
    })
    .transpose()
}

/// Runs a scaler subcommand; `Ok(false)` means checks ran and some failed.
pub async fn run_scaler_command(command: ScalerCommand) -> Result<bool, ClientError> {
    match command {
        ScalerCommand::Check(args) => super::check::run(&args).await,
        ScalerCommand::Conformance(args) => super::conformance::run(&args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(parse_pair("url=a=b").unwrap(), ("url".into(), "a=b".into()));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=x").is_err());
    }

    #[test]
    fn debug_hides_secret_values() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            target: TargetArgs,
        }
        let wrapper = Wrapper::parse_from(["x", "127.0.0.1:1", "--secret", "password=hunter2"]);
        let shown = format!("{:?}", wrapper.target);
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
