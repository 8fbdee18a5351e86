//! The query surface of feedloop, independent of AWS and of the HTTP adapter: routes
//! over a [`QueryStore`](feedloop_kit::ports::query::QueryStore), signed pagination cursors, GDPR erase, the dashboard.

pub mod config;
pub mod cursor;
pub mod dashboard;
pub mod handler;
pub mod openapi;
pub mod queries;
pub mod routes;
mod unsubscribe;
pub mod views;

pub use handler::{Api, ApiResponse};
pub use queries::{Queries, QueryError, Range};
