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
use std::path::{Component, Path, PathBuf};

pub use report::{Change, Place, Refusal};
pub use rules::BUNDLED_TYPES;

use crate::spec::load::{LoadError, read_manifest, split_documents};
use documents::{Document, name_of, str_field};
use report::Findings;

/// Why `ebb convert` could not run (refusals are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An input directory could not be read.
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
    /// A file cannot be read or split into documents (too large, nested too deep, not YAML),
    /// in the words `ebb run` uses.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `--output` is, or contains, an input: writing would overwrite it.
    #[error(
        "--output {output}: the output directory is or contains the input {input}; choose a \
         directory outside the inputs, so no input is overwritten"
    )]
    OutputHoldsInput {
        /// The output directory as given.
        output: PathBuf,
        /// The input it holds.
        input: PathBuf,
    },
    /// Two inputs would be written to the same output file.
    #[error(
        "--output: {first} and {second} have the same file name, so one output would overwrite \
         the other; convert them into different directories"
    )]
    SameFileName {
        /// The first input.
        first: PathBuf,
        /// The second.
        second: PathBuf,
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
    /// Exit with 0 even when some documents could not be converted, and write the files that
    /// hold them: each such document as it was written, under comments saying why it was not
    /// converted. Without it a file with such a document is not written at all.
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
    /// The output documents in input order, each ending with a newline. A document with a
    /// refusal is kept as it was written (comments included), under comments saying why.
    pub documents: Vec<String>,
    /// Every rewrite made in the converted documents.
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
/// trigger types with a registered scaler. The file is split, numbered and shape-checked as
/// `ebb run` reads it ([`split_documents`]).
pub fn convert_text(
    file: &str,
    text: &str,
    known_types: &BTreeSet<String>,
) -> Result<Converted, ConvertError> {
    let parsed = split_documents(Path::new(file), text)?;
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
        let Some((value, findings)) = convert_document(&document, &keda_kind, known_types) else {
            converted.documents.push(with_newline(document.text));
            continue;
        };
        if findings.refusals.is_empty() {
            converted.documents.push(documents::render(&value));
            converted
                .changes
                .extend(findings.changes.into_iter().map(|(field, what)| Change {
                    place: place.clone(),
                    field,
                    what,
                }));
            continue;
        }
        // A refused document is kept as written, so its rewrites are not reported either.
        converted
            .documents
            .push(kept_as_written(document.text, &findings.refusals));
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
    }
    Ok(converted)
}

/// A refused document as it was written, under one comment line per refusal.
fn kept_as_written(text: String, refusals: &[(String, String)]) -> String {
    let mut kept = String::from("# ebb convert: not converted, kept as written:\n");
    for (field, reason) in refusals {
        let line = format!("{field}: {reason}");
        kept.push_str(&format!(
            "#   {}\n",
            crate::spec::terminal_safe(&line, false)
        ));
    }
    kept.push_str(&with_newline(text));
    kept
}

/// The converted value of a KEDA document with what was found, `None` for a document that
/// is not KEDA's (written back as it is).
fn convert_document(
    document: &Document,
    keda_kind: &str,
    known_types: &BTreeSet<String>,
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
    rules::object_name(&value, &mut findings);
    rules::rename_kind(&mut value, keda_kind, &mut findings);
    rules::drop_status(&mut value, &mut findings);
    rules::triggers(&mut value, known_types, &mut findings);
    if let Some(schema) = schema::schemas().get(ebb_kind) {
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
/// stderr. `Ok(false)` when something was refused and `--keep-going` was not given. A file
/// with a refused document is written (or printed) only with `--keep-going`.
pub fn run(args: ConvertArgs) -> Result<bool, ConvertError> {
    let known = known_types(&args)?;
    let mut files = Vec::new();
    for path in &args.paths {
        files.extend(input_files(path)?);
    }
    if let Some(directory) = &args.output {
        check_output(directory, &args.paths, &files)?;
    }
    let mut outputs = Vec::new();
    let mut refused = false;
    let mut stderr = std::io::stderr().lock();
    for file in &files {
        let text = read_manifest(file)?;
        let shown = file.display().to_string();
        let converted = convert_text(&shown, &text, &known)?;
        for line in converted
            .changes
            .iter()
            .map(ToString::to_string)
            .chain(converted.refusals.iter().map(ToString::to_string))
        {
            let _ = writeln!(stderr, "{}", crate::spec::terminal_safe(&line, true));
        }
        refused |= !converted.refusals.is_empty();
        // Without --keep-going a file with a refusal is not written: nothing of it is lost.
        if converted.refusals.is_empty() || args.keep_going {
            outputs.push((file, shown, converted));
        }
    }
    match &args.output {
        Some(directory) => {
            std::fs::create_dir_all(directory).map_err(|source| ConvertError::Write {
                path: directory.clone(),
                source,
            })?;
            for (file, _, converted) in &outputs {
                let target = directory.join(file.file_name().unwrap_or(file.as_os_str()));
                write_atomically(&target, &converted.yaml())?;
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

/// Refuses an output directory that is, or contains, an input (its files would be
/// overwritten), and two inputs that would be written to the same file. Paths are compared
/// resolved, so `./in`, `in/../in` and symbolic links name the same directory.
fn check_output(output: &Path, paths: &[PathBuf], files: &[PathBuf]) -> Result<(), ConvertError> {
    let resolved_output = resolve(output);
    for input in paths.iter().chain(files) {
        if resolve(input).starts_with(&resolved_output) {
            return Err(ConvertError::OutputHoldsInput {
                output: output.to_path_buf(),
                input: input.clone(),
            });
        }
    }
    let mut names = std::collections::BTreeMap::new();
    for file in files {
        if let Some(first) = names.insert(file.file_name(), file) {
            return Err(ConvertError::SameFileName {
                first: first.clone(),
                second: file.clone(),
            });
        }
    }
    Ok(())
}

/// `path` made absolute with every symbolic link resolved, also when its last components do
/// not exist yet (a new output directory): the deepest existing ancestor is resolved and the
/// rest appended, `..` applied by name (a directory that does not exist holds no link).
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            let mut out = resolved;
            for component in rest.iter().rev() {
                match component {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Writes `text` to `target` through a temporary file in the same directory, renamed over
/// the target: a reader never sees half a file, and a failed write leaves the old one.
fn write_atomically(target: &Path, text: &str) -> Result<(), ConvertError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| ConvertError::Write {
        path: target.to_path_buf(),
        source,
    };
    let directory = target.parent().unwrap_or(Path::new("."));
    // 0666 before the umask, as a plain create would give.
    let mut temporary = tempfile::Builder::new()
        .prefix(".ebb-convert-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(directory)
        .map_err(failed)?;
    temporary.write_all(text.as_bytes()).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    temporary
        .persist(target)
        .map_err(|error| failed(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
