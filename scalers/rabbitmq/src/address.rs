//! Broker addresses as written in the `host` key: parsing, vhost rules, escaping and masking.
//!
//! `amqp[s]://[user[:password]@]host[:port][/vhost][?options]` and
//! `http[s]://[user[:password]@]host[:port][/prefix.../vhost]`. Components are percent-encoded
//! as in any URL, so the vhost `/` is written `%2F`. An absent or empty vhost means `/`.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything except RFC 3986 unreserved characters is escaped inside one path segment or
/// userinfo part, so `/`, spaces, `%`, `@`, `:` and `?` never change a URL's structure.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a `host` value cannot be used. A `host` usually carries a password, so no message
/// quotes any part of the value (not even the part that looks like a port: with an unescaped
/// `/` in the password, that "port" is the password's beginning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The value has no `scheme://` prefix.
    #[error("is not a URL: expected amqp://, amqps://, http:// or https://")]
    NotAUrl,
    /// The scheme is none of the four supported ones.
    #[error("has an unsupported scheme: expected amqp, amqps, http or https")]
    UnsupportedScheme,
    /// No host name between `://` and the port or path.
    #[error("has no host name")]
    MissingHost,
    /// The port is not a number from 1 to 65535.
    #[error(
        "has a port that is not a number from 1 to 65535 (if the password contains `/`, `?` or \
         `#`, percent-encode them as %2F, %3F, %23)"
    )]
    InvalidPort,
    /// An `@` after the host: a password with an unescaped `/`, `?` or `#` split the URL.
    #[error(
        "has `@` after the host name: percent-encode `/`, `?`, `#` and `@` in the user name, \
         password and vhost (%2F, %3F, %23, %40)"
    )]
    AtAfterHost,
    /// A percent escape does not decode to UTF-8 text.
    #[error("has a percent-escape that is not UTF-8 text in its {0}")]
    InvalidEscape(&'static str),
}

/// URL scheme of a broker address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AMQP 0-9-1 over plain TCP.
    Amqp,
    /// AMQP 0-9-1 over TLS.
    Amqps,
    /// Management HTTP API over plain TCP.
    Http,
    /// Management HTTP API over TLS.
    Https,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amqp => "amqp",
            Self::Amqps => "amqps",
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// Whether the scheme speaks AMQP (rather than HTTP).
    pub fn is_amqp(self) -> bool {
        matches!(self, Self::Amqp | Self::Amqps)
    }

    /// Whether the scheme uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Amqps | Self::Https)
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Amqp => 5672,
            Self::Amqps => 5671,
            Self::Http => 15672,
            Self::Https => 15671,
        }
    }
}

/// A parsed broker address. Its `Debug` and `Display` mask the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    /// The scheme.
    pub scheme: Scheme,
    /// User name, decoded; `None` when the URL has none.
    pub username: Option<String>,
    /// Password, decoded; `None` when the URL has none.
    pub password: Option<String>,
    /// Host name or IP literal (IPv6 keeps its brackets).
    pub host: String,
    /// Port, defaulted from the scheme.
    pub port: u16,
    /// For HTTP: path segments before the vhost (a management API behind a path prefix),
    /// still percent-encoded. Empty for AMQP.
    pub path_prefix: String,
    /// The vhost, decoded; `/` when the URL names none.
    pub vhost: String,
    /// The query string without `?`, for AMQP connection options such as `heartbeat`.
    pub query: String,
}

impl BrokerAddress {
    /// Parses a `host` value.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or(AddressError::NotAUrl)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "amqp" => Scheme::Amqp,
            "amqps" => Scheme::Amqps,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(AddressError::UnsupportedScheme),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, query.to_owned()),
            None => (rest, String::new()),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        // RFC 3986 allows `@` in a path or query, but no vhost or AMQP option needs it
        // unescaped, while a password with a raw `/` or `?` puts its tail and `@host` there;
        // parsing on would send the password's head to DNS as a host name.
        if path.contains('@') || query.contains('@') {
            return Err(AddressError::AtAfterHost);
        }
        // The password may itself contain '@' when not escaped; the host part never does.
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let user = decode(user, "user name")?;
                let password = password.map(|p| decode(p, "password")).transpose()?;
                (Some(user).filter(|u| !u.is_empty()), password)
            }
        };
        let (host, port) = split_host_port(host_port, scheme)?;
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let (path_prefix, vhost_segment) = match scheme {
            Scheme::Amqp | Scheme::Amqps => (String::new(), path.strip_prefix('/').unwrap_or("")),
            Scheme::Http | Scheme::Https => match segments.split_last() {
                Some((last, before)) => (
                    before.iter().map(|s| format!("/{s}")).collect::<String>(),
                    *last,
                ),
                None => (String::new(), ""),
            },
        };
        let vhost = decode(vhost_segment, "vhost")?;
        Ok(Self {
            scheme,
            username,
            password,
            host,
            port,
            path_prefix,
            vhost: if vhost.is_empty() {
                "/".to_owned()
            } else {
                vhost
            },
            query,
        })
    }

    /// The address as a URL safe for logs and errors: the password replaced by `***`, then
    /// [`BrokerAddress::redact`]ed, so a token given as the user name or a credential in the
    /// query (`?token=...`) is masked as the trigger's gRPC errors mask it.
    pub fn masked(&self) -> String {
        self.redact(&self.render(true))
    }

    /// `text` with every credential of this address masked, by the one rule the scaler's
    /// errors go through ([`ebb::protocol::Redactor`]): the password, or a lone user name
    /// (which may be a token) when there is none, and the values of credential settings in
    /// the query (`auth_token=`), each in every form, and credentials in well-known shapes.
    pub fn redact(&self, text: &str) -> String {
        let secret = self.password.as_deref().or(self.username.as_deref());
        let mut redactor = ebb::protocol::Redactor::new(secret);
        redactor.add_parts(&self.query);
        redactor.redact(text)
    }

    /// The full URL including credentials, for handing to a client library only.
    pub fn with_credentials(&self) -> String {
        self.render(false)
    }

    /// `scheme://host:port` followed by the path prefix: the base of management API URLs.
    pub fn http_base(&self) -> String {
        format!(
            "{}://{}:{}{}",
            self.scheme.as_str(),
            self.host,
            self.port,
            self.path_prefix
        )
    }

    fn render(&self, mask: bool) -> String {
        let mut url = format!("{}://", self.scheme.as_str());
        if let Some(user) = &self.username {
            url.push_str(&encode_component(user));
            if self.password.is_some() {
                url.push_str(if mask { ":***" } else { ":" });
                if !mask {
                    url.push_str(&encode_component(self.password.as_deref().unwrap_or("")));
                }
            }
            url.push('@');
        }
        url.push_str(&format!(
            "{}:{}{}/{}",
            self.host,
            self.port,
            self.path_prefix,
            encode_component(&self.vhost)
        ));
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&self.query);
        }
        url
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerAddress({})", self.masked())
    }
}

fn split_host_port(host_port: &str, scheme: Scheme) -> Result<(String, u16), AddressError> {
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        // IPv6 literal: [::1]:5672
        let (inner, after) = rest.split_once(']').ok_or(AddressError::MissingHost)?;
        (format!("[{inner}]"), after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (host_port.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(AddressError::MissingHost);
    }
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(AddressError::InvalidPort),
        },
    };
    Ok((host, port))
}

fn decode(text: &str, part: &'static str) -> Result<String, AddressError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| AddressError::InvalidEscape(part))
}

/// Percent-encodes one URL path segment (a vhost or queue name): `/` becomes `%2F`, a space
/// `%20`.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Removes `secrets` (and credentials in well-known shapes) from a client library's message,
/// which might echo a URL or credential.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    ebb::protocol::Redactor::new(secrets).redact(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn amqp_with_credentials_and_default_vhost() {
        let address = BrokerAddress::parse("amqp://guest:s3cr%40t@rabbit.local").unwrap();
        assert_eq!(address.scheme, Scheme::Amqp);
        assert_eq!(address.username.as_deref(), Some("guest"));
        assert_eq!(address.password.as_deref(), Some("s3cr@t"));
        assert_eq!(address.host, "rabbit.local");
        assert_eq!(address.port, 5672);
        assert_eq!(address.vhost, "/");
        assert_eq!(address.masked(), "amqp://guest:***@rabbit.local:5672/%2F");
        assert!(!format!("{address:?}").contains("s3cr"));
        assert_eq!(
            address.with_credentials(),
            "amqp://guest:s3cr%40t@rabbit.local:5672/%2F"
        );
    }

    #[test]
    fn amqp_vhost_is_decoded_and_slash_default() {
        assert_eq!(BrokerAddress::parse("amqp://h:1/%2f").unwrap().vhost, "/");
        assert_eq!(BrokerAddress::parse("amqp://h:1/").unwrap().vhost, "/");
        let spaced = BrokerAddress::parse("amqps://h/my%20v%2Fhost?heartbeat=5").unwrap();
        assert_eq!(spaced.vhost, "my v/host");
        assert_eq!(spaced.port, 5671);
        assert_eq!(spaced.query, "heartbeat=5");
        assert_eq!(spaced.masked(), "amqps://h:5671/my%20v%2Fhost?heartbeat=5");
    }

    #[test]
    fn http_last_segment_is_vhost_and_rest_is_prefix() {
        let address = BrokerAddress::parse("https://u:p@mgmt:8443/rabbit/api-gw/orders").unwrap();
        assert_eq!(address.vhost, "orders");
        assert_eq!(address.path_prefix, "/rabbit/api-gw");
        assert_eq!(address.http_base(), "https://mgmt:8443/rabbit/api-gw");
        let plain = BrokerAddress::parse("http://localhost:15672").unwrap();
        assert_eq!(plain.vhost, "/");
        assert_eq!(plain.http_base(), "http://localhost:15672");
    }

    #[test]
    fn unescaped_at_in_password_and_ipv6() {
        let address = BrokerAddress::parse("amqp://user:p@ss@[::1]:5673/v").unwrap();
        assert_eq!(address.password.as_deref(), Some("p@ss"));
        assert_eq!(address.host, "[::1]");
        assert_eq!(address.port, 5673);
    }

    #[test]
    fn errors_never_echo_credentials() {
        for bad in [
            "user:hunter2@host",
            "ftp://user:hunter2@host",
            "amqp://user:hunter2@",
            "amqp://user:hunter2@h:99999",
            "hunter2://h",
            "amqp://user:hunter2/x@host:5672/%2F",
            "amqp://user:hunter2?x@host:5672/%2F",
            "amqp://user:hunter2",
            "http://user:hunter2#x/y@host/%2F",
        ] {
            let error = BrokerAddress::parse(bad).unwrap_err();
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        assert_eq!(
            BrokerAddress::parse("ftp://h").unwrap_err(),
            AddressError::UnsupportedScheme
        );
        assert_eq!(
            BrokerAddress::parse("amqp://h:0").unwrap_err(),
            AddressError::InvalidPort
        );
        assert_eq!(
            BrokerAddress::parse("amqp://user:TOPSECRET/x@host:5672/%2F").unwrap_err(),
            AddressError::AtAfterHost
        );
        assert_eq!(
            BrokerAddress::parse("amqp://u:p@h/v%40x?heartbeat=5")
                .unwrap()
                .vhost,
            "v@x"
        );
    }

    #[test]
    fn masked_hides_a_token_user_name_and_credential_query_settings() {
        let address =
            BrokerAddress::parse("amqp://Zq9TOKENx7@rabbit:5672/%2F?auth_token=Zq9QUERYx7")
                .unwrap();
        let masked = address.masked();
        assert!(!masked.contains("Zq9"), "{masked}");
        assert_eq!(masked, "amqp://***@rabbit:5672/%2F?auth_token=***");
        let text = "lapin: connection to amqp://Zq9TOKENx7@rabbit refused (Zq9QUERYx7)";
        assert!(
            !address.redact(text).contains("Zq9"),
            "{}",
            address.redact(text)
        );
    }

    #[test]
    fn component_encoding_escapes_structure() {
        assert_eq!(encode_component("/"), "%2F");
        assert_eq!(encode_component("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_component("q.name-1_~"), "q.name-1_~");
        assert_eq!(
            scrub("failed for amqp://u:pw123@h", &["pw123"]),
            "failed for amqp://u:***@h"
        );
    }
}
