//! The scaling engine: pure decisions from spec, readings, remembered state and time.
