//! Protocol facts shared by scalers and hosts: KEDA's value-reading rule, the metadata keys
//! the protocols reserve, the meaning of status codes, and the rule that keeps secrets out of
//! messages.

mod redact;
mod values;

pub use redact::{MASK, Redactor, mask_credentials};
pub use values::{
    NotFinite, finite, finite_value, keda_metric_value, keda_target_value, sanitize_value,
};
