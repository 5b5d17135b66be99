//! Logging setup: the one copy every ebb process shares (see [`crate::process`]).

pub use crate::process::init_logging;
