//! The ingest service, independent of AWS: SQS batch in, commits through narrow ports.

pub mod config;
pub mod handler;
pub mod poller;

pub use feedloop_kit::Clock;
pub use handler::{BatchReport, HandlerError, Ingest, Processed, Settings};
