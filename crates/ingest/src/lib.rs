//! The ingest service, independent of AWS: SQS batch in, commits through narrow ports.

pub mod batch;
pub mod config;
pub mod handler;
pub mod memory;
pub mod poller;
pub mod ports;

pub use handler::{BatchReport, Clock, HandlerError, Ingest, Processed, Settings};
