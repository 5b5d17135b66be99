//! Engine tests: one table row per rule, and property tests.

mod properties;
mod rules;
