//! Protocol facts shared by scalers and hosts: KEDA's value-reading rule, the metadata keys
//! the protocols reserve, and the meaning of status codes.

mod values;

pub use values::{keda_metric_value, keda_target_value, sanitize_value};
