//! Ingest's side of follow-ups: the queue, the stored intent, attribution.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use feedloop_core::followup::outcomes::{Outcome, SentState};
use feedloop_core::followup::FollowUpIntent;
use feedloop_core::records::FeedbackRecord;
use feedloop_kit::ports::followup::*;
use feedloop_kit::ports::ingest::FollowUpSink;

use crate::item::{build_err, encode as json, s};
use crate::schema::keys;
use crate::store::{classify, transact, DynamoStore};
use feedloop_core::envelope::CustomerId;

/// Ingest's side: enqueue intents, read them back on re-delivery, attribute responses.
#[derive(Clone)]
pub struct AwsFollowUps {
    pub store: DynamoStore,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// SQS delays a message at most 15 minutes.
fn sqs_delay(until: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    (until - now).num_seconds().clamp(0, 900) as i32
}

impl FollowUpSink for AwsFollowUps {
    async fn enqueue(&self, intent: &FollowUpIntent, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(json("intent", intent)?)
            .delay_seconds(sqs_delay(intent.not_before, now))
            .send()
            .await
            .map_err(|e| classify("send follow-up intent", &e))?;
        Ok(())
    }

    async fn stored_intent(
        &self,
        customer_id: &CustomerId,
        history_key: &str,
    ) -> Result<Option<FollowUpIntent>, StoreError> {
        let customer = customer_id.as_str();
        let fb: Option<FeedbackRecord> = self
            .store
            .get_data(
                keys::customer(customer),
                keys::feedback(history_key),
                true,
                "feedback",
            )
            .await?;
        Ok(fb.and_then(|f| f.followup))
    }

    async fn pending(&self, customer_id: &CustomerId) -> Result<Option<SentState>, StoreError> {
        let customer = customer_id.as_str();
        let out = self
            .store
            .get_key(s(keys::customer(customer)), s(keys::FOLLOWUP_CAP))
            .projection_expression("#p")
            .expression_attribute_names("#p", "pending")
            .send()
            .await
            .map_err(|e| classify("get pending follow-up", &e))?;
        out.item()
            .and_then(|i| i.get("pending"))
            .and_then(|p| p.as_s().ok())
            .map(|p| {
                serde_json::from_str(p)
                    .map_err(|e| StoreError::Permanent(format!("decoding pending: {e}")))
            })
            .transpose()
    }

    async fn record_outcome(
        &self,
        customer_id: &CustomerId,
        sent: &SentState,
        o: &Outcome,
    ) -> Result<(), StoreError> {
        let customer = customer_id.as_str();
        let clear = self
            .store
            .tx_update_key(s(keys::customer(customer)), s(keys::FOLLOWUP_CAP))
            .update_expression("REMOVE #p")
            .condition_expression("#p = :sent")
            .expression_attribute_names("#p", "pending")
            .expression_attribute_values(":sent", s(json("pending follow-up", sent)?))
            .build()
            .map_err(build_err("pending clear"))?;
        let mut adds: Vec<(&str, i64)> = vec![
            ("responded", 1),
            ("hours_to_response_sum", o.hours_to_response),
        ];
        if let Some(d) = o.nps_change {
            adds.extend([("nps_change_sum", i64::from(d)), ("nps_change_n", 1)]);
        }
        if let Some(d) = o.sentiment_change {
            adds.extend([
                ("sentiment_change_milli_sum", (d * 1000.0).round() as i64),
                ("sentiment_change_n", 1),
            ]);
        }
        let stats = self.store.stats_update(&o.playbook, &o.variant, &adds)?;
        let tx = self
            .store
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(clear).build())
            .transact_items(TransactWriteItem::builder().update(stats).build());
        match transact(tx, "record follow-up outcome").await? {
            None => Ok(()),
            // Someone attributed it first (a concurrent or earlier delivery): done.
            Some(c) if c.first_check_failed() => Ok(()),
            Some(c) => Err(c.error),
        }
    }
}

impl Requeue for crate::SqsQueue {
    async fn requeue(&self, body: &str, delay: std::time::Duration) -> Result<(), StoreError> {
        self.client()
            .send_message()
            .queue_url(self.url())
            .message_body(body)
            .delay_seconds(delay.as_secs().min(900) as i32)
            .send()
            .await
            .map_err(|e| classify("requeue follow-up", &e))?;
        Ok(())
    }
}
