//! Storage connection strings and SAS URLs, resolved to a queue service endpoint and a
//! credential. Pure: no I/O.

use std::fmt;

use azure_core::credentials::Secret;
use azure_core::http::Url;

/// The emulator's well-known account (public, in Microsoft's documentation).
pub const DEV_ACCOUNT_NAME: &str = "devstoreaccount1";
/// The emulator's well-known account key (public, in Microsoft's documentation).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Where `UseDevelopmentStorage=true` finds the emulator's queue service.
pub const DEV_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";

/// Why a connection string or SAS URL cannot be used. The whole text is a secret, so no
/// message quotes any part of it, not even settings that are harmless alone: a value can hold
/// a credential by mistake (`QueueEndpoint=http://user:pass@...`), or a misplaced `;` can make
/// a piece of a key look like another setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// A `;`-separated part is not `Name=value`.
    #[error("part {0} of the connection string is not `Name=value`")]
    MalformedPart(usize),
    /// A setting the endpoint or credential needs is absent.
    #[error("the connection string has no {0}")]
    Missing(&'static str),
    /// The connection string names neither an account key nor a SAS.
    #[error("the connection string has neither AccountKey nor SharedAccessSignature")]
    NoCredential,
    /// A setting has a value that cannot be used.
    #[error("the connection string's {name} {reason}")]
    BadValue {
        /// The setting.
        name: &'static str,
        /// What is wrong with it, in words that quote nothing.
        reason: &'static str,
    },
    /// An account key is not base64.
    #[error("the connection string's AccountKey is not base64")]
    BadAccountKey,
    /// A SAS URL that cannot be parsed or carries no signature.
    #[error("the SAS URL {0}")]
    BadSasUrl(&'static str),
    /// A URL carries a user name or password, which the storage service never uses and
    /// which would end up in logs with the URL.
    #[error(
        "the {0} has a user name or password (`user:pass@`): storage URLs take none; put \
         credentials in AccountKey or SharedAccessSignature"
    )]
    UserInfo(&'static str),
    /// No storage suffix is known for the cloud.
    #[error("no endpoint suffix: set EndpointSuffix or QueueEndpoint, or `endpointSuffix`")]
    NoSuffix,
}

/// How requests to the queue service are authorised.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageCredential {
    /// Shared key: every request is signed with the account key.
    SharedKey {
        /// The storage account name.
        account: String,
        /// The base64 account key.
        key: Secret,
    },
    /// A shared access signature, as a query string without the leading `?`.
    Sas(Secret),
}

impl fmt::Debug for StorageCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SharedKey { account, .. } => f
                .debug_struct("SharedKey")
                .field("account", account)
                .field("key", &"***")
                .finish(),
            Self::Sas(_) => f.write_str("Sas(***)"),
        }
    }
}

/// A queue service endpoint and the credential for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageAccess {
    /// The queue service URL, without query and without a trailing slash, e.g.
    /// `https://acct.queue.core.windows.net` or `http://127.0.0.1:10001/devstoreaccount1`.
    pub service_url: Url,
    /// A queue URL given directly by a SAS URL, when it named the queue itself.
    pub queue_url: Option<Url>,
    /// The credential.
    pub credential: StorageCredential,
}

/// Parses a connection string or a SAS URL. `default_suffix` (e.g. `core.windows.net`) is
/// used when the connection string names neither QueueEndpoint nor EndpointSuffix;
/// `dev_endpoint` is where `UseDevelopmentStorage=true` points.
pub fn parse_connection(
    text: &str,
    default_suffix: Option<&str>,
    dev_endpoint: &Url,
) -> Result<StorageAccess, ConnectionError> {
    let text = text.trim();
    if starts_with_ignore_case(text, "https://") || starts_with_ignore_case(text, "http://") {
        return parse_sas_url(text);
    }
    let settings = Settings::parse(text)?;
    if settings
        .get("UseDevelopmentStorage")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    {
        let service_url = match settings.get("DevelopmentStorageProxyUri") {
            Some(proxy) => {
                let base = parse_url("DevelopmentStorageProxyUri", proxy)?;
                join_path(&base, DEV_ACCOUNT_NAME)
            }
            None => dev_endpoint.clone(),
        };
        return Ok(StorageAccess {
            service_url: trim_service_url(service_url),
            queue_url: None,
            credential: StorageCredential::SharedKey {
                account: DEV_ACCOUNT_NAME.to_owned(),
                key: Secret::new(DEV_ACCOUNT_KEY),
            },
        });
    }
    let account = settings.get("AccountName").map(str::to_owned);
    let service_url = match settings.get("QueueEndpoint") {
        Some(endpoint) => parse_url("QueueEndpoint", endpoint)?,
        None => {
            let account = account
                .as_deref()
                .ok_or(ConnectionError::Missing("AccountName"))?;
            let protocol = settings.get("DefaultEndpointsProtocol").unwrap_or("https");
            if !protocol.eq_ignore_ascii_case("https") && !protocol.eq_ignore_ascii_case("http") {
                return Err(ConnectionError::BadValue {
                    name: "DefaultEndpointsProtocol",
                    reason: "is neither https nor http",
                });
            }
            let suffix = settings
                .get("EndpointSuffix")
                .or(default_suffix)
                .ok_or(ConnectionError::NoSuffix)?;
            let suffix = suffix.trim_start_matches('.');
            let suffix = suffix.strip_prefix("queue.").unwrap_or(suffix);
            if !is_dns_name(account) {
                return Err(ConnectionError::BadValue {
                    name: "AccountName",
                    reason: "is not a storage account name (letters and digits)",
                });
            }
            if !is_dns_name(suffix) {
                return Err(ConnectionError::BadValue {
                    name: "EndpointSuffix",
                    reason: "is not a DNS suffix (letters, digits, dots and dashes)",
                });
            }
            let text = format!(
                "{}://{account}.queue.{suffix}",
                protocol.to_ascii_lowercase()
            );
            let url = Url::parse(&text).map_err(|_| ConnectionError::BadValue {
                name: "EndpointSuffix",
                reason: "with AccountName does not make a valid host name",
            })?;
            // A host name cannot hold `@`, but an account name or suffix written with
            // `user:pass@` would put them in the URL's user information.
            if has_userinfo(&url) {
                return Err(ConnectionError::UserInfo("AccountName or EndpointSuffix"));
            }
            url
        }
    };
    let credential = if let Some(key) = settings.get("AccountKey") {
        let account = account.ok_or(ConnectionError::Missing("AccountName"))?;
        if azure_core::base64::decode(key).is_err() {
            return Err(ConnectionError::BadAccountKey);
        }
        StorageCredential::SharedKey {
            account,
            key: Secret::new(key.to_owned()),
        }
    } else if let Some(sas) = settings.get("SharedAccessSignature") {
        StorageCredential::Sas(Secret::new(sas.trim_start_matches('?').to_owned()))
    } else {
        return Err(ConnectionError::NoCredential);
    };
    Ok(StorageAccess {
        service_url: trim_service_url(service_url),
        queue_url: None,
        credential,
    })
}

/// A SAS URL of the queue service (`https://acct.queue.core.windows.net/?sv=..&sig=..`) or of
/// one queue (`.../orders?sv=..`). Which one it is is decided later, against the queue name.
fn parse_sas_url(text: &str) -> Result<StorageAccess, ConnectionError> {
    let mut url = Url::parse(text).map_err(|_| ConnectionError::BadSasUrl("is not a URL"))?;
    if has_userinfo(&url) {
        return Err(ConnectionError::UserInfo("SAS URL"));
    }
    let sas = url
        .query()
        .map(str::to_owned)
        .ok_or(ConnectionError::BadSasUrl("has no query (no SAS)"))?;
    if !url.query_pairs().any(|(name, _)| name == "sig") {
        return Err(ConnectionError::BadSasUrl("has no `sig` parameter"));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(StorageAccess {
        service_url: trim_service_url(url.clone()),
        queue_url: Some(trim_service_url(url)),
        credential: StorageCredential::Sas(Secret::new(sas)),
    })
}

impl StorageAccess {
    /// The URL of `queue` (no query): a SAS URL that already names the queue is used as is.
    pub fn queue_url(&self, queue: &str) -> Url {
        if let Some(url) = &self.queue_url
            && url.path_segments().and_then(|mut s| s.next_back()) == Some(queue)
        {
            return url.clone();
        }
        join_path(&self.service_url, queue)
    }
}

/// Appends one path segment to a service URL that has no trailing slash.
pub fn join_path(base: &Url, segment: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(segment);
    }
    url
}

fn trim_service_url(mut url: Url) -> Url {
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    url
}

fn parse_url(name: &'static str, text: &str) -> Result<Url, ConnectionError> {
    match Url::parse(text) {
        Ok(url) if has_userinfo(&url) => Err(ConnectionError::UserInfo(name)),
        Ok(url) if matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base() => Ok(url),
        Ok(_) => Err(ConnectionError::BadValue {
            name,
            reason: "is not an http:// or https:// URL",
        }),
        Err(_) => Err(ConnectionError::BadValue {
            name,
            reason: "is not a URL (percent-encode any `/`, `?`, `#` or `@` inside a part)",
        }),
    }
}

/// User information in a URL, or an `@` after its host: the sign of a password whose `/`,
/// `?` or `#` was not escaped, which moved the password's head into the host and port.
fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty()
        || url.password().is_some()
        || url.path().contains('@')
        || url.query().is_some_and(|query| query.contains('@'))
}

/// Letters, digits, dots and dashes only: an account name or endpoint suffix that can hold
/// no URL structure.
pub fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// `Name=value` settings; names are case-insensitive, values keep their `=`s.
struct Settings(Vec<(String, String)>);

impl Settings {
    fn parse(text: &str) -> Result<Self, ConnectionError> {
        let mut settings = Vec::new();
        for (index, part) in text.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part
                .split_once('=')
                .ok_or(ConnectionError::MalformedPart(index + 1))?;
            settings.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Self(settings))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Url {
        Url::parse(DEV_QUEUE_ENDPOINT).unwrap()
    }

    fn parse(text: &str) -> Result<StorageAccess, ConnectionError> {
        parse_connection(text, Some("core.windows.net"), &dev())
    }

    #[test]
    fn development_storage_uses_the_well_known_account() {
        let access = parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            access.service_url.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(
            access.queue_url("orders").as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/orders"
        );
        let StorageCredential::SharedKey { account, key } = access.credential else {
            panic!("expected a shared key");
        };
        assert_eq!(account, DEV_ACCOUNT_NAME);
        assert_eq!(key.secret(), DEV_ACCOUNT_KEY);
        let proxied =
            parse("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://10.1.2.3:7777")
                .unwrap();
        assert_eq!(
            proxied.service_url.as_str(),
            "http://10.1.2.3:7777/devstoreaccount1"
        );
    }

    #[test]
    fn account_key_with_default_suffix_and_protocol() {
        let access =
            parse("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;").unwrap();
        assert_eq!(
            access.queue_url("q1").as_str(),
            "https://acct.queue.core.windows.net/q1"
        );
        assert!(matches!(
            access.credential,
            StorageCredential::SharedKey { .. }
        ));
    }

    #[test]
    fn endpoint_suffix_and_queue_endpoint() {
        let access =
            parse("AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn").unwrap();
        assert_eq!(
            access.service_url.as_str(),
            "https://acct.queue.core.chinacloudapi.cn/"
        );
        assert_eq!(
            access.queue_url("q").as_str(),
            "https://acct.queue.core.chinacloudapi.cn/q"
        );
        let access = parse(
            "accountname=devstoreaccount1;accountkey=a2V5;QueueEndpoint=http://127.0.0.1:1234/devstoreaccount1/",
        )
        .unwrap();
        assert_eq!(
            access.queue_url("q").as_str(),
            "http://127.0.0.1:1234/devstoreaccount1/q"
        );
        let no_suffix = parse_connection("AccountName=a;AccountKey=a2V5", None, &dev());
        assert_eq!(no_suffix.unwrap_err(), ConnectionError::NoSuffix);
    }

    #[test]
    fn shared_access_signature_in_a_connection_string() {
        let access =
            parse("QueueEndpoint=https://acct.queue.core.windows.net;SharedAccessSignature=?sv=1&sig=abc%3D")
                .unwrap();
        let StorageCredential::Sas(sas) = &access.credential else {
            panic!("expected a SAS");
        };
        assert_eq!(sas.secret(), "sv=1&sig=abc%3D");
    }

    #[test]
    fn sas_urls_of_service_and_queue() {
        let service = parse("https://acct.queue.core.windows.net/?sv=2024&sig=s1g").unwrap();
        assert_eq!(
            service.queue_url("jobs").as_str(),
            "https://acct.queue.core.windows.net/jobs"
        );
        let queue = parse("http://127.0.0.1:10001/devstoreaccount1/jobs?sv=2024&sig=s1g").unwrap();
        assert_eq!(
            queue.queue_url("jobs").as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs"
        );
        assert_eq!(
            parse("https://acct.queue.core.windows.net/?sv=2024").unwrap_err(),
            ConnectionError::BadSasUrl("has no `sig` parameter")
        );
    }

    #[test]
    fn errors_never_echo_secrets() {
        let secret = "c3VwZXJzZWNyZXQ=";
        for text in [
            format!("AccountKey={secret}"),
            format!("AccountName=a;SharedAccessSignature=sig={secret};QueueEndpoint=nope"),
            format!("AccountName=a;AccountKey={secret}x!"),
            format!("AccountName=a;{secret}"),
            format!(
                "QueueEndpoint=http://user:{secret}@127.0.0.1:1/a;AccountName=a;AccountKey=a2V5"
            ),
            format!("QueueEndpoint=http://user:{secret}/x@h/a;AccountName=a;AccountKey=a2V5"),
            format!("QueueEndpoint=ftp://{secret};AccountName=a;AccountKey=a2V5"),
            format!("DefaultEndpointsProtocol={secret};AccountName=a;AccountKey=a2V5"),
            format!("https://u:{secret}@acct.queue.core.windows.net/q?sig=x"),
            format!("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://{secret}@h"),
        ] {
            let error = parse(&text).unwrap_err();
            assert!(!error.to_string().contains("c3VwZXJzZWNyZXQ"), "{error}");
        }
        let access = parse(&format!("AccountName=a;AccountKey={secret}")).unwrap();
        assert!(!format!("{access:?}").contains("c3VwZXJzZWNyZXQ"));
    }

    #[test]
    fn malformed_parts_and_missing_credentials() {
        assert_eq!(
            parse("AccountName=a;garbage").unwrap_err(),
            ConnectionError::MalformedPart(2)
        );
        assert_eq!(
            parse("AccountName=a").unwrap_err(),
            ConnectionError::NoCredential
        );
        assert_eq!(
            parse("AccountKey=a2V5").unwrap_err(),
            ConnectionError::Missing("AccountName")
        );
        assert_eq!(
            parse("AccountName=a;AccountKey=not base64!").unwrap_err(),
            ConnectionError::BadAccountKey
        );
    }
}
