//! Keeping secrets out of messages: one rule for every error path of scalers and hosts.
//!
//! The rule: an error about a secret-bearing value (a URL with a password, a connection
//! string, a key) never quotes any part of that value. Parsers follow it by saying which part
//! is wrong without echoing it. [`Redactor`] is the safety net applied where messages leave a
//! process (gRPC statuses, logs, status fields): it removes the known secret values, the
//! fragments of them a misparse could quote, and credentials in well-known shapes.

use std::fmt;

/// What replaces a credential in a message.
pub const MASK: &str = "***";

/// Whole secret values shorter than this are not searched for: replacing every `a` or `1` in
/// a message would destroy it while protecting nothing.
const MIN_SECRET_CHARS: usize = 2;

/// Fragments of a password shorter than this are not searched for, for the same reason.
const MIN_FRAGMENT_CHARS: usize = 4;

/// Characters that end a URL or a `name=value` value inside free text.
fn ends_value(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '`' | '\'' | '"' | '<' | '>' | '(' | ')' | ',' | '[' | ']'
        )
}

/// Characters a misparsed URL splits a password on, so a fragment between two of them can
/// end up quoted as a "port" or "path".
fn splits_password(c: char) -> bool {
    matches!(c, '/' | '?' | '#' | '@' | ':' | ';' | '&' | '=') || c.is_whitespace()
}

/// The secret values of one request (and the parts of them a parser could quote), removed
/// from any message by [`Redactor::redact`]. Its `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a fragment never splits a longer needle before it is replaced.
    needles: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for the given secret values (see [`Redactor::add`]).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut redactor = Self::default();
        for secret in secrets {
            redactor.add(secret.as_ref());
        }
        redactor
    }

    /// Adds a secret value. Besides the whole value, the credential parts inside it are added
    /// with their fragments: the password of a URL (everything between the first `:` after
    /// `scheme://` and the last `@`, which is where an unescaped `/` or `?` would split it) and
    /// the values of credential settings (`AccountKey=`, `SharedAccessSignature=`, `sig=`,
    /// `password=`, ...).
    ///
    /// The URL forms of each of these are masked too: a value written percent-encoded (a
    /// password `p%40ss` in a URL) is also searched for decoded (`p@ss`), since the receiver
    /// decodes it before it quotes it; and every value is found percent-encoded in a message
    /// (`p%40ss`, `p%40Ss`, `+` for a space), whichever characters the quoting side encoded.
    /// `user:password` needs nothing of its own: the password in it is masked.
    pub fn add(&mut self, secret: &str) {
        self.push_with_decoded(secret.trim(), MIN_SECRET_CHARS);
        self.add_parts(secret);
    }

    /// Adds the credential parts inside `value`, as [`Redactor::add`] does, but not `value`
    /// itself: for a value that is no secret as a whole, such as a URL's query
    /// (`heartbeat=5&auth_token=...` masks the token only).
    pub fn add_parts(&mut self, value: &str) {
        for part in credential_parts(value) {
            self.push_with_decoded(part, MIN_SECRET_CHARS);
            let decoded = percent_decoded(part);
            for part in std::iter::once(part).chain(decoded.as_deref()) {
                for fragment in part.split(splits_password) {
                    self.push(fragment, MIN_FRAGMENT_CHARS);
                }
            }
        }
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.needles.dedup();
    }

    /// Pushes `needle` and, when it holds percent escapes, its decoded form.
    fn push_with_decoded(&mut self, needle: &str, min_chars: usize) {
        self.push(needle, min_chars);
        if let Some(decoded) = percent_decoded(needle) {
            self.push(decoded.trim(), min_chars);
        }
    }

    fn push(&mut self, needle: &str, min_chars: usize) {
        // A value made only of the mask itself (already redacted upstream) needs no search.
        if needle.chars().count() >= min_chars && !needle.trim_matches('*').is_empty() {
            self.needles.push(needle.to_owned());
        }
    }

    /// Whether no secret value was added.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every known secret and fragment replaced by [`MASK`], then with
    /// [`mask_credentials`] applied, repeated until nothing changes: a mask can join the
    /// characters around it into a secret that itself holds `***` (`q***` in `qzz` when `zz`
    /// is a secret too), and the result must hold no known secret at all.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // Text with nothing to mask costs one pass. Every change turns at least one character
        // that is not `*` into the mask, so this ends; the bound guards that argument.
        for _ in 0..MAX_REDACTION_ROUNDS {
            let again = self.redact_once(&text);
            if again == text {
                break;
            }
            text = again;
        }
        text
    }

    fn redact_once(&self, text: &str) -> String {
        // Encoded forms first: a fragment masked on its own (`Pa55` of `Pa55%2Fw`) would
        // leave the rest of the encoded secret unrecognisable.
        let mut text = self.mask_encoded(text);
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), MASK);
            }
        }
        mask_credentials(&text)
    }

    /// `text` with every needle masked where it appears percent-encoded, in part or whole,
    /// in either case of hex digit (and with `+` for a space, the form encoding). The text is
    /// searched in its decoded form, and each match masks the encoded characters it came from.
    fn mask_encoded(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_owned();
        }
        let mut ranges = Vec::new();
        let spaced_needle = self.needles.iter().any(|needle| needle.contains(' '));
        for plus_is_space in [false, true] {
            let worth_it = if plus_is_space {
                spaced_needle && text.contains('+')
            } else {
                text.contains('%')
            };
            if !worth_it {
                continue;
            }
            let view = DecodedView::new(text, plus_is_space);
            for needle in &self.needles {
                for (start, found) in view.text.match_indices(needle.as_str()) {
                    ranges.push(view.origin_range(text, start, start + found.len()));
                }
            }
        }
        replace_ranges(text, ranges)
    }
}

/// A message with its percent escapes decoded, and for each byte of the decoded text the byte
/// of the message it came from, so a match in the decoded text masks the right characters.
struct DecodedView {
    text: String,
    /// One entry per byte of `text`, plus the message's length at the end.
    origin: Vec<usize>,
}

impl DecodedView {
    fn new(message: &str, plus_is_space: bool) -> Self {
        let raw = message.as_bytes();
        let mut bytes = Vec::with_capacity(raw.len());
        let mut from = Vec::with_capacity(raw.len() + 1);
        let mut index = 0;
        while index < raw.len() {
            from.push(index);
            match escaped_byte(&raw[index..]) {
                Some(byte) => {
                    bytes.push(byte);
                    index += 3;
                }
                None if plus_is_space && raw[index] == b'+' => {
                    bytes.push(b' ');
                    index += 1;
                }
                None => {
                    bytes.push(raw[index]);
                    index += 1;
                }
            }
        }
        from.push(raw.len());
        // Escapes may decode to bytes that are not UTF-8: each such run becomes one U+FFFD,
        // which no secret holds, so a match never spans it.
        let mut text = String::with_capacity(bytes.len());
        let mut origin = Vec::with_capacity(bytes.len() + 1);
        let mut position = 0;
        for chunk in bytes.utf8_chunks() {
            let valid = chunk.valid();
            text.push_str(valid);
            origin.extend_from_slice(&from[position..position + valid.len()]);
            position += valid.len();
            if !chunk.invalid().is_empty() {
                text.push(char::REPLACEMENT_CHARACTER);
                origin.extend([from[position]; 3]);
                position += chunk.invalid().len();
            }
        }
        origin.push(from[position]);
        Self { text, origin }
    }

    /// The byte range of `message` that the decoded range `start..end` came from, widened to
    /// whole characters.
    fn origin_range(&self, message: &str, start: usize, end: usize) -> (usize, usize) {
        let mut from = self.origin[start];
        let mut to = self.origin[end];
        while !message.is_char_boundary(from) {
            from -= 1;
        }
        while !message.is_char_boundary(to) {
            to += 1;
        }
        (from, to)
    }
}

/// The byte a `%XX` escape at the start of `bytes` stands for.
fn escaped_byte(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', high, low, ..] => {
            let digit = |c: u8| char::from(c).to_digit(16);
            let value = digit(*high)? * 16 + digit(*low)?;
            u8::try_from(value).ok()
        }
        _ => None,
    }
}

/// `text` decoded from percent escapes, when it has any and decodes to UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let view = DecodedView::new(text, false);
    (view.text != text && !view.text.contains(char::REPLACEMENT_CHARACTER)).then_some(view.text)
}

/// `text` with each byte range (possibly overlapping, in any order) replaced by [`MASK`];
/// overlapping and touching ranges become one mask.
fn replace_ranges(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut current: Option<(usize, usize)> = None;
    for (start, end) in ranges {
        match &mut current {
            Some((_, open_end)) if start <= *open_end => *open_end = (*open_end).max(end),
            _ => {
                if let Some((open_start, open_end)) = current.take() {
                    out.push_str(&text[copied..open_start]);
                    out.push_str(MASK);
                    copied = open_end;
                }
                current = Some((start, end));
            }
        }
    }
    if let Some((open_start, open_end)) = current {
        out.push_str(&text[copied..open_start]);
        out.push_str(MASK);
        copied = open_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Most passes [`Redactor::redact`] makes; a message with secrets in it needs two.
const MAX_REDACTION_ROUNDS: usize = 16;

/// `text` with credentials in well-known shapes masked, without knowing the secrets: the user
/// information of any URL (`amqp://user:pw@host` becomes `amqp://user:***@host`, a lone user
/// name that may be a token becomes `***`), and the values of credential settings in
/// connection strings and query strings (`AccountKey=***`, `sig=***`, `password=***`).
pub fn mask_credentials(text: &str) -> String {
    mask_settings(&mask_userinfo(text))
}

/// The credential parts of a secret value: URL passwords and credential settings' values.
fn credential_parts(secret: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = secret;
    while let Some(index) = rest.find("://") {
        let after = &rest[index + 3..];
        // Up to the end of this URL; a connection string's next setting starts after `;`.
        let end = after
            .find(|c: char| c == ';' || ends_value(c))
            .unwrap_or(after.len());
        let url = &after[..end];
        if let Some(at) = url.rfind('@') {
            let userinfo = &url[..at];
            match userinfo.split_once(':') {
                Some((_, password)) => parts.push(password),
                None => parts.push(userinfo),
            }
        }
        rest = &after[end..];
    }
    for (start, end) in setting_values(secret) {
        parts.push(&secret[start..end]);
    }
    parts
}

/// Masks the password (or lone user name) of every `scheme://userinfo@` in `text`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find("://") {
        let (head, tail) = rest.split_at(index + 3);
        out.push_str(head);
        let end = tail.find(ends_value).unwrap_or(tail.len());
        let url = &tail[..end];
        match url.rfind('@') {
            Some(at) => {
                let userinfo = &url[..at];
                match userinfo.split_once(':') {
                    // A user name with `/` or `?` in it is a misparse: the whole thing goes.
                    Some((user, _)) if !user.contains(['/', '?', '#']) && !user.is_empty() => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    _ => out.push_str(MASK),
                }
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Masks the values of credential settings (`name=value`) in `text`.
fn mask_settings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in setting_values(text) {
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether a setting or query parameter of this name holds a credential.
fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "sig"
        || [
            "key",
            "secret",
            "password",
            "passwd",
            "pwd",
            "token",
            "signature",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Byte ranges of the values of credential settings in `text`, in order, not overlapping.
fn setting_values(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(offset) = text[search..].find('=') {
        let equals = search + offset;
        // The name is ASCII, so it starts one whole character after the last character that
        // cannot be in a name; that character may be several bytes long.
        let name_start = text[..equals]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |(index, c)| index + c.len_utf8());
        let name = &text[name_start..equals];
        let value_start = equals + 1;
        let value_end = text[value_start..]
            .find(|c: char| c == ';' || c == '&' || ends_value(c))
            .map_or(text.len(), |index| value_start + index);
        // A name must start a word: `x-apikey=` counts, the `key` inside `monkey=` does not
        // need special handling because the whole name is matched by suffix anyway.
        let boundary = name_start == 0 || !bytes[name_start - 1].is_ascii_alphanumeric();
        if boundary && !name.is_empty() && is_credential_name(name) && value_end > value_start {
            let value = &text[value_start..value_end];
            if value != MASK {
                ranges.push((value_start, value_end));
            }
            search = value_end;
        } else {
            search = value_start;
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_split_by_an_unescaped_slash_is_removed_in_every_fragment() {
        let host = "amqp://user:TOPSECRET/x@host:5672/%2F";
        let redactor = Redactor::new([host]);
        for leak in [
            "invalid metadata `host`: has an invalid port `TOPSECRET`",
            "cannot connect to amqp://user:TOPSECRET/x@host:5672",
            "vhost `x@host:5672/%2F` of TOPSECRET/x",
        ] {
            let clean = redactor.redact(leak);
            assert!(!clean.contains("TOPSECRET"), "{clean}");
        }
    }

    #[test]
    fn a_setting_name_after_a_multibyte_character_is_found_without_slicing_inside_it() {
        // Found by the rabbitmq_metadata fuzz target: the character before the name is two
        // bytes long, and the name used to start one byte after it.
        assert_eq!(mask_settings("0.2:\u{2ff}e=ord>ue"), "0.2:\u{2ff}e=ord>ue");
        assert_eq!(
            mask_settings("ü\u{2ff}password=hunter22;x"),
            "ü\u{2ff}password=***;x"
        );
        // A non-ASCII letter does not make a word with the name: masking is the safe side.
        assert_eq!(mask_settings("épassword=hunter22"), "épassword=***");
    }

    #[test]
    fn a_secret_that_a_mask_completes_is_masked_too() {
        // The longer secret goes first and is not there; masking `zz` then spells it.
        let clean = Redactor::new(["q***", "zz"]).redact("before qzz after");
        assert_eq!(clean, "before *** after");
    }

    #[test]
    fn url_userinfo_is_masked_keeping_the_user_name() {
        assert_eq!(
            mask_credentials("failed for amqp://guest:pw123@h:5672/%2F here"),
            "failed for amqp://guest:***@h:5672/%2F here"
        );
        assert_eq!(
            mask_credentials("url (https://ghp_token@github.com/x)"),
            "url (https://***@github.com/x)"
        );
        assert_eq!(mask_credentials("amqp://guest:***@h"), "amqp://guest:***@h");
        assert_eq!(mask_credentials("http://h:1/a?b=c"), "http://h:1/a?b=c");
    }

    #[test]
    fn credential_settings_are_masked() {
        assert_eq!(
            mask_credentials("AccountName=a;AccountKey=Zm9v/+x==;EndpointSuffix=s"),
            "AccountName=a;AccountKey=***;EndpointSuffix=s"
        );
        assert_eq!(
            mask_credentials("url (http://h/q?sv=1&sig=abc%3D): refused"),
            "url (http://h/q?sv=1&sig=***): refused"
        );
        assert_eq!(mask_credentials("a=b c=d"), "a=b c=d");
        assert_eq!(mask_credentials("password="), "password=");
    }

    #[test]
    fn short_values_and_masks_are_not_searched() {
        let redactor = Redactor::new(["a", "***", ""]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("a b"), "a b");
        assert!(!format!("{:?}", Redactor::new(["hunter2"])).contains("hunter2"));
    }

    #[test]
    fn connection_string_secrets_and_their_urls() {
        let text = "QueueEndpoint=http://user:pa55/word@h:1/acct;AccountKey=c2VjcmV0a2V5";
        let redactor = Redactor::new([text]);
        let clean = redactor.redact("bad port `pa55` near c2VjcmV0a2V5 and word@h");
        assert!(!clean.contains("pa55"), "{clean}");
        assert!(!clean.contains("c2VjcmV0a2V5"), "{clean}");
    }

    #[test]
    fn a_secret_is_found_percent_encoded_in_any_case_and_in_part() {
        let redactor = Redactor::new(["p@ss/w:rd!"]);
        for quoted in [
            "p%40ss%2Fw%3Ard%21",
            "p%40ss%2fw%3ard%21",
            "p%40ss/w:rd%21",
            "%70%40%73%73%2F%77%3A%72%64%21",
        ] {
            let clean = redactor.redact(&format!("password `{quoted}` refused"));
            assert_eq!(clean, "password `***` refused", "{quoted}");
        }
        // A space may be a `+` (form encoding) or `%20`.
        let spaced = Redactor::new(["open sesame"]);
        assert_eq!(spaced.redact("pw=open+sesame;"), "pw=***;");
        assert_eq!(spaced.redact("open%20sesame"), "***");
        // Escapes that decode to no UTF-8, or half an escape, break nothing.
        assert_eq!(spaced.redact("%FF%FE open%2"), "%FF%FE open%2");
    }

    #[test]
    fn a_url_password_given_encoded_is_found_decoded_and_as_user_and_password() {
        let redactor = Redactor::new(["amqp://orders:Pa55%2Fw%3Ard%40x@rabbit:5672/%2F"]);
        for quoted in [
            "wrong password Pa55/w:rd@x",
            "login orders:Pa55/w:rd@x refused",
            "url amqp://orders:Pa55%2Fw%3Ard%40x@rabbit",
        ] {
            let clean = redactor.redact(quoted);
            assert!(!clean.contains("Pa55"), "{clean}");
        }
        assert_eq!(
            redactor.redact("login orders:Pa55/w:rd@x refused"),
            "login orders:*** refused"
        );
    }

    #[test]
    fn parts_of_a_value_are_masked_without_the_value() {
        let mut redactor = Redactor::default();
        redactor.add_parts("heartbeat=5&auth_token=Zq9t0ken");
        assert_eq!(
            redactor.redact("options heartbeat=5&auth_token=Zq9t0ken; got Zq9t0ken"),
            "options heartbeat=5&auth_token=***; got ***"
        );
    }

    #[test]
    fn a_fragment_does_not_hide_the_encoded_secret_around_it() {
        // `Pa55` is a fragment of the password (split at `/`); masked first on its own, it
        // left `***%2Fw%3Ard%40Zq9`, which no longer decodes to the password.
        let redactor = Redactor::new(["Pa55/w:rd@Zq9"]);
        assert_eq!(
            redactor.redact("encoded Pa55%2fw%3ard%40Zq9 ok"),
            "encoded *** ok"
        );
    }

    #[test]
    fn masks_of_encoded_matches_keep_multibyte_text_whole() {
        let redactor = Redactor::new(["clé secrète"]);
        assert_eq!(redactor.redact("é cl%C3%A9%20secr%c3%a8te é"), "é *** é");
    }

    /// Decodes `%XX` escapes, for checking that no encoded secret is left.
    fn decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match hex {
                Some(byte) if bytes[index] == b'%' => {
                    out.push(byte);
                    index += 3;
                }
                _ => {
                    out.push(bytes[index]);
                    index += 1;
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// However a quoting side percent-encodes a secret (any characters, either case of
        /// hex), nothing left in the message decodes to it.
        #[test]
        fn an_encoded_secret_never_survives(
            secret in "[!-$&-)+-~]{2,16}",
            encode in proptest::collection::vec(0u8..3, 16),
            before in "[ -$&-)+-~]{0,20}",
            after in "[ -$&-)+-~]{0,20}",
        ) {
            let mut quoted = String::new();
            for (index, byte) in secret.bytes().enumerate() {
                match encode[index] {
                    0 => quoted.push(char::from(byte)),
                    1 => quoted.push_str(&format!("%{byte:02X}")),
                    _ => quoted.push_str(&format!("%{byte:02x}")),
                }
            }
            let redacted = Redactor::new([&secret]).redact(&format!("{before}{quoted}{after}"));
            let decoded = decode(&redacted);
            proptest::prop_assert!(
                !decoded.windows(secret.len()).any(|window| window == secret.as_bytes()),
                "{redacted}"
            );
        }

        /// Whatever the text around it, a secret added to a redactor never survives it.
        #[test]
        fn an_added_secret_never_survives(
            // No `*`: the mask next to a partial match could spell a secret made of `*`s.
            secret in "[ -)+-~]{2,24}",
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
        ) {
            let text = format!("{before}{secret}{after}");
            let redacted = Redactor::new([&secret]).redact(&text);
            if secret.trim() == secret {
                proptest::prop_assert!(!redacted.contains(&secret), "{redacted}");
            }
        }
    }
}
