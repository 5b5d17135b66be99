//! Multi-document YAML in and out. Each document keeps its own text, so documents that need no
//! change (Secrets, Deployments, ebb's own kinds) are written back exactly as they were,
//! comments included; converted documents are written from their parsed value, in the order
//! their keys were written.

use serde_norway::Value;

/// One document of a file.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Position in the file, from 0 (documents holding only comments are not counted).
    pub(crate) index: usize,
    /// The document's text as written, without its `---` line.
    pub(crate) text: String,
    /// The parsed document.
    pub(crate) value: Value,
}

/// A `---` line starts a document (`--- ` may carry content after it on the same line).
fn is_separator(line: &str) -> bool {
    let line = line.trim_end();
    line == "---" || line.starts_with("--- ")
}

/// Whether a chunk holds anything but blank lines, comments and a document-end marker.
fn has_content(chunk: &str) -> bool {
    chunk.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && line != "..."
    })
}

/// Splits `text` into documents and parses each. `Err` holds the index of the document that
/// is not YAML, with the parser's message.
pub(crate) fn parse(text: &str) -> Result<Vec<Document>, (usize, String)> {
    let mut chunks: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if is_separator(line) {
            let rest = line.trim_end().trim_start_matches("---").trim_start();
            chunks.push(if rest.is_empty() {
                String::new()
            } else {
                format!("{rest}\n")
            });
        } else if let Some(last) = chunks.last_mut() {
            last.push_str(line);
        }
    }
    chunks
        .into_iter()
        .filter(|chunk| has_content(chunk))
        .enumerate()
        .map(|(index, text)| {
            let value = serde_norway::from_str::<Value>(&text)
                .map_err(|error| (index, error.to_string()))?;
            Ok(Document { index, text, value })
        })
        .collect()
}

/// The YAML text of a converted document.
pub(crate) fn render(value: &Value) -> String {
    // Serializing a parsed YAML value cannot fail: every key is a YAML scalar.
    serde_norway::to_string(value).unwrap_or_default()
}

/// A string field of a mapping, e.g. `kind`.
pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `metadata.name`, or `#<index>` when the document has none.
pub(crate) fn name_of(document: &Document) -> String {
    document
        .value
        .get("metadata")
        .and_then(|metadata| str_field(metadata, "name"))
        .map_or_else(|| format!("#{}", document.index), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_text_and_comment_only_documents_are_skipped() {
        let text = "# header\n---\napiVersion: v1\nkind: Secret # keep me\n---\n# only a comment\n---\nkind: ScaledObject\nmetadata: {name: a}\n";
        let documents = parse(text).unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(
            documents[0].text,
            "apiVersion: v1\nkind: Secret # keep me\n"
        );
        assert_eq!(str_field(&documents[1].value, "kind"), Some("ScaledObject"));
        assert_eq!(name_of(&documents[1]), "a");
        assert_eq!(name_of(&documents[0]), "#0");
    }

    #[test]
    fn a_broken_document_is_named_by_its_index() {
        let (index, message) = parse("kind: A\n---\nkind: [unclosed\n").unwrap_err();
        assert_eq!(index, 1);
        assert!(!message.is_empty());
    }

    #[test]
    fn rendering_keeps_the_written_key_order() {
        let documents = parse("kind: B\napiVersion: x\nspec: {z: 1, a: 2}\n").unwrap();
        assert_eq!(
            render(&documents[0].value),
            "kind: B\napiVersion: x\nspec:\n  z: 1\n  a: 2\n"
        );
    }
}
