//! The DynamoDB store: one table, one TransactWriteItems per feedback.
//!
//! A commit writes three items atomically, each conditional or additive:
//! 1. the feedback history item, `attribute_not_exists(PK)`: a re-delivery of the same
//!    message maps to the same key and cancels the transaction (=> duplicate);
//! 2. the profile, `version = :expected` (or not existing yet): a concurrent writer
//!    cancels it (=> conflict, re-read and retry);
//! 3. the day's aggregate shard, `ADD` counters.
//!
//! Cost per message with items <= 1 KB: a transactional write costs 2 WCU per item,
//! so 3 x 2 = 6 WCU; the KEYS_ONLY segment index costs nothing unless the customer's
//! segment or 0.05 churn-risk bucket changes (then 2 more: delete + put of the index entry).
//!
//! The batched and paged reads are in `reads`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use feedloop_core::envelope::CustomerId;
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::records::FeedbackRecord;
use feedloop_kit::ports::ingest::*;

use crate::schema::{self, keys};

use crate::item::{decode, n, s, str_attr, Item};

mod reads;

/// Map an SDK error to the retry classification the handler needs.
pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    context: &str,
    err: &SdkError<E, R>,
) -> StoreError {
    match err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let msg = format!("{context}: {code}: {}", se.err().message().unwrap_or(""));
            match code {
                "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException" => StoreError::Throttled(msg),
                "ValidationException"
                | "ResourceNotFoundException"
                | "AccessDeniedException"
                | "ItemCollectionSizeLimitExceededException" => StoreError::Permanent(msg),
                _ => StoreError::Transient(msg),
            }
        }
        other => StoreError::Transient(format!("{context}: {other:?}")),
    }
}

/// A transaction DynamoDB cancelled: the per-item reason codes ("None" for items that
/// passed), and the error to give when the caller has no answer for them.
pub(crate) struct Cancelled {
    pub codes: Vec<String>,
    pub error: StoreError,
}

impl Cancelled {
    /// The first item's condition failed (the usual "already there" or "gone").
    pub fn first_check_failed(&self) -> bool {
        self.codes
            .first()
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }
}

/// Send a transaction: `None` when it committed, the reasons when it was cancelled,
/// any other failure classified under `what`.
pub(crate) async fn transact(
    tx: aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder,
    what: &str,
) -> Result<Option<Cancelled>, StoreError> {
    let err = match tx.send().await {
        Ok(_) => return Ok(None),
        Err(e) => e,
    };
    let error = classify(what, &err);
    match &err {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(tc) => Ok(Some(Cancelled {
                codes: tc
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
                error,
            })),
            _ => Err(error),
        },
        _ => Err(error),
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention_days: u32,
    aggregate_shards: u16,
    /// Shard counts this process has put on the table's registry (once each).
    registered_shards: Arc<Mutex<BTreeSet<u16>>>,
}

/// Keys per BatchGetItem (the service's limit).
const BATCH_GET_KEYS: usize = 100;
/// BatchGetItem calls in flight at once for one report.
const BATCH_GET_PARALLEL: usize = 8;

/// Never used to stamp an item (see [`DynamoStore::for_queries`]); the template's
/// default, should a query-side write ever start carrying a TTL.
const QUERY_SIDE_RETENTION_DAYS: u32 = 365;

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            retention_days,
            aggregate_shards: 8,
            registered_shards: Arc::default(),
        }
    }

    /// The store as the query side (API, CLI queries) uses it: it reads, and the items it
    /// writes (consent facts, suppression entries, erasure) carry no TTL, so it needs no
    /// retention setting.
    pub fn for_queries(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore::new(client, table, QUERY_SIDE_RETENTION_DAYS)
    }

    /// How many shards per day the aggregate readers sum (the ingest setting).
    pub fn with_aggregate_shards(mut self, shards: u16) -> DynamoStore {
        self.aggregate_shards = shards.max(1);
        self
    }

    pub fn aggregate_shards(&self) -> u16 {
        self.aggregate_shards
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn expires_at_pub(&self, from: DateTime<Utc>) -> AttributeValue {
        self.expires_at(from)
    }

    fn expires_at(&self, from: DateTime<Utc>) -> AttributeValue {
        n((from + Duration::days(i64::from(self.retention_days))).timestamp())
    }

    fn feedback_item(
        &self,
        fb: &FeedbackRecord,
        received_at: DateTime<Utc>,
    ) -> Result<Item, StoreError> {
        let data = serde_json::to_string(fb)
            .map_err(|e| StoreError::Permanent(format!("encoding feedback: {e}")))?;
        let mut item: Item = HashMap::from([
            (
                schema::PK.into(),
                s(keys::customer(fb.customer_id.as_str())),
            ),
            (schema::SK.into(), s(keys::feedback(&fb.history_key()))),
            ("type".into(), s("feedback")),
            ("customer_id".into(), s(fb.customer_id.as_str())),
            ("feedback_id".into(), s(fb.feedback_id.as_str())),
            ("kind".into(), s(fb.kind.as_str())),
            ("occurred_at".into(), s(fb.occurred_at.to_rfc3339())),
            ("received_at".into(), s(received_at.to_rfc3339())),
            ("data".into(), s(data)),
            (schema::TTL_ATTRIBUTE.into(), self.expires_at(received_at)),
        ]);
        if let Some(c) = fb.compound {
            item.insert("compound".into(), n(c));
        }
        if let Some(l) = fb.label {
            item.insert("label".into(), s(l.as_str()));
        }
        if let Some(score) = fb.nps_score {
            item.insert("nps_score".into(), n(score));
        }
        Ok(item)
    }

    fn profile_item(
        &self,
        p: &Profile,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<Item, StoreError> {
        let data = serde_json::to_string(p)
            .map_err(|e| StoreError::Permanent(format!("encoding profile: {e}")))?;
        let risk = p.churn_risk();
        let segment = p.segment();
        let id = p.customer_id.as_str();
        let mut item: Item = HashMap::from([
            (schema::PK.into(), s(keys::customer(id))),
            (schema::SK.into(), s(keys::PROFILE)),
            ("type".into(), s("profile")),
            ("customer_id".into(), s(id)),
            ("version".into(), n(version)),
            ("data".into(), s(data)),
            ("segment".into(), s(segment.as_str())),
            ("churn_risk".into(), n(format!("{:.3}", risk.score))),
            ("feedback_count".into(), n(p.feedback_count)),
            ("updated_at".into(), s(now.to_rfc3339())),
            (schema::GSI1PK.into(), s(keys::segment(segment.as_str()))),
            (
                schema::GSI1SK.into(),
                s(keys::segment_order(risk.score, id)),
            ),
        ]);
        if let Some(t) = p.last_feedback_at {
            item.insert("last_feedback_at".into(), s(t.to_rfc3339()));
        }
        if let Some(l) = &p.nps.last {
            item.insert("nps_last".into(), n(l.value));
        }
        if let Some(d) = p.decayed_sentiment() {
            item.insert("decayed_sentiment".into(), n(format!("{d:.4}")));
        }
        Ok(item)
    }

    /// Replace the profile if it is still at version `expected`; `Ok(false)` when ingest
    /// wrote it in between (the caller reloads and tries again).
    pub(crate) async fn put_profile(
        &self,
        p: &Profile,
        expected: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let item = self.profile_item(p, expected + 1, now)?;
        let sent = self
            .put()
            .set_item(Some(item))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("put profile", &e)),
        }
    }

    /// One item's `data` attribute, decoded; `None` when the item does not exist.
    pub(crate) async fn get_data<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
        consistent: bool,
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .get_key(s(pk), s(sk))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(&format!("get {what}"), &e))?;
        out.item().map(|i| decode(i, what)).transpose()
    }
}

/// The counter update for a customer leaving `from` and joining `to` (either may be
/// `None`: a new or an erased customer); `None` when the segment stays.
pub(crate) fn segment_move(
    store: &DynamoStore,
    customer: &str,
    from: Option<Segment>,
    to: Option<Segment>,
) -> Result<Option<Update>, StoreError> {
    if from == to {
        return Ok(None);
    }
    let shard = feedloop_core::records::shard_of(customer, keys::SEGMENT_COUNT_SHARDS);
    let mut u = store.tx_update_key(s(keys::segment_count(shard)), s(keys::SEGMENT_COUNT));
    let mut adds = Vec::new();
    for (name, seg, delta) in [("#from", from, -1), ("#to", to, 1)] {
        if let Some(seg) = seg {
            adds.push(format!("{name} :{}", &name[1..]));
            u = u
                .expression_attribute_names(name, format!("n:{}", seg.as_str()))
                .expression_attribute_values(format!(":{}", &name[1..]), n(delta));
        }
    }
    u.update_expression(format!("ADD {}", adds.join(", ")))
        .build()
        .map(Some)
        .map_err(|e| StoreError::Permanent(format!("building segment count update: {e}")))
}

impl ProfileStore for DynamoStore {
    async fn load_profile(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Versioned<Profile>>, StoreError> {
        let out = self
            .get_key(s(keys::customer(customer.as_str())), s(keys::PROFILE))
            // The version read must be the latest, or every commit would conflict.
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("get profile", &e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Permanent(format!("profile {customer} has no version")))?;
        Ok(Some(Versioned {
            value: decode(item, "profile")?,
            version,
        }))
    }

    async fn commit(&self, c: &Commit) -> Result<CommitOutcome, StoreError> {
        let fx = &c.effects;
        let feedback = self
            .tx_put()
            .set_item(Some(self.feedback_item(&fx.feedback, c.received_at)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", schema::PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .build()
            .map_err(|e| StoreError::Permanent(format!("building feedback put: {e}")))?;
        let next_version = c.expected_version.map_or(1, |v| v + 1);
        let mut profile = self.tx_put().set_item(Some(self.profile_item(
            &fx.profile,
            next_version,
            c.received_at,
        )?));
        profile = match c.expected_version {
            None => profile
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", schema::PK),
            Some(v) => profile
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(v)),
        };
        let profile = profile
            .build()
            .map_err(|e| StoreError::Permanent(format!("building profile put: {e}")))?;

        let agg = &fx.aggregate;
        self.register_shards(agg.shards).await?;
        let mut update =
            self.tx_update_key(s(keys::aggregate(agg.day, agg.shard)), s(keys::AGGREGATE));
        let mut clauses = Vec::new();
        for (i, (name, value)) in agg.counters.iter().enumerate() {
            clauses.push(format!("#c{i} :v{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), format!("c:{name}"))
                .expression_attribute_values(format!(":v{i}"), n(value));
        }
        let update = update
            .update_expression(format!(
                "SET #day = :day, #shard = :shard ADD {}",
                clauses.join(", ")
            ))
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#shard", "shard")
            .expression_attribute_values(":day", s(agg.day.to_string()))
            .expression_attribute_values(":shard", n(agg.shard))
            .build()
            .map_err(|e| StoreError::Permanent(format!("building aggregate update: {e}")))?;

        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(feedback).build())
            .transact_items(TransactWriteItem::builder().put(profile).build())
            .transact_items(TransactWriteItem::builder().update(update).build());
        // In the same transaction, so a segment size can never drift from the profiles.
        if let Some(moved) = segment_move(
            self,
            fx.profile.customer_id.as_str(),
            c.previous_segment,
            Some(fx.profile.segment()),
        )? {
            tx = tx.transact_items(TransactWriteItem::builder().update(moved).build());
        }
        let Some(cancelled) = transact(tx, "transact write feedback").await? else {
            return Ok(CommitOutcome::Applied);
        };
        let codes: Vec<&str> = cancelled.codes.iter().map(String::as_str).collect();
        match codes.as_slice() {
            ["ConditionalCheckFailed", ..] => Ok(CommitOutcome::Duplicate),
            [_, "ConditionalCheckFailed", ..] => Ok(CommitOutcome::Conflict),
            // Another transaction touched one of the items (typically the aggregate
            // shard): safe to retry as a conflict.
            c if c.contains(&"TransactionConflict") => Ok(CommitOutcome::Conflict),
            c if c
                .iter()
                .any(|x| x.contains("Throughput") || x.contains("Throttl")) =>
            {
                Err(StoreError::Throttled(format!(
                    "transaction cancelled: {codes:?}"
                )))
            }
            // No per-item reasons: nothing tells duplicate from conflict, so let SQS
            // redeliver; the next attempt will know.
            [] => Err(StoreError::Transient(
                "transaction cancelled without reasons".into(),
            )),
            _ => Err(StoreError::Transient(format!(
                "transaction cancelled: {codes:?}"
            ))),
        }
    }
}

impl RejectStore for DynamoStore {
    async fn record_reject(&self, r: &RejectRecord) -> Result<(), StoreError> {
        let mut item: Item = HashMap::from([
            (
                schema::PK.into(),
                s(keys::reject_day(r.received_at.date_naive())),
            ),
            (schema::SK.into(), s(keys::reject(&r.message_id))),
            ("type".into(), s("reject")),
            ("message_id".into(), s(&r.message_id)),
            ("reason".into(), s(&r.reason)),
            ("body".into(), s(&r.body_prefix)),
            ("received_at".into(), s(r.received_at.to_rfc3339())),
            (schema::TTL_ATTRIBUTE.into(), self.expires_at(r.received_at)),
        ]);
        if let Some(c) = &r.customer_id {
            item.insert("customer_id".into(), s(c));
        }
        self.put()
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("put reject", &e))?;
        // A pointer in the customer's partition, so an erasure finds the reject
        // without a scan. Idempotent like the reject itself.
        if let Some(c) = &r.customer_id {
            let day = r.received_at.date_naive();
            self.put()
                .item(schema::PK, s(keys::customer(c)))
                .item(schema::SK, s(keys::reject_pointer(day, &r.message_id)))
                .item("type", s("reject_pointer"))
                .item("reject_pk", s(keys::reject_day(day)))
                .item("reject_sk", s(keys::reject(&r.message_id)))
                .item(schema::TTL_ATTRIBUTE, self.expires_at(r.received_at))
                .send()
                .await
                .map_err(|e| classify("put reject pointer", &e))?;
        }
        Ok(())
    }
}
