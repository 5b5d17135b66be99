//! The controller's scaler registry: which scaler a trigger `type` calls when the trigger
//! gives no address (KEDA's `type: rabbitmq`), from `--scaler TYPE=ADDRESS` flags and a
//! `--scaler-registry` YAML file (mounted from a ConfigMap).

use std::path::Path;

use serde::Deserialize;

use crate::runtime::prepare::ScalerRegistry;
use crate::spec::ScalerRef;

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A `--scaler` flag is not `TYPE=ADDRESS`.
    #[error("--scaler {0:?}: expected TYPE=ADDRESS, e.g. rabbitmq=127.0.0.1:9001")]
    Flag(String),
    /// The registry file could not be read.
    #[error("cannot read the scaler registry {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The registry file is not `scalers: {TYPE: {address, ...}}`.
    #[error("scaler registry {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The registry file: `scalers:` maps each trigger type to a scaler reference, the same
/// block a trigger's `scaler:` takes (address, protocol, push, timeout, tls).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    scalers: ScalerRegistry,
}

/// The registry from `file` (when given), then `flags` (a flag wins over the file).
pub fn build(flags: &[String], file: Option<&Path>) -> Result<ScalerRegistry, RegistryError> {
    let mut registry = match file {
        None => ScalerRegistry::new(),
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|error| RegistryError::Read {
                path: shown.clone(),
                message: error.to_string(),
            })?;
            serde_norway::from_str::<RegistryFile>(&text)
                .map_err(|error| RegistryError::Parse {
                    path: shown,
                    message: error.to_string(),
                })?
                .scalers
        }
    };
    for flag in flags {
        let (kind, address) = flag
            .split_once('=')
            .filter(|(kind, address)| !kind.trim().is_empty() && !address.trim().is_empty())
            .ok_or_else(|| RegistryError::Flag(flag.clone()))?;
        registry.insert(
            kind.trim().to_owned(),
            ScalerRef {
                address: address.trim().to_owned(),
                ..ScalerRef::default()
            },
        );
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file_make_one_registry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registry.yaml");
        std::fs::write(
            &file,
            "scalers:\n  rabbitmq: {address: 10.0.0.1:9001, timeout: 3s}\n  azure-queue: {address: 127.0.0.1:9002}\n",
        )
        .unwrap();
        let registry = build(&["rabbitmq=127.0.0.1:9001".into()], Some(&file)).unwrap();
        assert_eq!(
            registry["rabbitmq"].address, "127.0.0.1:9001",
            "a flag wins"
        );
        assert_eq!(registry["azure-queue"].address, "127.0.0.1:9002");
        assert!(build(&["rabbitmq".into()], None).is_err());
        assert!(build(&["=127.0.0.1:1".into()], None).is_err());
    }
}
