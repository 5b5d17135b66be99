//! `ebb convert`: KEDA manifests rewritten as ebb's, with every change and every refusal
//! reported by file, object and field.
//!
//! - ScaledObject, ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication of
//!   `keda.sh/v1alpha1` become `ebb.dev/v1alpha1` ScaledObject, ScaledJob,
//!   ScalerAuthentication and ClusterScalerAuthentication ([`rules`]).
//! - Every converted document is then checked against ebb's own CRD schema ([`schema`]), so
//!   whatever ebb's kinds lack is refused by field (or dropped, when dropping it changes
//!   nothing), never silently written.
//! - Every other document (Secrets, Deployments, ebb's own kinds) is written back as it was.
//!
//! The conversion is pure ([`convert_text`]); [`run`] only reads files and writes results.

mod documents;
mod report;
mod rules;
mod schema;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use report::{Change, Place, Refusal};
pub use rules::BUNDLED_TYPES;

use documents::{Document, name_of, str_field};
use report::Findings;

/// Why `ebb convert` could not run (refusals are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An input file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A directory holds no `*.yaml` or `*.yml` file.
    #[error("{0}: no *.yaml or *.yml files in this directory")]
    EmptyDirectory(PathBuf),
    /// A document is not YAML.
    #[error("{file}: document {index}: not YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The document's position, from 0.
        index: usize,
        /// The parser's message.
        message: String,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The scaler registry given with `--scaler`/`--scaler-registry` is not usable.
    #[error(transparent)]
    Registry(#[from] crate::kubernetes::registry::RegistryError),
}

/// `ebb convert` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConvertArgs {
    /// KEDA manifests: YAML files, or directories whose `*.yaml` and `*.yml` files are read in
    /// name order (not recursively).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Write each converted file into this directory under its own file name instead of
    /// printing everything to stdout.
    #[arg(long, env = "EBB_CONVERT_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Exit with 0 even when some documents could not be converted (they are still reported
    /// on stderr and left out of the output).
    #[arg(long, env = "EBB_CONVERT_KEEP_GOING")]
    pub keep_going: bool,
    /// Trigger types with a scaler registered in the cluster, as the controller takes them
    /// (TYPE=ADDRESS; repeat or separate with commas). The bundled `rabbitmq` and
    /// `azure-queue` are always known.
    #[arg(long = "scaler", env = "EBB_SCALERS", value_delimiter = ',')]
    pub scalers: Vec<String>,
    /// The controller's scaler registry file (`scalers: {TYPE: {address, ...}}`).
    #[arg(long, env = "EBB_SCALER_REGISTRY")]
    pub scaler_registry: Option<PathBuf>,
}

/// One file, converted.
#[derive(Debug, Default)]
pub struct Converted {
    /// The output documents in input order, each ending with a newline; documents with a
    /// refusal are left out.
    pub documents: Vec<String>,
    /// Every rewrite made in the documents written.
    pub changes: Vec<Change>,
    /// Everything that could not be converted.
    pub refusals: Vec<Refusal>,
}

impl Converted {
    /// The output as one multi-document YAML text.
    pub fn yaml(&self) -> String {
        self.documents.join("---\n")
    }
}

/// Converts the documents of one file. `file` names it in reports; `known_types` are the
/// trigger types with a registered scaler.
pub fn convert_text(
    file: &str,
    text: &str,
    known_types: &BTreeSet<String>,
) -> Result<Converted, ConvertError> {
    let parsed = documents::parse(text).map_err(|(index, message)| ConvertError::Yaml {
        file: file.to_owned(),
        index,
        message,
    })?;
    let schemas = schema::schemas();
    let mut converted = Converted::default();
    for document in parsed {
        let keda_kind = str_field(&document.value, "kind")
            .unwrap_or_default()
            .to_owned();
        let place = Place {
            file: file.to_owned(),
            kind: keda_kind.clone(),
            name: name_of(&document),
        };
        let Some((value, findings)) =
            convert_document(&document, &keda_kind, known_types, &schemas)
        else {
            converted.documents.push(with_newline(document.text));
            continue;
        };
        // A refused document is not written, so its rewrites are not reported either.
        let refused = !findings.refusals.is_empty();
        if !refused {
            converted
                .changes
                .extend(findings.changes.into_iter().map(|(field, what)| Change {
                    place: place.clone(),
                    field,
                    what,
                }));
        }
        converted.refusals.extend(
            findings
                .refusals
                .into_iter()
                .map(|(field, reason)| Refusal {
                    place: place.clone(),
                    field,
                    reason,
                }),
        );
        if !refused {
            converted.documents.push(documents::render(&value));
        }
    }
    Ok(converted)
}

/// The converted value of a KEDA document with what was found, `None` for a document that
/// is not KEDA's (written back as it is).
fn convert_document(
    document: &Document,
    keda_kind: &str,
    known_types: &BTreeSet<String>,
    schemas: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Option<(serde_norway::Value, Findings)> {
    let api_version = str_field(&document.value, "apiVersion")?;
    if api_version.split('/').next() != Some("keda.sh") {
        return None;
    }
    let mut findings = Findings::default();
    let mut value = document.value.clone();
    if api_version != rules::KEDA_API_VERSION {
        findings.refuse(
            "apiVersion",
            format!(
                "only {} is known, not {api_version}",
                rules::KEDA_API_VERSION
            ),
        );
        return Some((value, findings));
    }
    let Some(ebb_kind) = rules::ebb_kind(keda_kind) else {
        findings.refuse(
            "kind",
            format!("ebb has no counterpart of KEDA's {keda_kind:?}"),
        );
        return Some((value, findings));
    };
    rules::rename_kind(&mut value, keda_kind, &mut findings);
    rules::drop_status(&mut value, &mut findings);
    rules::triggers(&mut value, known_types, &mut findings);
    if let Some(schema) = schemas.get(ebb_kind) {
        schema::check(&mut value, schema, ebb_kind, &mut findings);
    }
    Some((value, findings))
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The files a path stands for: the file itself, or a directory's `*.yaml` and `*.yml` files
/// in name order.
pub fn input_files(path: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    let read = |source| ConvertError::Read {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read)? {
        let file = entry.map_err(read)?.path();
        let yaml = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ConvertError::EmptyDirectory(path.to_path_buf()));
    }
    Ok(files)
}

/// The trigger types with a scaler: the bundled ones and the registry's.
pub fn known_types(args: &ConvertArgs) -> Result<BTreeSet<String>, ConvertError> {
    let registry =
        crate::kubernetes::registry::build(&args.scalers, args.scaler_registry.as_deref())?;
    Ok(BUNDLED_TYPES
        .iter()
        .map(|kind| (*kind).to_owned())
        .chain(registry.into_keys())
        .collect())
}

/// Runs `ebb convert`: converted YAML to stdout (or `--output`), changes and refusals to
/// stderr. `Ok(false)` when something was refused and `--keep-going` was not given.
pub fn run(args: ConvertArgs) -> Result<bool, ConvertError> {
    let known = known_types(&args)?;
    let mut files = Vec::new();
    for path in &args.paths {
        files.extend(input_files(path)?);
    }
    let mut outputs = Vec::new();
    let mut refused = false;
    let mut stderr = std::io::stderr().lock();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|source| ConvertError::Read {
            path: file.clone(),
            source,
        })?;
        let shown = file.display().to_string();
        let converted = convert_text(&shown, &text, &known)?;
        for change in &converted.changes {
            let _ = writeln!(
                stderr,
                "{}",
                crate::spec::terminal_safe(&change.to_string(), true)
            );
        }
        for refusal in &converted.refusals {
            let _ = writeln!(
                stderr,
                "{}",
                crate::spec::terminal_safe(&refusal.to_string(), true)
            );
        }
        refused |= !converted.refusals.is_empty();
        outputs.push((file, shown, converted));
    }
    match &args.output {
        Some(directory) => {
            let write = |path: &Path, result: std::io::Result<()>| {
                result.map_err(|source| ConvertError::Write {
                    path: path.to_path_buf(),
                    source,
                })
            };
            write(directory, std::fs::create_dir_all(directory))?;
            for (file, _, converted) in &outputs {
                let target = directory.join(file.file_name().unwrap_or(file.as_os_str()));
                write(&target, std::fs::write(&target, converted.yaml()))?;
            }
        }
        None => {
            let sections: Vec<String> = outputs
                .iter()
                .filter(|(_, _, converted)| !converted.documents.is_empty())
                .map(|(_, shown, converted)| format!("# Source: {shown}\n{}", converted.yaml()))
                .collect();
            print!("{}", sections.join("---\n"));
        }
    }
    Ok(!refused || args.keep_going)
}

#[cfg(test)]
mod tests;
