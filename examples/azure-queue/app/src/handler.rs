//! The function itself and what happens to a message after it: pure, no I/O.

/// A message whose text carries this word fails every time it is handled, so the demo shows
/// the poison path deterministically.
pub const FAIL_MARKER: &str = "always-fails";

/// How many failed tries move a message to the poison queue (Azure Functions' default is 5;
/// the demo uses 3 so it stays short).
pub const DEFAULT_MAX_DEQUEUE_COUNT: u64 = 3;

/// Why the function failed for a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The message asked to fail (it carries [`FAIL_MARKER`]).
    #[error("message {0} is marked to fail")]
    MarkedToFail(String),
    /// The message has no id.
    #[error("empty message")]
    Empty,
}

/// The text of demo message `id`; `fails` adds [`FAIL_MARKER`].
pub fn message_body(id: &str, fails: bool) -> String {
    if fails {
        format!("{id} {FAIL_MARKER}")
    } else {
        id.to_owned()
    }
}

/// The id of demo message number `n` with `prefix`.
pub fn message_id(prefix: &str, n: u64) -> String {
    format!("{prefix}-{n}")
}

/// Whether message number `n` is one that always fails: every `fail_every`-th (none for 0).
pub fn is_failing(n: u64, fail_every: u64) -> bool {
    fail_every > 0 && n % fail_every == fail_every - 1
}

/// The id a message body names (its first word).
pub fn body_id(body: &str) -> Option<&str> {
    body.split_whitespace().next()
}

/// The function: returns the id of the message it handled, or why it failed.
pub fn handle(body: &str) -> Result<String, HandlerError> {
    let id = body_id(body).ok_or(HandlerError::Empty)?;
    if body.split_whitespace().any(|word| word == FAIL_MARKER) {
        return Err(HandlerError::MarkedToFail(id.to_owned()));
    }
    Ok(id.to_owned())
}

/// What to do with a message after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Make it visible again for another try.
    Retry,
    /// Copy it to the poison queue and delete it.
    Poison,
}

/// After the try numbered `dequeue_count` failed: the try that reaches `max_dequeue_count`
/// moves the message to the poison queue, as Azure Functions does.
pub fn after_failure(dequeue_count: u64, max_dequeue_count: u64) -> AfterFailure {
    if dequeue_count >= max_dequeue_count {
        AfterFailure::Poison
    } else {
        AfterFailure::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_message_fails_and_others_succeed() {
        assert_eq!(handle(&message_body("m-1", false)), Ok("m-1".to_owned()));
        assert_eq!(
            handle(&message_body("m-2", true)),
            Err(HandlerError::MarkedToFail("m-2".to_owned()))
        );
        assert_eq!(handle("  "), Err(HandlerError::Empty));
    }

    #[test]
    fn the_third_failure_poisons() {
        assert_eq!(after_failure(1, 3), AfterFailure::Retry);
        assert_eq!(after_failure(2, 3), AfterFailure::Retry);
        assert_eq!(after_failure(3, 3), AfterFailure::Poison);
        assert_eq!(after_failure(7, 3), AfterFailure::Poison);
    }

    #[test]
    fn every_nth_message_fails() {
        let failing: Vec<u64> = (0..100).filter(|n| is_failing(*n, 20)).collect();
        assert_eq!(failing, vec![19, 39, 59, 79, 99]);
        assert!(!(0..100).any(|n| is_failing(n, 0)));
    }
}
