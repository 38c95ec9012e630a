//! The reference broker: oneclick's behaviour as poolform models it (engine),
//! its durable state (store) and its HTTP API (server). It imports only the
//! broker wire types, never config, plan or apply.

pub mod embedded;
pub mod engine;
pub mod server;
pub mod store;

pub use embedded::EmbeddedBroker;
pub use engine::Engine;
pub use server::{ServeOptions, router};
pub use store::{Store, StoreError};
