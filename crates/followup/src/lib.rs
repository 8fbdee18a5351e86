//! The follow-up dispatcher, independent of AWS: intents in, at most one delivery per
//! (feedback, playbook), every attempt recorded.

pub mod config;
pub mod handler;
pub mod notifications;
pub mod report;

pub use handler::{DeliveryMode, DispatchReport, Dispatcher};

/// What invokes the follow-up function: intents from its SQS queue, or SES bounce and
/// complaint notifications from SNS.
#[derive(Debug)]
pub enum Incoming {
    Intents(aws_lambda_events::event::sqs::SqsEvent),
    Notifications(notifications::SnsEvent),
    /// SES notifications through the SES events queue.
    QueuedNotifications(aws_lambda_events::event::sqs::SqsEvent),
}

impl Incoming {
    pub fn from_value(v: serde_json::Value) -> Result<Incoming, String> {
        // SNS records say "EventSource", SQS records "eventSource".
        let from_sns = v["Records"][0]["EventSource"].as_str() == Some("aws:sns");
        // One queue per event source mapping: the SES events queue's records come from
        // a queue named for them.
        let from_ses_queue = v["Records"][0]["eventSourceARN"]
            .as_str()
            .is_some_and(|arn| arn.contains("SesEventsQueue"));
        if from_sns {
            serde_json::from_value(v)
                .map(Incoming::Notifications)
                .map_err(|e| format!("not an SNS event: {e}"))
        } else if from_ses_queue {
            serde_json::from_value(v)
                .map(Incoming::QueuedNotifications)
                .map_err(|e| format!("not an SQS event: {e}"))
        } else {
            serde_json::from_value(v)
                .map(Incoming::Intents)
                .map_err(|e| format!("not an SQS event: {e}"))
        }
    }
}
