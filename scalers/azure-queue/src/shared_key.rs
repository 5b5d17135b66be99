//! Shared-key authorisation for the queue service, as a per-try pipeline policy: the official
//! SDK only ships Entra ID, so this signs each try with the account key.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, Url};
use azure_core::time::{OffsetDateTime, to_rfc7231};

/// Signs every request with `Authorization: SharedKey account:signature`.
#[derive(Clone)]
pub struct SharedKeyPolicy {
    account: String,
    key: Secret,
}

impl fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .field("key", &"***")
            .finish()
    }
}

impl SharedKeyPolicy {
    /// A policy for `account` with its base64 `key`.
    pub fn new(account: impl Into<String>, key: Secret) -> Self {
        Self {
            account: account.into(),
            key,
        }
    }

    fn sign(&self, request: &mut Request) -> azure_core::Result<()> {
        let date = to_rfc7231(&OffsetDateTime::now_utc());
        request.insert_header("x-ms-date", date);
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_str().to_owned()))
            .collect();
        let content_length = request.body().len().unwrap_or(0);
        let text = string_to_sign(
            request.method().as_str(),
            &headers,
            content_length,
            &self.account,
            request.url(),
        );
        let signature = azure_core::hmac::hmac_sha256(&text, &self.key)?;
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.sign(request)?;
        match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "shared-key policy must not be the last policy of a pipeline",
            )),
        }
    }
}

/// The string the shared-key scheme signs (blob, queue and file services, version 2009-09-19
/// and later): verb, standard headers, canonical `x-ms-` headers, canonical resource.
pub fn string_to_sign(
    method: &str,
    headers: &[(String, String)],
    content_length: u64,
    account: &str,
    url: &Url,
) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value.as_str())
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut text = String::with_capacity(256);
    for part in [
        method,
        header("content-encoding"),
        header("content-language"),
        &length,
        header("content-md5"),
        header("content-type"),
        // Date stays empty: x-ms-date is always sent and takes precedence.
        "",
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        text.push_str(part);
        text.push('\n');
    }
    let mut ms_headers: Vec<(String, &str)> = headers
        .iter()
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim()))
        .collect();
    ms_headers.sort();
    for (name, value) in ms_headers {
        text.push_str(&name);
        text.push(':');
        text.push_str(value);
        text.push('\n');
    }
    text.push_str(&canonical_resource(account, url));
    text
}

/// `/account/path`, then each query parameter as `\nname:v1,v2`, names lowercased and sorted.
/// A path-style URL (the emulator's) yields the account twice, as the service expects.
fn canonical_resource(account: &str, url: &Url) -> String {
    let mut resource = format!("/{account}{}", url.path());
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.into_owned()))
        .collect();
    params.sort();
    let mut index = 0;
    while index < params.len() {
        let name = params[index].0.clone();
        let mut values = Vec::new();
        while index < params.len() && params[index].0 == name {
            values.push(params[index].1.clone());
            index += 1;
        }
        values.sort();
        resource.push('\n');
        resource.push_str(&name);
        resource.push(':');
        resource.push_str(&values.join(","));
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn get_properties_string_to_sign_on_a_path_style_url() {
        let url =
            Url::parse("http://127.0.0.1:10001/devstoreaccount1/orders?comp=metadata").unwrap();
        let text = string_to_sign(
            "GET",
            &headers(&[
                ("x-ms-version", "2026-02-06"),
                ("X-Ms-Date", "Sat, 28 Nov 2026 01:00:00 GMT"),
                ("user-agent", "x"),
                ("x-ms-client-request-id", " abc "),
            ]),
            0,
            "devstoreaccount1",
            &url,
        );
        assert_eq!(
            text,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-client-request-id:abc\n\
             x-ms-date:Sat, 28 Nov 2026 01:00:00 GMT\n\
             x-ms-version:2026-02-06\n\
             /devstoreaccount1/devstoreaccount1/orders\ncomp:metadata"
        );
    }

    #[test]
    fn body_length_content_type_and_sorted_decoded_query() {
        let url = Url::parse(
            "https://acct.queue.core.windows.net/q/messages?visibilitytimeout=30&NumOfMessages=2&a=x%2Cy&a=b",
        )
        .unwrap();
        let text = string_to_sign(
            "POST",
            &headers(&[("content-type", "application/xml")]),
            42,
            "acct",
            &url,
        );
        assert_eq!(
            text,
            "POST\n\n\n42\n\napplication/xml\n\n\n\n\n\n\n\
             /acct/q/messages\na:b,x,y\nnumofmessages:2\nvisibilitytimeout:30"
        );
    }

    #[test]
    fn signing_adds_date_and_authorization_without_showing_the_key() {
        let key = Secret::new(crate::connection::DEV_ACCOUNT_KEY);
        let policy = SharedKeyPolicy::new("devstoreaccount1", key);
        let mut request = Request::new(
            Url::parse("http://127.0.0.1:10001/devstoreaccount1/q?comp=metadata").unwrap(),
            azure_core::http::Method::Get,
        );
        policy.sign(&mut request).unwrap();
        let auth = request
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
                "authorization",
            ))
            .unwrap()
            .to_owned();
        assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
        assert_eq!(auth.len(), "SharedKey devstoreaccount1:".len() + 44);
        let shown = format!("{policy:?}");
        assert!(!shown.contains("Eby8"), "{shown}");
    }
}
