//! The Azure Queue demo: a queue worker in the style of an Azure Functions queue trigger, the
//! publisher that fills its queue, and the reporter that checks the outcome.
//!
//! The worker and the publisher open queues through the Azure Queue scaler's own client code
//! (connection-string parsing, shared-key signing, one HTTP client), so the demo talks to
//! Azure Storage exactly as the scaler measuring it does.

pub mod handler;
pub mod queues;
pub mod report;
pub mod worker;
