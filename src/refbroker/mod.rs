//! The reference broker: oneclick's behaviour as poolform models it (engine),
//! its durable state (store), its HTTP API (server), and the engine serving
//! the `Broker` trait in-process (host): persisted to a state file (embedded)
//! or in memory on a virtual clock with a call log (recording, the test
//! double and rehearsal sandbox). It imports only the broker contract, never
//! config, plan or apply.

pub mod embedded;
pub mod engine;
pub mod host;
pub mod recording;
pub mod server;
pub mod store;
mod wal;

pub use embedded::EmbeddedBroker;
pub use engine::Engine;
pub use host::{Call, Operation};
pub use recording::{Concurrency, Fault, Recording};
pub use server::{ServeOptions, router};
pub use store::{Store, StoreError};
