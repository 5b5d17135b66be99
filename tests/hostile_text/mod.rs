//! What a hostile scaler says in the tests of scaler text (tests/scaler_text.rs and the chaos
//! suite): messages that quote a trigger's secrets in every URL form, and messages full of
//! control characters that try to forge a log line; with the checks that none of it got
//! through.

#![allow(dead_code)]

/// Every secret below holds this, so one search finds any form of any of them.
pub const MARKER: &str = "Zq9";

/// The trigger's password: `/`, `:` and `@` make its URL form differ from it.
pub const PASSWORD: &str = "Pa55/w:rd@Zq9";

/// The trigger's broker URL, holding the password percent-encoded.
pub const HOST: &str = "amqp://orders:Pa55%2Fw%3Ard%40Zq9@rabbit.internal:5672/%2F";

/// An API key given as a secret of its own.
pub const API_KEY: &str = "tok-Zq9-4f8a1c";

/// The secrets as trigger parameters: name and value.
pub const SECRETS: [(&str, &str); 3] =
    [("password", PASSWORD), ("host", HOST), ("apiKey", API_KEY)];

/// A failure that quotes every secret in every form a scaler might: whole, decoded out of the
/// URL, as `user:password`, percent-encoded with upper- and lowercase hex and only in part.
pub fn echoed_secrets() -> String {
    format!(
        "cannot connect to amqp://orders:{PASSWORD}@rabbit.internal:5672 as orders:{PASSWORD} \
         (configured as {HOST}); password {PASSWORD}, encoded Pa55%2fw%3ard%40Zq9 or \
         Pa55%2Fw:rd%40Zq9; api key {API_KEY}, sent as key={API_KEY}&x=1"
    )
}

/// The start of a log line the hostile message tries to forge.
pub const FORGED: &str = "2030-01-01T00:00:00.000000Z  INFO ebb: forged";

/// A failure with a newline (and a forged log line after it), a carriage return, an escape
/// sequence, a bell and a NUL.
pub fn control_characters() -> String {
    format!("broken\n{FORGED} scaled to 0\r\u{1b}[2J\u{1b}]0;owned\u{7}\0 end")
}

/// The control characters [`control_characters`] holds.
pub const CONTROL: [char; 5] = ['\n', '\r', '\u{1b}', '\u{7}', '\0'];

/// Fails when `text` (`what` names it) holds any part of a secret.
pub fn assert_no_secret(what: &str, text: &str) {
    for leak in [MARKER, "Pa55", "4f8a1c"] {
        assert!(!text.contains(leak), "{what} holds `{leak}`: {text}");
    }
}

/// Fails when `text` (one message, one JSON document) holds a control character.
pub fn assert_no_control(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| CONTROL.contains(c)) {
        panic!("{what} holds the raw control character {c:?}: {text:?}");
    }
}

/// Fails when `log` (many lines) holds a control character other than the newlines that end
/// its lines, or a line the scaler forged.
pub fn assert_log_lines_intact(what: &str, log: &str) {
    // Not `lines()`: it would take a `\r` before a newline as part of the line ending.
    for line in log.split('\n') {
        assert_no_control(what, line);
        assert!(
            !line.trim_start().starts_with(FORGED),
            "{what} holds a forged line: {line:?}"
        );
    }
}
