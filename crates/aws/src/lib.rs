//! AWS adapters for feedloop: DynamoDB store, SQS queue, resource schema and setup.

mod caps;
pub mod followups;
mod item;
pub mod query;
pub mod queue;
pub mod schema;
pub mod secrets;
pub mod services;
pub mod setup;
#[cfg(feature = "stacks")]
pub mod stacks;
pub mod store;

pub use queue::SqsQueue;
pub use store::DynamoStore;
