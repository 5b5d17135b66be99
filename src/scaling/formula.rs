//! `advanced.scalingModifiers.formula`: compiled once per spec with the `expr-lang` crate (a
//! Rust implementation of expr, the language KEDA's formulas are written in), evaluated at
//! each poll over the triggers' values.
//!
//! A trigger is named by its `name`; a trigger without a value this poll (it failed) is `nil`,
//! so `a ?? 0` supplies a replacement and a bare `a` makes the formula fail.
//!
//! Formulas compute in floating point only, as trigger values are: whole-number literals are
//! read as floats and only functions of floats may be called. expr's own integer arithmetic
//! wraps on overflow (`9223372036854775807 + 1` is a large negative number), which would scale
//! on a wrong value without a word; a float never wraps, and a value beyond its range is
//! infinite, which fails the evaluation ([`FormulaError::NotFinite`]).

use std::sync::Arc;

use expr::{Context, ContextProvider, Value};

/// Longest formula accepted, in bytes: formulas are a line of arithmetic, and the parser
/// recurses per nesting level, so the length bounds its stack and time.
pub const MAX_FORMULA_LENGTH: usize = 256;

/// Deepest nesting of the compiled expression accepted (each operator, call, bracket and
/// ternary adds a level or two). The evaluator recurses once per level with frames of several
/// KiB in debug builds, so 127 chained additions overflow a 1 MiB stack; 32 levels stay far
/// below what a runtime worker thread has.
pub const MAX_FORMULA_DEPTH: usize = 32;

/// The functions a formula may call: those of numbers that return a float (so no integer
/// arithmetic can come back through a call, such as `int(a) * int(a)`).
const FORMULA_FUNCTIONS: [&str; 10] = [
    "min", "max", "abs", "ceil", "floor", "round", "mean", "median", "sum", "float",
];

/// The value every trigger has in the trial evaluation done when a formula is checked.
const TRIAL_VALUE: f64 = 1.0;

/// A compiled formula. Cheap to clone (the program is shared); equal when the text is.
#[derive(Clone)]
pub struct Formula {
    source: String,
    program: Arc<expr::Program>,
    names: Vec<String>,
}

/// Why a formula is refused or gave no number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormulaError {
    /// The formula is empty.
    #[error("the formula is empty")]
    Empty,
    /// The formula is longer than [`MAX_FORMULA_LENGTH`].
    #[error("the formula is {0} bytes long, above the limit of {MAX_FORMULA_LENGTH}")]
    TooLong(usize),
    /// Brackets or operations nest deeper than [`MAX_FORMULA_DEPTH`].
    #[error(
        "the formula nests more than {MAX_FORMULA_DEPTH} levels deep (each operator, call \
         and bracket is a level)"
    )]
    TooDeep,
    /// A construct formulas may not use (strings, ranges, `let`): scaling needs numbers only,
    /// and these can build values of any size.
    #[error("{0} are not supported in formulas")]
    Unsupported(&'static str),
    /// A function outside [`FORMULA_FUNCTIONS`].
    #[error(
        "the function {0:?} is not supported in formulas (supported: min, max, abs, ceil, \
         floor, round, mean, median, sum, float)"
    )]
    UnsupportedFunction(String),
    /// The text does not parse.
    #[error("does not parse {0}")]
    Syntax(String),
    /// Evaluation failed (a type error, an unknown function, a failed trigger without `??`).
    #[error("cannot be evaluated: {0}")]
    Evaluation(String),
    /// The result is not a number (a bool, nil, ...).
    #[error("the result is {0}, not a number")]
    NotANumber(&'static str),
    /// The result is NaN or infinite (e.g. a division by zero).
    #[error("the result is {0}, not a finite number")]
    NotFinite(f64),
}

impl std::fmt::Debug for Formula {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Formula").field(&self.source).finish()
    }
}

impl PartialEq for Formula {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Formula {
    /// Compiles `source` after the guards (length, nesting, no strings or ranges).
    pub fn compile(source: &str) -> Result<Formula, FormulaError> {
        guard(source)?;
        let syntax = |error: expr::Error| FormulaError::Syntax(parse_error(&error.to_string()));
        // Parsed as written first, so a syntax error's position is the one the user sees.
        expr::compile(source).map_err(syntax)?;
        let program = expr::compile(&integers_as_floats(source)).map_err(syntax)?;
        // expr-lang keeps its syntax tree private; its derived Debug form is the only view of
        // it. The names a formula uses are its `Ident("...")` nodes (function names are
        // fields of `Func`, not identifiers). The tests pin this form, so an upgrade that
        // changes it fails them instead of letting unknown names through.
        let tree = format!("{program:?}");
        if !tree.starts_with("Program { lines: [],") {
            return Err(FormulaError::Unsupported("`let` bindings"));
        }
        if nesting(&tree) > MAX_FORMULA_DEPTH {
            return Err(FormulaError::TooDeep);
        }
        if let Some(function) = tree
            .split("Func { ident: \"")
            .skip(1)
            .filter_map(|piece| piece.split('"').next())
            .find(|name| !FORMULA_FUNCTIONS.contains(name))
        {
            return Err(FormulaError::UnsupportedFunction(function.to_owned()));
        }
        let mut names: Vec<String> = tree
            .split("Ident(\"")
            .skip(1)
            .filter_map(|piece| piece.split('"').next())
            .filter(|name| !name.starts_with(['#', '$']))
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        Ok(Formula {
            source: source.to_owned(),
            program: Arc::new(program),
            names,
        })
    }

    /// The formula as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names the formula reads, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Evaluates with `value_of(name)` for each name (`None`: the trigger failed, `nil`).
    pub fn evaluate(&self, value_of: impl Fn(&str) -> Option<f64>) -> Result<f64, FormulaError> {
        let values = Values {
            names: &self.names,
            values: self
                .names
                .iter()
                .map(|name| value_of(name).map_or(Value::Nil, Value::Float))
                .collect(),
        };
        let result = expr::run(&self.program, &values)
            .map_err(|error| FormulaError::Evaluation(one_line(&error.to_string())))?;
        let number = match result {
            Value::Float(number) => number,
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(number) => number as f64,
            Value::Bool(_) => return Err(FormulaError::NotANumber("a bool")),
            Value::Nil => return Err(FormulaError::NotANumber("nil")),
            Value::String(_) => return Err(FormulaError::NotANumber("a string")),
            _ => return Err(FormulaError::NotANumber("a collection")),
        };
        if number.is_finite() {
            Ok(number)
        } else {
            Err(FormulaError::NotFinite(number))
        }
    }

    /// Evaluates with every name at 1: the check that catches type errors and unknown
    /// functions before the object runs. NaN and infinities are left to run time (they
    /// depend on the values).
    pub fn trial(&self) -> Result<(), FormulaError> {
        match self.evaluate(|_| Some(TRIAL_VALUE)) {
            Ok(_) | Err(FormulaError::NotFinite(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The checks before parsing.
fn guard(source: &str) -> Result<(), FormulaError> {
    if source.trim().is_empty() {
        return Err(FormulaError::Empty);
    }
    if source.len() > MAX_FORMULA_LENGTH {
        return Err(FormulaError::TooLong(source.len()));
    }
    if source.contains(['"', '\'', '`']) {
        return Err(FormulaError::Unsupported("strings"));
    }
    if source.contains("..") {
        return Err(FormulaError::Unsupported("ranges (`..`)"));
    }
    // Checked before parsing too: the parser recurses per bracket.
    if nesting(source) > MAX_FORMULA_DEPTH {
        return Err(FormulaError::TooDeep);
    }
    Ok(())
}

/// The deepest nesting of brackets in `text` (no strings can hide one: formulas have none,
/// and names in the compiled form are identifiers).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// `source` with every whole-number literal written as a float (`2` → `2.0`, `0x10` →
/// `16.0`), so expr never computes with its wrapping integers. Formulas hold no strings
/// ([`guard`]), so a digit that does not continue a name or a number starts a literal.
fn integers_as_floats(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let continues =
            previous.is_some_and(|p| p.is_alphanumeric() || matches!(p, '_' | '$' | '#' | '.'));
        if !c.is_ascii_digit() || continues {
            out.push(c);
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = number_token(rest);
        match whole_number(token) {
            Some(value) => out.push_str(&format!("{value:?}")),
            None => out.push_str(token),
        }
        previous = token.chars().next_back();
        rest = &rest[token.len()..];
    }
    out
}

/// The number at the start of `text`: digits, letters (radix prefixes, hex digits, an
/// exponent), `_` and a decimal point, with an exponent's sign.
fn number_token(text: &str) -> &str {
    let bytes = text.as_bytes();
    let decimal = !matches!(bytes.get(1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B'));
    let mut end = 0;
    while end < bytes.len() {
        let b = bytes[end];
        let exponent_sign =
            decimal && matches!(b, b'+' | b'-') && end > 0 && matches!(bytes[end - 1], b'e' | b'E');
        // `..` is a range, refused by the guard; one `.` is a decimal point.
        let point = b == b'.' && bytes.get(end + 1) != Some(&b'.');
        if b.is_ascii_alphanumeric() || b == b'_' || point || exponent_sign {
            end += 1;
        } else {
            break;
        }
    }
    &text[..end]
}

/// The value of an integer literal as expr reads one (`12`, `1_000`, `0x1F`, `0o17`, `0b101`),
/// `None` for anything else (a float, or text expr will refuse itself).
fn whole_number(token: &str) -> Option<f64> {
    let digits = token.replace('_', "");
    let (digits, radix) = match digits.as_bytes() {
        [b'0', b'x' | b'X', ..] => (&digits[2..], 16),
        [b'0', b'o' | b'O', ..] => (&digits[2..], 8),
        [b'0', b'b' | b'B', ..] => (&digits[2..], 2),
        _ => (digits.as_str(), 10),
    };
    #[allow(clippy::cast_precision_loss)]
    u128::from_str_radix(digits, radix)
        .ok()
        .map(|value| value as f64)
}

/// A message on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A parse error on one line. The parser draws the position over several lines and repeats
/// the formula; only `line:column` and what was expected there are kept.
fn parse_error(text: &str) -> String {
    let flat = one_line(text);
    let position = flat
        .strip_prefix("--> ")
        .and_then(|rest| rest.split_whitespace().next());
    match (position, flat.rsplit_once(" = ")) {
        (Some(position), Some((_, expected))) => format!("at {position}: {expected}"),
        _ => format!(": {flat}"),
    }
}

/// The triggers' values as the program sees them, without building a map per poll.
struct Values<'a> {
    names: &'a [String],
    values: Vec<Value>,
}

impl ContextProvider for Values<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|name| name == key)
            .and_then(|index| self.values.get(index))
    }

    fn to_context(&self) -> Context {
        self.names.iter().zip(self.values.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_number_literals_are_written_as_floats_and_nothing_else_changes() {
        for (source, floats) in [
            ("a + 2", "a + 2.0"),
            (
                "max(a2, 10) * 0x10 - 1_000",
                "max(a2, 10.0) * 16.0 - 1000.0",
            ),
            (
                "1.5 + 2e3 + 1e-3 + 1.5E+2 + .5",
                "1.5 + 2e3 + 1e-3 + 1.5E+2 + .5",
            ),
            ("a ?? 0b101 + 0o17", "a ?? 5.0 + 15.0"),
            ("f_2 > 3 ? 1 : 0", "f_2 > 3.0 ? 1.0 : 0.0"),
            ("9223372036854775807 + 1", "9.223372036854776e18 + 1.0"),
        ] {
            assert_eq!(integers_as_floats(source), floats, "{source}");
        }
    }

    /// The limits the docs state are the ones enforced.
    #[test]
    fn the_engine_docs_state_the_enforced_limits() {
        let docs = include_str!("../../docs/engine.md");
        let stated = format!(
            "A formula is at most {MAX_FORMULA_LENGTH} bytes, and its expression nests at most \
             {MAX_FORMULA_DEPTH} levels deep"
        );
        assert!(
            docs.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(&stated),
            "docs/engine.md must say: {stated}"
        );
    }
}
