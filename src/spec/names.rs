//! Names that end up in terminals, logs, labels and URLs: checked the way Kubernetes checks
//! them, so an escape sequence or a newline in a name is refused before anything prints it.

/// Longest trigger name (a Kubernetes label value's limit, so it fits anywhere).
const TRIGGER_NAME_MAX: usize = super::messages::MAX_TRIGGER_NAME;

/// Checks an object name as a DNS-1123 subdomain: lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, at most 253 characters.
pub fn check_object_name(name: &str) -> Result<(), String> {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if name.is_empty() {
        return Err("required".to_owned());
    }
    let valid = name.len() <= 253
        && name
            .chars()
            .all(|c| alphanumeric(c) || c == '-' || c == '.')
        && name.starts_with(alphanumeric)
        && name.ends_with(alphanumeric);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: lowercase letters, digits, '-' and '.', starting and \
             ending with a letter or digit, at most 253 characters"
        ))
    }
}

/// Checks a trigger name: letters, digits, `-`, `_` and `.`, starting with a letter or digit,
/// at most 63 characters.
pub fn check_trigger_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= TRIGGER_NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(super::messages::INVALID_TRIGGER_NAME
            .fill(&[("name", &format!("{name:?}")), ("max", &TRIGGER_NAME_MAX)]))
    }
}

/// `text` made safe for a terminal: control characters (escape sequences, carriage returns,
/// and newlines unless `keep_newlines`) are shown as `\u{..}` escapes instead of acting.
pub fn terminal_safe(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_newlines && (c == '\n' || c == '\t'));
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(check_object_name("orders-1.v2").is_ok());
        for bad in [
            "",
            "Orders",
            "-orders",
            "orders-",
            "so\u{1b}[2J",
            "a\nb",
            "a_b",
        ] {
            assert!(check_object_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_trigger_name("queue_1.a-b").is_ok());
        for bad in ["", "_q", "q\u{1b}[2J", "q\nr", "q r", &"q".repeat(64)] {
            assert!(check_trigger_name(bad).is_err(), "{bad:?}");
        }
        // The message quotes the name escaped, never raw.
        let message = check_object_name("so\u{1b}[2J").unwrap_err();
        assert!(!message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn control_characters_are_escaped_for_terminals() {
        assert_eq!(terminal_safe("plain", false), "plain");
        assert_eq!(terminal_safe("a\u{1b}[2Jb", false), "a\\u{1b}[2Jb");
        assert_eq!(terminal_safe("line\nnext", true), "line\nnext");
        assert_eq!(terminal_safe("line\nnext\r", true), "line\nnext\\r");
    }
}
