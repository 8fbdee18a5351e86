//! Follow-up claims: the atomic part of the follow-up guards. Sending is allowed only
//! after one transaction both (1) records the (feedback, playbook) attempt, which
//! makes every follow-up at-most-once, and (2) moves the customer's cap item forward,
//! conditional on the global and per-playbook windows having passed. Two dispatchers
//! racing for one customer cannot both win: one transaction cancels.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use feedloop_ingest::ports::StoreError;

use crate::schema::{self, keys};
use crate::store::{cancellation_codes, classify, DynamoStore};

pub const CAP_ITEM: &str = "FUCAP";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This dispatcher may send; the attempt and the cap are recorded.
    Granted,
    /// This (feedback, playbook) was claimed before: never send twice.
    AlreadyClaimed,
    /// A follow-up went to this customer inside the global or playbook window.
    Capped,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub customer_id: &'a str,
    pub feedback_id: &'a str,
    pub playbook: &'a str,
    pub now: DateTime<Utc>,
    pub global_window: Duration,
    pub playbook_window: Duration,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

impl DynamoStore {
    pub async fn claim_followup(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let now = r.now.to_rfc3339();
        let attempt = Put::builder()
            .table_name(self.table())
            .item(schema::PK, s(keys::customer(r.customer_id)))
            .item(
                schema::SK,
                s(format!("FU#{}#{}", r.feedback_id, r.playbook)),
            )
            .item("type", s("followup"))
            .item("playbook", s(r.playbook))
            .item("feedback_id", s(r.feedback_id))
            .item("status", s("claimed"))
            .item("claimed_at", s(now.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", schema::PK)
            .build()
            .map_err(|e| StoreError::Permanent(format!("building follow-up put: {e}")))?;
        // RFC 3339 in UTC sorts like time, so string comparison is a time comparison.
        let cap = Update::builder()
            .table_name(self.table())
            .key(schema::PK, s(keys::customer(r.customer_id)))
            .key(schema::SK, s(CAP_ITEM))
            .update_expression("SET #last = :now, #pb = :now")
            .condition_expression(
                "(attribute_not_exists(#last) OR #last < :global_cutoff) AND (attribute_not_exists(#pb) OR #pb < :pb_cutoff)",
            )
            .expression_attribute_names("#last", "last_sent_at")
            .expression_attribute_names("#pb", format!("last:{}", r.playbook))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":global_cutoff", s((r.now - r.global_window).to_rfc3339()))
            .expression_attribute_values(":pb_cutoff", s((r.now - r.playbook_window).to_rfc3339()))
            .build()
            .map_err(|e| StoreError::Permanent(format!("building cap update: {e}")))?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(attempt).build())
            .transact_items(TransactWriteItem::builder().update(cap).build())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::Granted),
            Err(e) => e,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(classify("claim follow-up", &err));
        };
        match codes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["ConditionalCheckFailed", ..] => Ok(Claim::AlreadyClaimed),
            [_, "ConditionalCheckFailed"] => Ok(Claim::Capped),
            _ => Err(StoreError::Transient(format!(
                "follow-up claim cancelled: {codes:?}"
            ))),
        }
    }
}
