//! The client side of the broker contract: a live broker API over HTTP(S),
//! with its retries, timeouts and bearer token. It never knows about the
//! reference broker; the two meet only in `contract`.

pub mod http;

pub use http::{HttpBroker, HttpOptions, RetryPolicy};
