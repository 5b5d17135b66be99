//! Multi-document YAML in and out. Each document keeps its own text, so documents that need no
//! change (Secrets, Deployments, ebb's own kinds) are written back exactly as they were,
//! comments included; converted documents are written from their parsed value, in the order
//! their keys were written.

use serde_norway::Value;

/// One document of a file: split, numbered and shape-checked as `ebb run` does
/// ([`crate::spec::load::split_documents`]).
pub(crate) use crate::spec::load::RawDocument as Document;

/// The YAML text of a converted document.
pub(crate) fn render(value: &Value) -> String {
    // Serializing a parsed YAML value cannot fail: every key is a YAML scalar.
    serde_norway::to_string(value).unwrap_or_default()
}

/// A string field of a mapping, e.g. `kind`.
pub(crate) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `metadata.name`, or `#<index>` (from 1, as `ebb run` numbers documents) when the document
/// has none.
pub(crate) fn name_of(document: &Document) -> String {
    document
        .value
        .get("metadata")
        .and_then(|metadata| str_field(metadata, "name"))
        .map_or_else(|| format!("#{}", document.index), str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Vec<Document> {
        crate::spec::load::split_documents(Path::new("a.yaml"), text).unwrap()
    }

    #[test]
    fn documents_keep_their_text_and_comment_only_documents_are_skipped() {
        let text = "# header\n---\napiVersion: v1\nkind: Secret # keep me\n---\n# only a comment\n---\nkind: ScaledObject\nmetadata: {name: a}\n---\nkind: Secret\n";
        let documents = parse(text);
        assert_eq!(documents.len(), 3);
        assert_eq!(
            documents[0].text,
            "apiVersion: v1\nkind: Secret # keep me\n"
        );
        assert_eq!(str_field(&documents[1].value, "kind"), Some("ScaledObject"));
        assert_eq!(name_of(&documents[1]), "a");
        assert_eq!(
            name_of(&documents[2]),
            "#3",
            "numbered from 1, as ebb run does"
        );
    }

    #[test]
    fn rendering_keeps_the_written_key_order() {
        let documents = parse("kind: B\napiVersion: x\nspec: {z: 1, a: 2}\n");
        assert_eq!(
            render(&documents[0].value),
            "kind: B\napiVersion: x\nspec:\n  z: 1\n  a: 2\n"
        );
    }
}
