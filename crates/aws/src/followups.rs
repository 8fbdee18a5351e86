//! Follow-ups in DynamoDB and SQS, SES v2 and SNS. The claim and its release are in
//! `caps.rs`.
//!
//! Long because the dispatcher's claim, release, record and suppression items are one
//! conditional-write protocol over the table; its tests are at the end.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use feedloop_core::envelope::CustomerInfo;
use feedloop_core::followup::outcomes::{Outcome, SentState};
use feedloop_core::followup::plan::Message;
use feedloop_core::followup::{suppression, FollowUpIntent, Purpose};
use feedloop_core::pii;
use feedloop_core::profile::Profile;
use feedloop_core::records::FeedbackRecord;
use feedloop_kit::ports::followup::*;
use feedloop_kit::ports::ingest::FollowUpSink;

use crate::schema::{self, keys};
use crate::store::{cancellation_codes, classify, DynamoStore};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Permanent(format!("encoding {what}: {e}")))
}

impl DynamoStore {
    fn build_err(what: &str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError + '_ {
        move |e| StoreError::Permanent(format!("building {what}: {e}"))
    }

    /// A customer's follow-up history (every attempt with its status), newest last.
    /// Every attempt of a customer, oldest first: all pages of the query (one page
    /// stops at 1 MB).
    pub async fn followup_history(&self, customer: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut v: Vec<AttemptRecord> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :fu)")
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_names("#sk", schema::SK)
                .expression_attribute_values(":pk", s(keys::customer(customer)))
                .expression_attribute_values(":fu", s(keys::FOLLOWUP_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("query follow-up history", &e))?;
            v.extend(
                out.items()
                    .iter()
                    .filter_map(|i| i.get("data")?.as_s().ok())
                    .filter_map(|d| serde_json::from_str::<AttemptRecord>(d).ok()),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        v.sort_by_key(|a| a.at);
        Ok(v)
    }

    /// Per (playbook, variant) A/B counters.
    pub async fn followup_stats(
        &self,
    ) -> Result<feedloop_core::followup::outcomes::VariantRows, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", schema::PK)
            .expression_attribute_values(":pk", s(keys::FOLLOWUP_STATS))
            .send()
            .await
            .map_err(|e| classify("query follow-up stats", &e))?;
        let num = |i: &HashMap<String, AttributeValue>, k: &str| -> i64 {
            i.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(out
            .items()
            .iter()
            .filter_map(|i| {
                let pb = i.get("playbook")?.as_s().ok()?.clone();
                let variant = i.get("variant")?.as_s().ok()?.clone();
                let st = feedloop_core::followup::outcomes::VariantStats {
                    sent: num(i, "sent") as u64,
                    responded: num(i, "responded") as u64,
                    nps_change_sum: num(i, "nps_change_sum"),
                    nps_change_n: num(i, "nps_change_n") as u64,
                    sentiment_change_milli_sum: num(i, "sentiment_change_milli_sum"),
                    sentiment_change_n: num(i, "sentiment_change_n") as u64,
                };
                Some((pb, variant, st))
            })
            .collect())
    }

    fn stats_update(
        &self,
        playbook: &str,
        variant: &str,
        adds: &[(&str, i64)],
    ) -> Result<Update, StoreError> {
        let mut u = Update::builder()
            .table_name(self.table())
            .key(schema::PK, s(keys::FOLLOWUP_STATS))
            .key(schema::SK, s(keys::followup_stats(playbook, variant)))
            .expression_attribute_names("#pb", "playbook")
            .expression_attribute_names("#va", "variant")
            .expression_attribute_values(":pb", s(playbook))
            .expression_attribute_values(":va", s(variant));
        let mut clauses = Vec::new();
        for (i, (k, v)) in adds.iter().enumerate() {
            clauses.push(format!("#a{i} :a{i}"));
            u = u
                .expression_attribute_names(format!("#a{i}"), *k)
                .expression_attribute_values(format!(":a{i}"), n(v));
        }
        u.update_expression(format!(
            "SET #pb = :pb, #va = :va ADD {}",
            clauses.join(", ")
        ))
        .build()
        .map_err(Self::build_err("stats update"))
    }
}

impl FollowUpStore for DynamoStore {
    async fn contact(&self, customer: &str) -> Result<Option<CustomerInfo>, StoreError> {
        // Consistent: an opt-out written a moment ago must be seen.
        let p: Option<Profile> = self
            .get_data(
                keys::customer(customer),
                keys::PROFILE.into(),
                true,
                "profile",
            )
            .await?;
        Ok(p.and_then(|p| p.contact.map(|c| c.value)))
    }

    async fn suppressed_among(&self, hashes: &[String]) -> Result<Vec<String>, StoreError> {
        let mut ka = KeysAndAttributes::builder().consistent_read(true);
        for h in hashes {
            ka = ka.keys(HashMap::from([
                (schema::PK.to_owned(), s(keys::suppression(h))),
                (schema::SK.to_owned(), s(keys::SUPPRESSION)),
            ]));
        }
        let out = self
            .client()
            .batch_get_item()
            .request_items(
                self.table(),
                ka.build().map_err(Self::build_err("suppression lookup"))?,
            )
            .send()
            .await
            .map_err(|e| classify("batch get suppression", &e))?;
        // Unprocessed keys mean "not known yet": retry rather than contact someone
        // who may be suppressed.
        if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Throttled(
                "suppression lookup unprocessed".into(),
            ));
        }
        let found = out
            .responses()
            .and_then(|r| r.get(self.table()))
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get(schema::PK)?.as_s().ok())
                    .filter_map(|pk| hashes.iter().find(|h| *pk == keys::suppression(h)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(found)
    }

    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.claim_attempt(r).await
    }

    async fn release(&self, r: &ClaimRequest<'_>, keep_attempt: bool) -> Result<(), StoreError> {
        self.release_attempt(r, keep_attempt).await
    }

    async fn record(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        // A duplicate intent must not turn an earlier outcome into this one.
        self.write_attempt(a, AttemptGuard::Absent)
            .await
            .map(|_| ())
    }

    async fn record_claimed(&self, a: &AttemptRecord) -> Result<Recorded, StoreError> {
        if self.write_attempt(a, AttemptGuard::Claimed).await? {
            return Ok(Recorded::Written);
        }
        // Which way the condition failed: recorded already, or deleted by an erasure.
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(schema::PK, s(keys::customer(a.customer_id.as_str())))
            .key(
                schema::SK,
                s(keys::followup(a.feedback_id.as_str(), &a.playbook)),
            )
            .consistent_read(true)
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .map_err(|e| classify("read follow-up attempt", &e))?;
        Ok(if out.item().is_some() {
            Recorded::AlreadyRecorded
        } else {
            Recorded::ClaimGone
        })
    }

    async fn settle_interrupted(
        &self,
        a: &AttemptRecord,
        claimed_before: DateTime<Utc>,
    ) -> Result<Settle, StoreError> {
        let key = (
            s(keys::customer(a.customer_id.as_str())),
            s(keys::followup(a.feedback_id.as_str(), &a.playbook)),
        );
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(self.attempt_item(a)?))
            // Claim times are RFC 3339 in UTC: string order is time order.
            .condition_expression("#status = :claimed AND #claimed_at < :before")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#claimed_at", "claimed_at")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":before", s(claimed_before.to_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => return Ok(Settle::Settled),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(classify("settle interrupted follow-up", &e)),
        }
        // Which half of the condition failed: recorded since, or claimed recently.
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(schema::PK, key.0)
            .key(schema::SK, key.1)
            .consistent_read(true)
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .map_err(|e| classify("read follow-up attempt", &e))?;
        let status = out
            .item()
            .and_then(|i| i.get("status"))
            .and_then(|v| v.as_s().ok());
        Ok(match status.map(String::as_str) {
            Some("claimed") => Settle::InFlight,
            _ => Settle::Final,
        })
    }
}

/// What must hold of the attempt's item for a record to be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AttemptGuard {
    /// No item yet: an outcome reached without a claim (a skip, a template failure).
    Absent,
    /// This dispatch's claim, not yet recorded.
    Claimed,
}

impl DynamoStore {
    /// The attempt, and for a sent message the customer's pending follow-up and the
    /// variant's sent count, in one transaction; false when the guard failed and
    /// nothing was written.
    async fn write_attempt(
        &self,
        a: &AttemptRecord,
        guard: AttemptGuard,
    ) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(self.attempt_item(a)?))
            .expression_attribute_names("#pk", schema::PK);
        let put = match guard {
            AttemptGuard::Absent => put.condition_expression("attribute_not_exists(#pk)"),
            AttemptGuard::Claimed => put
                .condition_expression("attribute_exists(#pk) AND #status = :claimed")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":claimed", s("claimed")),
        };
        let put = put.build().map_err(Self::build_err("follow-up record"))?;
        let mut txn = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build());
        if let Some(sent) = &a.sent {
            let pending = Update::builder()
                .table_name(self.table())
                .key(schema::PK, s(keys::customer(a.customer_id.as_str())))
                .key(schema::SK, s(keys::FOLLOWUP_CAP))
                .update_expression("SET #pending = :pending")
                .expression_attribute_names("#pending", "pending")
                .expression_attribute_values(":pending", s(json("pending follow-up", sent)?))
                .build()
                .map_err(Self::build_err("pending update"))?;
            txn = txn
                .transact_items(TransactWriteItem::builder().update(pending).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .update(self.stats_update(&sent.playbook, &sent.variant, &[("sent", 1)])?)
                        .build(),
                );
        }
        match txn.send().await {
            Ok(_) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(c) if c.first().is_some_and(|c| c == "ConditionalCheckFailed") => Ok(false),
                _ => Err(classify("record follow-up", &e)),
            },
        }
    }
}

impl DynamoStore {
    /// The history item of an attempt with its outcome.
    fn attempt_item(
        &self,
        a: &AttemptRecord,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        Ok(HashMap::from([
            (
                schema::PK.to_owned(),
                s(keys::customer(a.customer_id.as_str())),
            ),
            (
                schema::SK.to_owned(),
                s(keys::followup(a.feedback_id.as_str(), &a.playbook)),
            ),
            ("type".to_owned(), s("followup")),
            ("playbook".to_owned(), s(&a.playbook)),
            ("feedback_id".to_owned(), s(a.feedback_id.as_str())),
            ("status".to_owned(), s(a.status.as_str())),
            ("at".to_owned(), s(a.at.to_rfc3339())),
            ("data".to_owned(), s(json("follow-up", a)?)),
            (schema::TTL_ATTRIBUTE.to_owned(), self.expires_at_pub(a.at)),
        ]))
    }
}

impl SuppressionList for DynamoStore {
    /// Put hashes on the suppression list (no personal data; kept forever).
    async fn suppress(
        &self,
        keys_: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for k in keys_ {
            let put = self
                .client()
                .put_item()
                .table_name(self.table())
                .item(schema::PK, s(keys::suppression(k)))
                .item(schema::SK, s(keys::SUPPRESSION))
                .item("type", s("suppression"))
                .item("reason", s(reason))
                .item("since", s(now.to_rfc3339()));
            // A reason consent can lift never replaces one it cannot (a bounce, an
            // erasure): an unsubscribe after a bounce leaves the bounce in charge. The
            // provider's verdicts and erasures always land.
            let put = if suppression::liftable_by_consent(reason) {
                put.condition_expression(
                    "attribute_not_exists(#reason) OR #reason = :unsubscribed OR begins_with(#reason, :complaint)",
                )
                .expression_attribute_names("#reason", "reason")
                .expression_attribute_values(":unsubscribed", s(suppression::UNSUBSCRIBED))
                .expression_attribute_values(":complaint", s(suppression::COMPLAINED))
            } else {
                put
            };
            match put.send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(classify("put suppression", &e)),
            }
        }
        Ok(())
    }

    async fn lift(&self, keys_: &[String]) -> Result<u32, StoreError> {
        let mut lifted = 0;
        for k in keys_ {
            let out = self
                .client()
                .delete_item()
                .table_name(self.table())
                .key(schema::PK, s(keys::suppression(k)))
                .key(schema::SK, s(keys::SUPPRESSION))
                .condition_expression("#reason = :unsubscribed OR begins_with(#reason, :complaint)")
                .expression_attribute_names("#reason", "reason")
                .expression_attribute_values(":unsubscribed", s(suppression::UNSUBSCRIBED))
                .expression_attribute_values(":complaint", s(suppression::COMPLAINED))
                .send()
                .await;
            match out {
                Ok(_) => lifted += 1,
                // Not on the list, or on it for a reason consent does not lift.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(classify("lift suppression", &e)),
            }
        }
        Ok(lifted)
    }

    async fn count_soft_bounce(
        &self,
        key: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        // A string set of notification ids: a re-delivered notification adds nothing.
        // Soft bounces older than the item's TTL (90 days after the latest) are forgotten.
        let out = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(schema::PK, s(keys::suppression(key)))
            .key(schema::SK, s(keys::SOFT_BOUNCES))
            .update_expression("ADD #events :event SET #type = :type, #ttl = :ttl")
            .expression_attribute_names("#events", "events")
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#ttl", schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":event", AttributeValue::Ss(vec![event_id.to_owned()]))
            .expression_attribute_values(":type", s("soft_bounces"))
            .expression_attribute_values(":ttl", n((now + chrono::Duration::days(90)).timestamp()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("count soft bounce", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get("events"))
            .and_then(|e| e.as_ss().ok())
            .map_or(0, |e| e.len() as u32))
    }
}

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

use feedloop_core::envelope::CustomerId;

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
            .client()
            .get_item()
            .table_name(self.store.table())
            .key(schema::PK, s(keys::customer(customer)))
            .key(schema::SK, s(keys::FOLLOWUP_CAP))
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
        let clear = Update::builder()
            .table_name(self.store.table())
            .key(schema::PK, s(keys::customer(customer)))
            .key(schema::SK, s(keys::FOLLOWUP_CAP))
            .update_expression("REMOVE #p")
            .condition_expression("#p = :sent")
            .expression_attribute_names("#p", "pending")
            .expression_attribute_values(":sent", s(json("pending follow-up", sent)?))
            .build()
            .map_err(DynamoStore::build_err("pending clear"))?;
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
        let result = self
            .store
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(clear).build())
            .transact_items(TransactWriteItem::builder().update(stats).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone attributed it first (a concurrent or earlier delivery): done.
            Err(e)
                if cancellation_codes(&e)
                    .is_some_and(|c| c.first().is_some_and(|c| c == "ConditionalCheckFailed")) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("record follow-up outcome", &e)),
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

/// E-mail through SES v2, SMS through SNS.
#[derive(Clone)]
pub struct AwsDelivery {
    pub ses: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
    pub from: String,
    /// Where customers' answers go (a monitored mailbox); required in live mode.
    pub reply_to: Option<String>,
    /// Sent through this SES configuration set, whose bounce and complaint events come
    /// back (SNS) to suppress the address.
    pub configuration_set: Option<String>,
    pub events: aws_sdk_eventbridge::Client,
    /// The EventBridge bus staff tasks go to (`StaffTask`, detail-type
    /// [`STAFF_TASK_DETAIL_TYPE`]).
    pub staff_event_bus: String,
}

pub const STAFF_TASK_SOURCE: &str = "feedloop.followups";
pub const STAFF_TASK_DETAIL_TYPE: &str = "Follow-up needs a person";

/// A send that has not answered in this time is treated as unconfirmed (perhaps
/// delivered, never repeated) rather than left to the Lambda timeout.
const SEND_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

impl AwsDelivery {
    /// SES and SNS clients with the SDK's own retries off: it retries timeouts, and a
    /// timed-out send may have been delivered. The dispatcher retries what the provider
    /// refused, and only that.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        from: String,
        reply_to: Option<String>,
        configuration_set: Option<String>,
        staff_event_bus: String,
    ) -> Self {
        use aws_sdk_sesv2::config::retry::RetryConfig;
        use aws_sdk_sesv2::config::timeout::TimeoutConfig;
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(SEND_ATTEMPT_TIMEOUT)
            .operation_timeout(SEND_TIMEOUT)
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        AwsDelivery {
            ses: aws_sdk_sesv2::Client::from_conf(ses),
            sns: aws_sdk_sns::Client::from_conf(sns),
            from,
            reply_to,
            configuration_set,
            events: aws_sdk_eventbridge::Client::new(sdk),
            staff_event_bus,
        }
    }
}

/// What kind of failure a provider error is. Sending pauses and quotas are passing
/// (the account recovers, the next day's quota comes); a refused address is the
/// recipient's; everything else is ours to fix and retrying will not.
fn failure_kind(code: &str, message: &str) -> FailureKind {
    match code {
        "TooManyRequestsException"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "KMSThrottlingException"
        | "LimitExceededException"
        | "SendingPausedException"
        | "InternalFailure"
        | "InternalError"
        | "InternalErrorException"
        | "ServiceUnavailable" => FailureKind::Transient,
        "BadRequestException" | "InvalidParameter" | "InvalidParameterException"
            if ["address", "phone", "recipient", "destination"]
                .iter()
                .any(|w| message.to_lowercase().contains(w)) =>
        {
            FailureKind::BadRecipient
        }
        _ => FailureKind::Permanent,
    }
}

fn delivery_error<E, R>(what: &str, e: &aws_sdk_sesv2::error::SdkError<E, R>) -> DeliveryError
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_sesv2::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("");
            DeliveryError {
                // Providers quote the address they refused: keep it out of logs.
                message: format!("{what}: {code}: {}", pii::redact(message)),
                kind: failure_kind(code, message),
            }
        }
        // Never sent: our request could not be built.
        SdkError::ConstructionFailure(_) => {
            DeliveryError::permanent(format!("{what}: {}", pii::redact(&e.to_string())))
        }
        // Timeouts, dropped connections, unreadable replies: the request may have
        // reached the provider and been accepted. Sending again could deliver twice.
        other => DeliveryError::unconfirmed(format!("{what}: {}", pii::redact(&other.to_string()))),
    }
}

impl Deliver for AwsDelivery {
    async fn hand_to_staff(&self, task: &StaffTask) -> Result<(), DeliveryError> {
        let detail = serde_json::to_string(task)
            .map_err(|e| DeliveryError::permanent(format!("encoding the staff task: {e}")))?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.staff_event_bus)
            .source(STAFF_TASK_SOURCE)
            .detail_type(STAFF_TASK_DETAIL_TYPE)
            .detail(detail)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                task.at.timestamp(),
            ))
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                DeliveryError::transient(format!(
                    "staff task: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                ))
            })?;
        // PutEvents answers 200 with per-entry failures.
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(DeliveryError::transient(format!(
                "staff task refused: {why}"
            )));
        }
        Ok(())
    }

    async fn deliver(&self, m: &Message, purpose: Purpose) -> Result<String, DeliveryError> {
        use aws_sdk_sesv2::primitives::Blob;
        use aws_sdk_sesv2::types::{EmailContent, RawMessage};
        use feedloop_core::followup::mime;
        match m {
            Message::Email { to, email } => {
                // Raw MIME, so the one-click unsubscribe headers travel in the message.
                let sender = mime::Sender {
                    from: &self.from,
                    reply_to: self.reply_to.as_deref(),
                };
                let raw = mime::raw_email(&sender, to, email)
                    .map_err(|e| DeliveryError::permanent(format!("building the e-mail: {e}")))?;
                let out = self
                    .ses
                    .send_email()
                    .from_email_address(&self.from)
                    .set_configuration_set_name(self.configuration_set.clone())
                    .content(
                        EmailContent::builder()
                            .raw(
                                RawMessage::builder()
                                    .data(Blob::new(raw.into_bytes()))
                                    .build()
                                    .map_err(|e| {
                                        DeliveryError::permanent(format!(
                                            "building the e-mail: {e}"
                                        ))
                                    })?,
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| delivery_error("ses send_email", &e))?;
                Ok(out.message_id().unwrap_or_default().to_owned())
            }
            Message::Sms { to, sms } => {
                use aws_sdk_sns::types::MessageAttributeValue;
                let kind = match purpose {
                    Purpose::Service => "Transactional",
                    Purpose::Marketing => "Promotional",
                };
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(kind)
                    .build()
                    .map_err(|e| {
                        DeliveryError::permanent(format!("building SMS attributes: {e}"))
                    })?;
                // A STOP reply puts the number on the account's opt-out list; SNS would
                // drop the text anyway, so say why instead of counting it as sent.
                let opted_out = self
                    .sns
                    .check_if_phone_number_is_opted_out()
                    .phone_number(to)
                    .send()
                    .await
                    .map_err(|e| delivery_error("sns opt-out check", &e))?;
                if opted_out.is_opted_out() {
                    return Err(DeliveryError::permanent(
                        "the number is on the SNS SMS opt-out list (it replied STOP)",
                    ));
                }
                let out = self
                    .sns
                    .publish()
                    .phone_number(to)
                    .message(&sms.text)
                    .message_attributes("AWS.SNS.SMS.SMSType", attr)
                    .send()
                    .await
                    .map_err(|e| delivery_error("sns publish", &e))?;
                Ok(out.message_id().unwrap_or_default().to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_are_classified() {
        for (code, message, want) in [
            (
                "SendingPausedException",
                "sending paused",
                FailureKind::Transient,
            ),
            (
                "LimitExceededException",
                "Maximum sending rate exceeded",
                FailureKind::Transient,
            ),
            ("TooManyRequestsException", "", FailureKind::Transient),
            (
                "BadRequestException",
                "Illegal address",
                FailureKind::BadRecipient,
            ),
            (
                "InvalidParameter",
                "Invalid parameter: PhoneNumber",
                FailureKind::BadRecipient,
            ),
            (
                "MessageRejected",
                "Email address is not verified",
                FailureKind::Permanent,
            ),
            (
                "BadRequestException",
                "Invalid content",
                FailureKind::Permanent,
            ),
            ("AccountSuspendedException", "", FailureKind::Permanent),
        ] {
            assert_eq!(failure_kind(code, message), want, "{code}: {message}");
        }
    }
}
