//! The fake Kubernetes API server, now the workspace crate `ebb-fake-apiserver`
//! (tests/fake-apiserver). Tests keep `mod fake_apiserver;` and the same API.

pub use ebb_fake_apiserver::*;
