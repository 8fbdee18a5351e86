//! The follow-up dispatcher, independent of AWS: intents in, at most one delivery per
//! (feedback, playbook), every attempt recorded.

pub mod config;
pub mod handler;
pub mod memory;
pub mod notifications;
pub mod ports;
pub mod replay;

pub use handler::{DeliveryMode, DispatchReport, Dispatcher};

/// What invokes the follow-up function: intents from its SQS queue, or SES bounce and
/// complaint notifications from SNS.
#[derive(Debug)]
pub enum Incoming {
    Intents(aws_lambda_events::event::sqs::SqsEvent),
    Notifications(notifications::SnsEvent),
}

impl Incoming {
    pub fn from_value(v: serde_json::Value) -> Result<Incoming, String> {
        // SNS records say "EventSource", SQS records "eventSource".
        let from_sns = v["Records"][0]["EventSource"].as_str() == Some("aws:sns");
        if from_sns {
            serde_json::from_value(v)
                .map(Incoming::Notifications)
                .map_err(|e| format!("not an SNS event: {e}"))
        } else {
            serde_json::from_value(v)
                .map(Incoming::Intents)
                .map_err(|e| format!("not an SQS event: {e}"))
        }
    }
}
