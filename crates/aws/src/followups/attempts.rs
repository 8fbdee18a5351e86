//! The dispatcher's attempt items: contact and suppression reads, the claim (in
//! `caps.rs`), and each attempt's record as one conditional write.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use chrono::{DateTime, Utc};
use feedloop_core::envelope::{CustomerId, CustomerInfo};
use feedloop_core::profile::Profile;
use feedloop_kit::ports::followup::*;

use crate::item::{build_err, encode as json, s};
use crate::schema::{self, keys};
use crate::store::{classify, transact, DynamoStore};

impl FollowUpStore for DynamoStore {
    async fn contact(&self, customer: &CustomerId) -> Result<Option<CustomerInfo>, StoreError> {
        // Consistent: an opt-out written a moment ago must be seen.
        let p: Option<Profile> = self
            .get_data(
                keys::customer(customer.as_str()),
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
                ka.build().map_err(build_err("suppression lookup"))?,
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
        Ok(if self.attempt_status(a).await?.is_some() {
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
        let result = self
            .put()
            .set_item(Some(self.attempt_item(a)?))
            // Claim times are RFC 3339 in UTC: string order is time order.
            .condition_expression("#status = :claimed AND #claimed_at < :before")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#claimed_at", "claimed_at")
            .expression_attribute_values(":claimed", s(Status::Claimed.as_str()))
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
        let claimed = Some(Status::Claimed.as_str());
        Ok(if self.attempt_status(a).await?.as_deref() == claimed {
            Settle::InFlight
        } else {
            Settle::Final
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
        let put = self
            .tx_put()
            .set_item(Some(self.attempt_item(a)?))
            .expression_attribute_names("#pk", schema::PK);
        let put = match guard {
            AttemptGuard::Absent => put.condition_expression("attribute_not_exists(#pk)"),
            AttemptGuard::Claimed => put
                .condition_expression("attribute_exists(#pk) AND #status = :claimed")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":claimed", s(Status::Claimed.as_str())),
        };
        let put = put.build().map_err(build_err("follow-up record"))?;
        let mut txn = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build());
        if let Some(sent) = &a.sent {
            let pending = self
                .tx_update_key(
                    s(keys::customer(a.customer_id.as_str())),
                    s(keys::FOLLOWUP_CAP),
                )
                .update_expression("SET #pending = :pending")
                .expression_attribute_names("#pending", "pending")
                .expression_attribute_values(":pending", s(json("pending follow-up", sent)?))
                .build()
                .map_err(build_err("pending update"))?;
            txn = txn
                .transact_items(TransactWriteItem::builder().update(pending).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .update(self.stats_update(&sent.playbook, &sent.variant, &[("sent", 1)])?)
                        .build(),
                );
        }
        match transact(txn, "record follow-up").await? {
            None => Ok(true),
            Some(c) if c.first_check_failed() => Ok(false),
            Some(c) => Err(c.error),
        }
    }
}

impl DynamoStore {
    /// The stored status of an attempt's history item (a strongly consistent read),
    /// `None` when there is no item.
    async fn attempt_status(&self, a: &AttemptRecord) -> Result<Option<String>, StoreError> {
        let out = self
            .get_key(
                s(keys::customer(a.customer_id.as_str())),
                s(keys::followup(&a.feedback_id, &a.playbook)),
            )
            .consistent_read(true)
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .map_err(|e| classify("read follow-up attempt", &e))?;
        Ok(out.item().map(|i| {
            i.get("status")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        }))
    }

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
                s(keys::followup(&a.feedback_id, &a.playbook)),
            ),
            ("type".to_owned(), s("followup")),
            ("playbook".to_owned(), s(a.playbook.as_str())),
            ("feedback_id".to_owned(), s(a.feedback_id.as_str())),
            ("status".to_owned(), s(a.status.as_str())),
            ("at".to_owned(), s(a.at.to_rfc3339())),
            ("data".to_owned(), s(json("follow-up", a)?)),
            (schema::TTL_ATTRIBUTE.to_owned(), self.expires_at_pub(a.at)),
        ]))
    }
}
