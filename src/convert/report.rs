//! What a conversion did and what it refused, one line each: `file: Kind/name: field: what`.

use std::fmt;

/// Where in the input a change or a refusal applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file as given on the command line.
    pub file: String,
    /// The document's kind as written (before renaming).
    pub kind: String,
    /// `metadata.name`, or `#<index>` for a document without one.
    pub name: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}/{}", self.file, self.kind, self.name)
    }
}

/// One rewrite `ebb convert` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The document.
    pub place: Place,
    /// The field, e.g. `spec.triggers[0].authenticationRef.kind`.
    pub field: String,
    /// What changed, e.g. `TriggerAuthentication -> ScalerAuthentication`.
    pub what: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.place, self.field, self.what)
    }
}

/// Something `ebb convert` cannot carry over: the document is left out of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The document.
    pub place: Place,
    /// The field, e.g. `spec.podIdentity`.
    pub field: String,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: cannot convert: {}",
            self.place, self.field, self.reason
        )
    }
}

/// The findings about one document, gathered by the rules.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Rewrites made, as (field, what).
    pub(crate) changes: Vec<(String, String)>,
    /// Refusals, as (field, reason).
    pub(crate) refusals: Vec<(String, String)>,
}

impl Findings {
    /// Records a rewrite.
    pub(crate) fn change(&mut self, field: impl Into<String>, what: impl Into<String>) {
        self.changes.push((field.into(), what.into()));
    }

    /// Records a refusal.
    pub(crate) fn refuse(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.refusals.push((field.into(), reason.into()));
    }
}
