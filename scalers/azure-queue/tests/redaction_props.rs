//! The redaction rule as a property: for random secrets placed in random, often malformed,
//! connection strings and SAS URLs (as a key, a signature, a URL password, a stray part), no
//! error of the connection parser quotes the secret or its first fragment.
#![allow(clippy::unwrap_used)]

use azure_core::http::Url;
use ebb_azure_queue_scaler::connection::{DEV_QUEUE_ENDPOINT, parse_connection};
use proptest::prelude::*;

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/?#@:%+= ]{0,14}".prop_map(|tail| format!("SKq7{tail}"))
}

fn head(secret: &str) -> &str {
    secret
        .split(['/', '?', '#', '@', ':', ' ', '%', '=', '+'])
        .next()
        .unwrap_or(secret)
}

fn connection() -> impl Strategy<Value = (String, String)> {
    let templates = vec![
        "AccountName=acct;AccountKey={s}",
        "AccountName=acct;AccountKey={s}!",
        "AccountKey={s}",
        "AccountName=acct;{s}",
        "{s}",
        "QueueEndpoint=http://user:{s}@127.0.0.1:10001/a;AccountName=a;AccountKey=a2V5",
        "QueueEndpoint=http://{s}@h/a;AccountName=a;AccountKey=a2V5",
        "QueueEndpoint={s};AccountName=a;AccountKey=a2V5",
        "QueueEndpoint=http://h:{s}/a;AccountName=a;AccountKey=a2V5",
        "DefaultEndpointsProtocol={s};AccountName=a;AccountKey=a2V5",
        "AccountName=a;SharedAccessSignature=sig={s};QueueEndpoint=nope",
        "AccountName={s};AccountKey=a2V5",
        "AccountName=a;AccountKey=a2V5;EndpointSuffix={s}",
        "https://u:{s}@acct.queue.core.windows.net/q?sig=x",
        "https://acct.queue.core.windows.net/q?sv=1&x={s}",
        "http://{s}/q?sig=x",
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://u:{s}@h",
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri={s}",
    ];
    (prop::sample::select(templates), secret())
        .prop_map(|(template, secret)| (template.replace("{s}", &secret), secret))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn connection_errors_quote_no_secret((text, secret) in connection()) {
        let dev = Url::parse(DEV_QUEUE_ENDPOINT).unwrap();
        if let Err(error) = parse_connection(&text, Some("core.windows.net"), &dev) {
            let message = error.to_string();
            prop_assert!(!message.contains(head(&secret)), "{message}");
            prop_assert!(
                !message.to_ascii_lowercase().contains(&head(&secret).to_ascii_lowercase()),
                "{message}"
            );
        }
    }
}
