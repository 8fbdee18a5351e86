//! The query surface of feedloop, independent of AWS and of the HTTP adapter: routes
//! over a [`ports::QueryStore`], signed pagination cursors, GDPR erase, the dashboard.

pub mod config;
pub mod cursor;
pub mod dashboard;
pub mod handler;
pub mod memory;
pub mod openapi;
pub mod ports;
pub mod queries;
pub mod views;

pub use handler::{Api, ApiResponse};
pub use queries::{Queries, QueryError, Range};
