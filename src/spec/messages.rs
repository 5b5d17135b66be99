//! The words of the validation rules that both `ebb run --check` / the controller
//! ([`super::validate`]) and the CRDs' CEL rules (`src/kubernetes/crd.rs`) use, so the API
//! server refuses a bad object in the same words as ebb does. A message is literal text with
//! `{name}` placeholders: validation fills them with values, the CRD generator with CEL
//! expressions.

use std::fmt::Display;

/// The words of one rule: literal text with `{name}` placeholders (lowercase letters and `_`;
/// any other brace is literal text, as in `tls: {}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message(&'static str);

/// A piece of a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(&'static str),
    /// A placeholder's name.
    Value(&'static str),
}

impl Message {
    /// The literal text and placeholders, in order.
    pub fn pieces(self) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut rest = self.0;
        let mut text_start = 0;
        let mut offset = 0;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            if name_len > 0 && after[name_len..].starts_with('}') {
                let start = offset + open;
                if start > text_start {
                    pieces.push(Piece::Text(&self.0[text_start..start]));
                }
                pieces.push(Piece::Value(&after[..name_len]));
                text_start = start + name_len + 2;
            }
            let advance = open + 1;
            offset += advance;
            rest = &rest[advance..];
        }
        if text_start < self.0.len() {
            pieces.push(Piece::Text(&self.0[text_start..]));
        }
        pieces
    }

    /// The text with each placeholder replaced by its value (a placeholder without one stays
    /// as written).
    pub fn fill(self, values: &[(&str, &dyn Display)]) -> String {
        let mut out = String::with_capacity(self.0.len() + 16);
        for piece in self.pieces() {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(name) => match values.iter().find(|(key, _)| *key == name) {
                    Some((_, value)) => out.push_str(&value.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                },
            }
        }
        out
    }

    /// The text of a message without placeholders.
    pub fn text(self) -> String {
        self.fill(&[])
    }
}

/// Longest trigger name.
pub const MAX_TRIGGER_NAME: usize = 63;
/// Most triggers an object may have: the CRD's `maxItems`, which bounds the cost of the CEL
/// rules that compare triggers with each other.
pub const MAX_TRIGGERS: usize = 100;
/// Longest `stabilizationWindowSeconds`, as in autoscaling/v2.
pub const MAX_STABILIZATION_WINDOW_SECONDS: u32 = 3600;
/// Longest scaling policy period, as in autoscaling/v2.
pub const MAX_POLICY_PERIOD_SECONDS: u32 = 1800;

/// `pollingInterval` of a ScaledObject is 0.
pub const POLLING_INTERVAL_TOO_SMALL: Message = Message("must be at least 1 second");
/// `pollingInterval` of a ScaledJob is 0.
pub const JOB_POLLING_INTERVAL_TOO_SMALL: Message =
    Message("pollingInterval must be at least 1 (seconds)");
/// `maxReplicaCount` or `fallback.failureThreshold` is 0.
pub const AT_LEAST_ONE: Message = Message("must be at least 1");
/// `minReplicaCount` above `maxReplicaCount` (either kind).
pub const MIN_ABOVE_MAX: Message = Message("minReplicaCount {min} is above maxReplicaCount {max}");
/// `idleReplicaCount` not below `minReplicaCount`.
pub const IDLE_NOT_BELOW_MIN: Message =
    Message("idleReplicaCount {idle} must be below minReplicaCount {min}");
/// `fallback.replicas` above `maxReplicaCount`.
pub const FALLBACK_ABOVE_MAX: Message =
    Message("fallback replicas {replicas} exceed maxReplicaCount {max}");
/// `stabilizationWindowSeconds` above [`MAX_STABILIZATION_WINDOW_SECONDS`].
pub const WINDOW_TOO_LONG: Message = Message("{window} is above the maximum of {max} seconds");
/// A scaling policy's `value` or a scaler's `timeout` is 0.
pub const GREATER_THAN_ZERO: Message = Message("must be greater than 0");
/// A scaling policy's `periodSeconds` is outside 1..=[`MAX_POLICY_PERIOD_SECONDS`].
pub const POLICY_PERIOD_OUT_OF_RANGE: Message = Message("{period} is outside 1..={max}");
/// `scaleTargetRef.name` is empty.
pub const MISSING_TARGET_NAME: Message = Message("the name of the workload to scale is required");
/// A ScaledObject without triggers.
pub const NO_TRIGGERS: Message = Message("at least one trigger is required");
/// A ScaledJob without triggers.
pub const JOB_NO_TRIGGERS: Message = Message("a ScaledJob needs at least one trigger");
/// More than [`MAX_TRIGGERS`] triggers: the API server's own words for `maxItems`, so both
/// refuse such an object alike.
pub const TOO_MANY_TRIGGERS: Message = Message("Too many: {count}: must have at most {max} items");
/// A ScaledJob's Job template without containers.
pub const JOB_MISSING_CONTAINER: Message = Message("the Job template needs at least one container");
/// `customScalingRunningJobPercentage` is not a number >= 0 (`text` quoted).
pub const JOB_RUNNING_PERCENTAGE: Message =
    Message("expected a number >= 0 such as \"0.5\", got {text}");
/// A trigger's (effective) name is not a valid trigger name (`name` quoted).
pub const INVALID_TRIGGER_NAME: Message = Message(
    "{name} is not a valid trigger name: letters, digits, '-', '_' and '.', starting with a \
     letter or digit, at most {max} characters",
);
/// Two triggers share a name (`name` quoted; `first` the index of the first).
pub const DUPLICATE_TRIGGER_NAME: Message =
    Message("trigger name {name} is already used by triggers[{first}]");
/// `authenticationRef.name` is empty.
pub const MISSING_AUTHENTICATION_NAME: Message =
    Message("the name of the ScalerAuthentication is required");
/// A trigger calls no scaler (`name` quoted).
pub const MISSING_SCALER_ADDRESS: Message = Message(
    "trigger {name} needs a scaler address: set scaler.address, or use type external with \
     metadata.scalerAddress",
);
/// `scaler.tls` names a CA twice.
pub const CA_TWICE: Message = Message("give caSecretRef or caFile, not both");
/// `scaler.tls` has a certificate file without a key file, or the reverse.
pub const CERT_WITHOUT_KEY: Message = Message("certFile and keyFile must be given together");
/// An `https://` scaler address without `scaler.tls`.
pub const HTTPS_WITHOUT_TLS: Message =
    Message("https:// address needs a `scaler.tls` block (it may be empty: `tls: {}`)");
/// `fallback.behavior: scalingModifiers` without a formula.
pub const FALLBACK_WITHOUT_FORMULA: Message =
    Message("behavior scalingModifiers needs advanced.scalingModifiers.formula");
/// `scalingModifiers` without `target`.
pub const MODIFIERS_TARGET_REQUIRED: Message =
    Message("required: the value of the formula one replica handles");
/// `scalingModifiers.target` is not a number above 0 (`value` quoted).
pub const MODIFIERS_TARGET_NOT_POSITIVE: Message = Message("must be a number above 0, got {value}");
/// `scalingModifiers.activationTarget` is not a number of at least 0 (`value` quoted).
pub const MODIFIERS_ACTIVATION_NEGATIVE: Message =
    Message("must be a number of at least 0, got {value}");
/// `scalingModifiers` without `formula`.
pub const FORMULA_REQUIRED: Message = Message("required when scalingModifiers is set");
/// A trigger without a name while a formula is set.
pub const TRIGGER_NEEDS_NAME: Message = Message(
    "every trigger needs a name when advanced.scalingModifiers.formula is set: the formula \
     refers to triggers by name",
);
/// A trigger named like the composite metric while a formula is set (`name` quoted).
pub const TRIGGER_NAMED_FORMULA: Message = Message(
    "{name} is the composite metric's name while advanced.scalingModifiers.formula is set; \
     rename the trigger",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_other_braces_stay() {
        assert_eq!(
            MIN_ABOVE_MAX.fill(&[("min", &5), ("max", &3)]),
            "minReplicaCount 5 is above maxReplicaCount 3"
        );
        assert_eq!(
            HTTPS_WITHOUT_TLS.text(),
            "https:// address needs a `scaler.tls` block (it may be empty: `tls: {}`)"
        );
        assert_eq!(
            Message("{a}{b} and {c}").fill(&[("a", &1), ("b", &"x")]),
            "1x and {c}"
        );
        assert_eq!(
            WINDOW_TOO_LONG.pieces(),
            [
                Piece::Value("window"),
                Piece::Text(" is above the maximum of "),
                Piece::Value("max"),
                Piece::Text(" seconds"),
            ]
        );
    }
}
