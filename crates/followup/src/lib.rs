//! The follow-up dispatcher, independent of AWS: intents in, at most one delivery per
//! (feedback, playbook), every attempt recorded.

pub mod config;
pub mod handler;
pub mod memory;
pub mod ports;

pub use handler::{DeliveryMode, DispatchReport, Dispatcher};
