//! A tower layer that enforces the caller's `grpc-timeout` and answers DEADLINE_EXCEEDED.
//!
//! tonic's own timeout answers CANCELLED, which hides what happened; this layer sits inside it
//! and fires slightly earlier so callers see the documented code.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

/// Applies [`Deadline`] to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// Ends a request with DEADLINE_EXCEEDED shortly before its `grpc-timeout` runs out.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

/// Parses a `grpc-timeout` header value: digits followed by one unit letter.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Answer a little before the caller gives up, so the status reaches it.
fn answer_by(timeout: Duration) -> Duration {
    let margin = (timeout / 20).clamp(Duration::from_millis(1), Duration::from_millis(50));
    timeout.saturating_sub(margin).max(Duration::from_millis(1))
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let future = self.inner.call(request);
        Box::pin(async move {
            match timeout {
                None => future.await,
                Some(timeout) => match tokio::time::timeout(answer_by(timeout), future).await {
                    Ok(result) => result,
                    Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                        "no answer within the caller's deadline of {timeout:?}"
                    ))
                    .into_http()),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
        assert_eq!(parse_grpc_timeout("1234567890S"), None);
    }

    #[test]
    fn answers_before_the_deadline() {
        assert_eq!(
            answer_by(Duration::from_secs(2)),
            Duration::from_millis(1950)
        );
        assert_eq!(
            answer_by(Duration::from_millis(100)),
            Duration::from_millis(95)
        );
        assert!(answer_by(Duration::from_millis(1)) >= Duration::from_millis(1));
    }
}
