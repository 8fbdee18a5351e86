//! SES bounce and complaint notifications put addresses on the suppression list. They
//! come through a queue (SNS -> SQS, with a DLQ): a store error hands the record back
//! for a retry; a notification that cannot be read is logged with its reason and
//! counted (retrying would not make it readable).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use feedloop_core::followup::bounces::{
    parse_ses_notification, DeliveryEventKind, SOFT_BOUNCES_TO_SUPPRESS,
};
use feedloop_core::followup::suppression;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::handler::Clock;
use feedloop_kit::ports::followup::{StoreError, SuppressionList};

/// The parts of an SNS event this needs; the rest (signatures, URLs) is ignored so a
/// record missing one of them is still read.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnsRecord {
    #[serde(rename = "Sns")]
    pub sns: SnsMessage,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    #[serde(rename = "Message")]
    pub message: String,
}

feedloop_kit::counters! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
    pub struct NotificationReport {
        hard_bounces => "HardBounces",
        soft_bounces => "SoftBounces",
        complaints => "Complaints",
        /// Addresses put on the suppression list by this invocation.
        suppressed => "AddressesSuppressed",
        ignored,
        malformed => "NotificationsMalformed",
        /// Queue records handed back for a retry (a store error).
        retried => "NotificationsRetried",
    }
}

impl NotificationReport {
    pub fn emf(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        feedloop_kit::emf_line("followup", &self.metrics(), now)
    }
}

pub struct Notifications<S> {
    pub store: S,
    pub suppression_salt: String,
    pub clock: Clock,
}

impl<S: SuppressionList> Notifications<S> {
    /// SNS's direct invoke (kept for stacks deployed before the queue): a store error
    /// fails the whole invocation and Lambda's async retries take it from there.
    pub async fn handle(&self, event: &SnsEvent) -> Result<NotificationReport, StoreError> {
        let mut report = NotificationReport::default();
        for record in &event.records {
            self.one(&record.sns.message_id, &record.sns.message, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// From the SES events queue (SNS raw delivery): a record whose store call failed
    /// is a batch-item failure, retried by SQS and in the end kept in the DLQ; the
    /// others are done. Nothing is lost to an outage.
    pub async fn handle_queue(&self, event: &SqsEvent) -> (SqsBatchResponse, NotificationReport) {
        let mut report = NotificationReport::default();
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            if let Err(e) = self.one(&id, body, &mut report).await {
                warn!(sqs_message_id = %id, error = %e, "SES notification not applied; it will come again");
                report.retried += 1;
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        (response, report)
    }

    async fn one(
        &self,
        message_id: &str,
        message: &str,
        report: &mut NotificationReport,
    ) -> Result<(), StoreError> {
        let now = (self.clock)();
        let e = match parse_ses_notification(message) {
            Ok(e) => e,
            Err(reason) => {
                warn!(message_id = %message_id, %reason, "SES notification ignored");
                report.malformed += 1;
                return Ok(());
            }
        };
        for address in &e.recipients {
            let key = suppression::email_key(&self.suppression_salt, address);
            let reason = match e.kind {
                DeliveryEventKind::HardBounce => {
                    report.hard_bounces += 1;
                    Some("hard bounce".to_owned())
                }
                DeliveryEventKind::Complaint => {
                    report.complaints += 1;
                    Some(suppression::COMPLAINED.to_owned())
                }
                DeliveryEventKind::SoftBounce => {
                    report.soft_bounces += 1;
                    let seen = self.store.count_soft_bounce(&key, &e.id, now).await?;
                    (seen >= SOFT_BOUNCES_TO_SUPPRESS).then(|| format!("{seen} soft bounces"))
                }
                DeliveryEventKind::Other => None,
            };
            if let Some(reason) = reason {
                self.store.suppress(&[key], &reason, now).await?;
                report.suppressed += 1;
                // The id is SES's, the key a salted hash: no address in the log.
                info!(ses_feedback_id = %e.id, %reason, "address suppressed");
            }
        }
        if e.kind == DeliveryEventKind::Other {
            report.ignored += 1;
        }
        Ok(())
    }
}
