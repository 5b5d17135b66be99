//! Engine tests: one table row per rule, and property tests.

mod modifiers;
mod properties;
mod rules;
