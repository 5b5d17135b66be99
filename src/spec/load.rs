//! Loading objects from multi-document YAML files or directories of them.
//!
//! [`load_path`] returns every document with its kind and name; callers pick the kinds they
//! know with [`Document::parse`] (e.g. `ebb run` adds its own `ProcessGroup`), or use
//! [`Document::scaled_object`] for ScaledObjects.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::scaled_object::ScaledObject;
use super::validate::ValidationProblem;

/// Why objects could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A document is not valid YAML, or lacks `kind`.
    #[error("{path} (document {index}, line {line}): {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Position of the document in the file, from 1.
        index: usize,
        /// Line in the file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A document does not match its kind's schema.
    #[error("{path}: {kind} {name:?} (line {line}): {message}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// Line in the file, where known.
        line: usize,
        /// What is wrong, starting with the field path.
        message: String,
    },
    /// A ScaledObject failed validation.
    #[error("{path}: ScaledObject {name:?}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The object's name.
        name: String,
        /// Every problem found.
        problems: Vec<ValidationProblem>,
    },
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub path: PathBuf,
    /// Position in the file, from 1.
    pub index: usize,
    /// Line of the document's first line in the file, from 1.
    pub first_line: usize,
    /// `apiVersion` ("" when absent).
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name` ("" when absent).
    pub name: String,
    /// The document's text.
    pub text: String,
}

impl Document {
    /// Parses the document as `T`; errors name file, object, field and line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, LoadError> {
        serde_norway::from_str(&self.text).map_err(|error| {
            let line = error
                .location()
                .map(|location| self.first_line + location.line().saturating_sub(1))
                .unwrap_or(self.first_line);
            let mut message = error.to_string();
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            LoadError::Schema {
                path: self.path.clone(),
                kind: self.kind.clone(),
                name: self.name.clone(),
                line,
                message,
            }
        })
    }

    /// Parses the document as `T` and refuses fields `T` does not know, each named with its
    /// path and, when one of `known` is close, a "did you mean" hint. A typo such as
    /// `minReplicas` must not silently leave the default in force.
    pub fn parse_strict<T: DeserializeOwned>(&self, known: &[String]) -> Result<T, LoadError> {
        let mut unknown = Vec::new();
        let deserializer = serde_norway::Deserializer::from_str(&self.text);
        let parsed: Result<T, _> = serde_ignored::deserialize(deserializer, |path| {
            let path = field_path(&path.to_string());
            // The derived resource type takes apiVersion and kind by hand; they are known.
            if path != "apiVersion" && path != "kind" {
                unknown.push(path);
            }
        });
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(_) => return self.parse(),
        };
        if unknown.is_empty() {
            return Ok(parsed);
        }
        let message = unknown
            .iter()
            .map(|path| {
                let field = path.rsplit('.').next().unwrap_or(path);
                let hint = known
                    .iter()
                    .map(|name| (strsim::jaro_winkler(field, name), name))
                    .filter(|(score, _)| *score > 0.85)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, name)| format!("; did you mean `{name}`?"))
                    .unwrap_or_default();
                format!("{path}: unknown field{hint}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(LoadError::Schema {
            path: self.path.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            line: self.first_line,
            message,
        })
    }

    /// Parses and validates a ScaledObject (spec and pause annotations).
    pub fn scaled_object(&self) -> Result<ScaledObject, LoadError> {
        let object: ScaledObject = self.parse()?;
        let problems = object.validate();
        if problems.is_empty() {
            Ok(object)
        } else {
            Err(LoadError::Invalid {
                path: self.path.clone(),
                name: self.name.clone(),
                problems,
            })
        }
    }
}

/// A serde_ignored path (`spec.triggers.0.scaler.?.adress`) written as a field path
/// (`spec.triggers[0].scaler.adress`).
fn field_path(raw: &str) -> String {
    let mut path = String::new();
    for segment in raw.split('.').filter(|segment| *segment != "?") {
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    path
}

/// Loads every document of a file, or of every `.yaml`/`.yml` file in a directory (sorted by
/// name, not recursive). Empty documents are skipped.
pub fn load_path(path: &Path) -> Result<Vec<Document>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_dir() {
        let text = read_manifest(path)?;
        return parse_documents(path, &text);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry_path = entry.map_err(read_error)?.path();
        let is_yaml = entry_path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if is_yaml && entry_path.is_file() {
            files.push(entry_path);
        }
    }
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let text = read_manifest(&file)?;
        documents.extend(parse_documents(&file, &text)?);
    }
    Ok(documents)
}

/// Reads a manifest file as text, refusing one larger than [`MAX_FILE_BYTES`] before reading
/// it (by its size) or while reading it (a pipe or a growing file has no size to trust): at
/// most one byte more than the limit is ever read.
pub fn read_manifest(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    if file.metadata().map_err(read_error)?.len() > MAX_FILE_BYTES as u64 {
        return Err(too_large(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    String::from_utf8(bytes).map_err(|_| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not UTF-8 text",
        ))
    })
}

fn too_large(path: &Path) -> LoadError {
    LoadError::Syntax {
        path: path.to_owned(),
        index: 1,
        line: 1,
        message: format!("the file is larger than {MAX_FILE_BYTES} bytes"),
    }
}

/// Loads every ScaledObject from a file or directory, skipping other kinds.
pub fn load_scaled_objects(path: &Path) -> Result<Vec<ScaledObject>, LoadError> {
    load_path(path)?
        .iter()
        .filter(|document| document.kind == "ScaledObject")
        .map(Document::scaled_object)
        .collect()
}

/// Largest YAML file read: manifests are small, and a parser given megabytes of hostile text
/// spends its time for nothing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting accepted (flow brackets, or block indentation levels). ScaledObjects nest
/// about ten levels deep; the YAML parser's time grows with the square of the depth.
pub const MAX_DEPTH: usize = 64;

/// Refuses text too large or too deeply nested, in one linear pass before any parsing.
fn check_shape(path: &Path, text: &str) -> Result<(), LoadError> {
    let refuse = |line: usize, message: String| LoadError::Syntax {
        path: path.to_owned(),
        index: 1,
        line,
        message,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(path));
    }
    // Flow collections may span lines, so the bracket depth carries over; quotes rarely do.
    // The scan stops at the first bracket too deep, so hostile nesting costs nothing more.
    let too_deep = |number: usize| {
        Err(refuse(
            number + 1,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ))
    };
    let mut depth = 0usize;
    for (number, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(open), c) if c == open => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return too_deep(number);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent > 2 * MAX_DEPTH {
            return too_deep(number);
        }
    }
    Ok(())
}

/// One document of a YAML stream, before its kind is looked at: what `ebb run` and
/// `ebb convert` both split a file into, numbered the same way.
#[derive(Debug, Clone)]
pub struct RawDocument {
    /// Position among the file's non-empty documents, from 1.
    pub index: usize,
    /// Line of the document's first line in the file, from 1.
    pub first_line: usize,
    /// The document's text as written (comments included), without its `---` line.
    pub text: String,
    /// The parsed document.
    pub value: serde_norway::Value,
}

/// A `---` line starts a document; `--- ` (or `---` and a tab) may carry content after it.
fn separator_rest(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let rest = line.strip_prefix("---")?;
    if rest.is_empty() {
        Some(rest)
    } else if rest.starts_with([' ', '\t']) {
        Some(rest.trim_start())
    } else {
        None
    }
}

/// Splits YAML text into its non-empty documents on `---` lines, after the shape check
/// (size, nesting) and without a leading byte order mark, which YAML allows. Each document
/// keeps its text exactly as written; documents holding only comments are skipped.
pub fn split_documents(path: &Path, text: &str) -> Result<Vec<RawDocument>, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_shape(path, text)?;
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (number, line) in text.split_inclusive('\n').enumerate() {
        match separator_rest(line) {
            // The content after `--- ` is on the separator's own line.
            Some(rest) if !rest.is_empty() => chunks.push((number + 1, format!("{rest}\n"))),
            Some(_) => chunks.push((number + 2, String::new())),
            None => {
                if let Some((_, chunk)) = chunks.last_mut() {
                    chunk.push_str(line);
                }
            }
        }
    }
    let mut documents = Vec::new();
    for (first_line, text) in chunks {
        let value: serde_norway::Value = serde_norway::from_str(&text).map_err(|error| {
            let line = error
                .location()
                .map(|location| first_line + location.line().saturating_sub(1))
                .unwrap_or(first_line);
            let mut message = error.to_string();
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            LoadError::Syntax {
                path: path.to_owned(),
                index: documents.len() + 1,
                line,
                message,
            }
        })?;
        if value.is_null() {
            continue;
        }
        documents.push(RawDocument {
            index: documents.len() + 1,
            first_line,
            text,
            value,
        });
    }
    Ok(documents)
}

/// Splits YAML text into documents ([`split_documents`]) and reads each one's kind and name;
/// a document without `kind` is refused.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Document>, LoadError> {
    let text_field = |value: &serde_norway::Value, key: &str| {
        value
            .get(key)
            .and_then(|field| field.as_str())
            .map(str::to_owned)
    };
    split_documents(path, text)?
        .into_iter()
        .map(|raw| {
            let kind = text_field(&raw.value, "kind").ok_or_else(|| LoadError::Syntax {
                path: path.to_owned(),
                index: raw.index,
                line: raw.first_line,
                message: "kind: missing; every object needs `apiVersion` and `kind`".to_owned(),
            })?;
            let name = raw
                .value
                .get("metadata")
                .and_then(|metadata| text_field(metadata, "name"))
                .unwrap_or_default();
            Ok(Document {
                path: path.to_owned(),
                index: raw.index,
                first_line: raw.first_line,
                api_version: text_field(&raw.value, "apiVersion").unwrap_or_default(),
                kind,
                name,
                text: raw.text,
            })
        })
        .collect()
}
