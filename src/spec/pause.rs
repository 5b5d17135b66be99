//! Pause annotations, parsed strictly: only `"true"` pauses (KEDA #5215 paused on `"false"`).

use std::collections::BTreeMap;

use super::validate::ValidationProblem;

/// The annotation prefixes accepted: KEDA's and ebb's own.
const PREFIXES: [&str; 2] = ["autoscaling.keda.sh/", "ebb.dev/"];

/// Pause requested through annotations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PauseState {
    /// `paused: "true"`: hold the current replica count.
    pub paused: bool,
    /// `paused-replicas: "N"`: hold exactly N replicas.
    pub paused_replicas: Option<u32>,
    /// `paused-scale-in: "true"`: never remove replicas.
    pub paused_scale_in: bool,
    /// `paused-scale-out: "true"`: never add replicas.
    pub paused_scale_out: bool,
}

/// The annotation's value under either prefix (ebb's wins when both are set).
pub fn pause_annotation<'a>(
    annotations: &'a BTreeMap<String, String>,
    name: &str,
) -> Option<(String, &'a str)> {
    PREFIXES.iter().rev().find_map(|prefix| {
        let key = format!("{prefix}{name}");
        annotations
            .get(&key)
            .map(|value| (key.clone(), value.as_str()))
    })
}

fn parse_flag(
    annotations: &BTreeMap<String, String>,
    name: &str,
) -> Result<bool, ValidationProblem> {
    let Some((key, value)) = pause_annotation(annotations, name) else {
        return Ok(false);
    };
    // KEDA's rule: only "true" (in any case) pauses. Anything but true or false is an error
    // rather than a guess, so `"yes"` cannot pause in one tool and not in the other.
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        _ => Err(ValidationProblem::new(
            format!("metadata.annotations[{key}]"),
            "InvalidPauseAnnotation",
            format!("expected \"true\" or \"false\", got {value:?}"),
        )),
    }
}

impl PauseState {
    /// Reads the pause annotations. An unparsable value is an error, never a pause.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<PauseState, ValidationProblem> {
        let paused_replicas = match pause_annotation(annotations, "paused-replicas") {
            None => None,
            Some((key, value)) => Some(value.trim().parse::<u32>().map_err(|_| {
                ValidationProblem::new(
                    format!("metadata.annotations[{key}]"),
                    "InvalidPauseAnnotation",
                    format!("expected a replica count (a whole number >= 0), got {value:?}"),
                )
            })?),
        };
        Ok(PauseState {
            paused: parse_flag(annotations, "paused")?,
            paused_replicas,
            paused_scale_in: parse_flag(annotations, "paused-scale-in")?,
            paused_scale_out: parse_flag(annotations, "paused-scale-out")?,
        })
    }

    /// Whether scaling is fully paused (with or without a replica count).
    pub fn is_paused(&self) -> bool {
        self.paused || self.paused_replicas.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn false_does_not_pause() {
        let state =
            PauseState::from_annotations(&annotations(&[("autoscaling.keda.sh/paused", "false")]))
                .unwrap();
        assert!(!state.is_paused());
    }

    #[test]
    fn true_pauses_under_either_prefix() {
        for key in ["autoscaling.keda.sh/paused", "ebb.dev/paused"] {
            let state = PauseState::from_annotations(&annotations(&[(key, "True")])).unwrap();
            assert!(state.is_paused(), "{key}");
        }
    }

    #[test]
    fn paused_replicas_holds_a_count() {
        let state = PauseState::from_annotations(&annotations(&[(
            "autoscaling.keda.sh/paused-replicas",
            "3",
        )]))
        .unwrap();
        assert_eq!(state.paused_replicas, Some(3));
        assert!(state.is_paused());
    }

    #[test]
    fn garbage_is_an_error_naming_the_annotation() {
        let problem =
            PauseState::from_annotations(&annotations(&[("ebb.dev/paused-replicas", "three")]))
                .unwrap_err();
        assert!(
            problem.field.contains("ebb.dev/paused-replicas"),
            "{problem:?}"
        );
        let problem =
            PauseState::from_annotations(&annotations(&[("ebb.dev/paused-scale-in", "maybe")]))
                .unwrap_err();
        assert_eq!(problem.reason, "InvalidPauseAnnotation");
    }

    #[test]
    fn scale_in_and_out_flags() {
        let state = PauseState::from_annotations(&annotations(&[
            ("autoscaling.keda.sh/paused-scale-in", "true"),
            ("ebb.dev/paused-scale-out", "false"),
        ]))
        .unwrap();
        assert!(state.paused_scale_in && !state.paused_scale_out && !state.is_paused());
    }
}
