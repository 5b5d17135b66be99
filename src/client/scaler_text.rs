//! Text a scaler supplies (its error messages, its GetInfo names and descriptions) is made
//! safe once, where it enters ebb: every later reader (status, dashboard, conditions, Events,
//! logs in text or JSON) gets text that holds no secret ebb sent to that scaler, no control
//! character that could forge a log line or drive a terminal, and at most 1 KiB.
//!
//! The steps run in this order, each for a reason: redaction first, while the secret is
//! still spelled as the scaler spelled it (an escaped control character inside a secret would
//! hide it); escaping next; the cut last, so it can never leave a fragment of a secret that
//! redaction would have found whole.

use super::ScalerInfo;
use crate::protocol::Redactor;
use crate::spec::terminal_safe;

/// Most bytes of one scaler-supplied text kept. Below 1 KiB by the room the words around it
/// take (`GetMetricSpec failed: ResourceExhausted: ` and the like), so every stored message
/// that quotes a scaler stays within 1 KiB.
pub const MAX_SCALER_TEXT: usize = 1024 - 64;

/// `text` from a scaler, safe to store, serve and log: every secret `redactor` knows masked
/// (with its URL forms, see [`Redactor::add`]), control characters escaped as `--output
/// lines` escapes them (newlines too: a log line stays one line), and cut to
/// [`MAX_SCALER_TEXT`] bytes on a character boundary with a note of how much was cut.
pub fn clean_scaler_text(redactor: &Redactor, text: &str) -> String {
    let redacted = redactor.redact(text);
    let escaped = terminal_safe(&redacted, false);
    cut(&escaped, MAX_SCALER_TEXT)
}

/// `info` from a scaler's GetInfo with every text in it cleaned by [`clean_scaler_text`]:
/// its name reaches status messages (a missing key names the scaler), all of it the `ebb
/// scaler check` output. Descriptions are prose wrapped over lines (doc comments, for SDK
/// scalers): their line breaks become spaces first, so they read as one line, not as `\n`.
pub(crate) fn clean_info(mut info: ScalerInfo, redactor: &Redactor) -> ScalerInfo {
    let clean = |text: &mut String| *text = clean_scaler_text(redactor, text);
    let clean_prose = |text: &mut String| {
        *text = clean_scaler_text(
            redactor,
            &text.split(['\r', '\n']).collect::<Vec<_>>().join(" "),
        );
    };
    clean(&mut info.name);
    clean(&mut info.version);
    clean_prose(&mut info.description);
    for field in &mut info.metadata {
        clean(&mut field.key);
        clean(&mut field.default_value);
        clean_prose(&mut field.description);
        field.allowed_values.iter_mut().for_each(clean);
    }
    info
}

/// `text` cut to at most `max` bytes including the note `… [cut, N bytes]` that says how
/// many bytes were left out; whole when it fits.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    // The note is widest when N has as many digits as the whole length.
    let widest_note = note(text.len()).len();
    let mut keep = max.saturating_sub(widest_note);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut out = String::with_capacity(max);
    out.push_str(&text[..keep]);
    out.push_str(&note(text.len() - keep));
    out
}

fn note(bytes_cut: usize) -> String {
    format!("… [cut, {bytes_cut} bytes]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_every_url_form() {
        let redactor = Redactor::new(["amqp://guest:p@ss/w0rd!@rabbit:5672/%2F", "s3cr3t-t0ken"]);
        let text = "cannot connect to amqp://guest:p@ss/w0rd!@rabbit:5672 as guest:p@ss/w0rd! \
                    (p%40ss%2Fw0rd%21, p%40ss%2fw0rd%21), token s3cr3t%2Dt0ken";
        let clean = clean_scaler_text(&redactor, text);
        for leak in ["p@ss/w0rd", "p%40ss", "w0rd", "s3cr3t"] {
            assert!(!clean.contains(leak), "{leak} in {clean}");
        }
        assert!(clean.contains("cannot connect to"), "{clean}");
    }

    #[test]
    fn control_characters_are_escaped_so_a_message_stays_one_line() {
        let clean = clean_scaler_text(
            &Redactor::default(),
            "bad\n2030-01-01T00:00:00Z  INFO forged\r\u{1b}[2J\u{7}\0end",
        );
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
        assert_eq!(
            clean,
            "bad\\n2030-01-01T00:00:00Z  INFO forged\\r\\u{1b}[2J\\u{7}\\u{0}end"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_note() {
        let text = "é".repeat(3_000_000 / 2);
        let clean = clean_scaler_text(&Redactor::default(), &text);
        assert!(clean.len() <= MAX_SCALER_TEXT, "{}", clean.len());
        let (kept, note) = clean.split_once('…').expect("a note");
        assert!(kept.chars().all(|c| c == 'é'));
        assert_eq!(note, format!(" [cut, {} bytes]", 3_000_000 - kept.len()));
        assert_eq!(clean_scaler_text(&Redactor::default(), "short"), "short");
    }

    #[test]
    fn the_cut_comes_after_redaction_and_never_leaves_a_fragment() {
        // The secret straddles the cut: cut first, its head would survive unmasked.
        let secret = "hunter2-correct-horse-battery";
        let text = format!(
            "{}{secret}{}",
            "x".repeat(MAX_SCALER_TEXT - 40),
            "y".repeat(100)
        );
        let clean = clean_scaler_text(&Redactor::new([secret]), &text);
        assert!(!clean.contains("hunter2"), "{clean}");
        assert!(clean.len() <= MAX_SCALER_TEXT);
    }

    #[test]
    fn every_text_of_a_get_info_answer_is_cleaned() {
        let mut info = ScalerInfo::keda();
        info.name = "evil\n\u{1b}[31mname".into();
        info.description = format!("uses {}", "d".repeat(5000));
        info.metadata.push(crate::client::MetadataField {
            key: "mode".into(),
            required: true,
            default_value: "https://u:tok3n@h/".into(),
            description: "wrapped\nover lines\r\nand \u{1b}[2J".into(),
            secret: false,
            kind: crate::client::ValueKind::Enum,
            allowed_values: vec!["a\u{7}".into()],
        });
        let info = clean_info(info, &Redactor::default());
        let field = &info.metadata[0];
        for text in [&info.name, &info.description, &field.description]
            .into_iter()
            .chain(&field.allowed_values)
        {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        assert!(info.description.len() <= MAX_SCALER_TEXT);
        assert_eq!(field.description, "wrapped over lines  and \\u{1b}[2J");
        assert_eq!(field.default_value, "https://u:***@h/");
    }

    #[test]
    fn an_escaped_control_character_cannot_hide_a_secret() {
        // Escaping first would turn the secret's tab into `\t` and it would no longer match.
        let clean = clean_scaler_text(&Redactor::new(["pass\tword"]), "got pass\tword");
        assert_eq!(clean, "got ***");
    }
}
