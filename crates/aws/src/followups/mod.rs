//! Follow-ups in DynamoDB and SQS, SES v2 and SNS, one adapter per port: the
//! dispatcher's attempts (`attempts`; the claim and its release are in `caps.rs`), the
//! suppression list, ingest's side of the queue (`sink`), and delivery.

mod attempts;
mod delivery;
mod history;
mod sink;
mod suppression;

pub use delivery::{AwsDelivery, STAFF_TASK_DETAIL_TYPE, STAFF_TASK_SOURCE};
pub use sink::AwsFollowUps;
