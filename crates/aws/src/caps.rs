//! The claim: one transaction both (1) records the (feedback, playbook) attempt, which
//! makes every follow-up at-most-once, and (2) moves the customer's cap item forward,
//! conditional on the windows of the claim's purpose having passed
//! (`CapPolicy::allowed_at` is the same rule, pure). Two dispatchers racing for one
//! customer cannot both win.
//!
//! Cap item attributes: `last_service_at` (service replies), `last_sent_at` (marketing,
//! and every send from before caps were kept per purpose: marketing stays the cautious
//! side of an upgrade), `last:<playbook>`; each with a `before...` copy taken at the
//! claim so a refused delivery can give it back.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use feedloop_core::followup::guards::LastSent;
use feedloop_core::followup::Purpose;
use feedloop_kit::ports::followup::{Claim, ClaimRequest, Status, StoreError};

use crate::schema::{self, keys};
use crate::store::{classify, transact, Cancelled, DynamoStore};

const SERVICE: &str = "last_service_at";
const MARKETING: &str = "last_sent_at";

use crate::item::s;

fn purpose_attribute(p: Purpose) -> &'static str {
    match p {
        Purpose::Service => SERVICE,
        Purpose::Marketing => MARKETING,
    }
}

fn build_err(what: &str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError + '_ {
    move |e| StoreError::Permanent(format!("building {what}: {e}"))
}

fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .is_some_and(|se| se.code() == Some("ConditionalCheckFailedException"))
}

impl DynamoStore {
    pub(crate) async fn claim_attempt(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let mut txn = self
            .client()
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.attempt_claim(r)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.cap_advance(r)?)
                    .build(),
            );
        for key in r.unless_suppressed {
            txn = txn.transact_items(
                TransactWriteItem::builder()
                    .condition_check(self.not_suppressed(key)?)
                    .build(),
            );
        }
        let Some(Cancelled { codes, .. }) = transact(txn, "claim follow-up").await? else {
            return Ok(Claim::Granted);
        };
        match codes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["ConditionalCheckFailed", ..] => Ok(Claim::AlreadyClaimed),
            [_, _, rest @ ..] if rest.contains(&"ConditionalCheckFailed") => Ok(Claim::Suppressed),
            [_, "ConditionalCheckFailed", ..] => {
                let last = self.last_sent(r).await?;
                let allowed_at = r.caps.allowed_at(r.purpose, &last, r.now);
                if allowed_at <= r.now {
                    // The cap item moved between the transaction and the read.
                    return Err(StoreError::Transient(
                        "follow-up caps changed during the claim".into(),
                    ));
                }
                Ok(Claim::Capped { allowed_at })
            }
            _ => Err(StoreError::Transient(format!(
                "follow-up claim cancelled: {codes:?}"
            ))),
        }
    }

    fn not_suppressed(&self, key: &str) -> Result<ConditionCheck, StoreError> {
        self.tx_check_key(s(keys::suppression(key)), s(keys::SUPPRESSION))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", schema::PK)
            .build()
            .map_err(build_err("suppression check"))
    }

    fn attempt_claim(&self, r: &ClaimRequest<'_>) -> Result<Put, StoreError> {
        self.tx_put()
            .item(schema::PK, s(keys::customer(r.customer_id.as_str())))
            .item(schema::SK, s(keys::followup(r.feedback_id, r.playbook)))
            .item("type", s("followup"))
            .item("playbook", s(r.playbook.as_str()))
            .item("feedback_id", s(r.feedback_id.as_str()))
            .item("status", s(Status::Claimed.as_str()))
            .item("claimed_at", s(r.now.to_rfc3339()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", schema::PK)
            .build()
            .map_err(build_err("follow-up put"))
    }

    /// RFC 3339 in UTC sorts like time, so string comparison is a time comparison;
    /// "" (never) sorts before every time.
    fn cap_advance(&self, r: &ClaimRequest<'_>) -> Result<Update, StoreError> {
        let global_cutoff = (r.now - r.caps.global.duration()).to_rfc3339();
        let playbook_cutoff = (r.now - r.caps.playbook.duration()).to_rfc3339();
        let mut condition = String::from(
            "(attribute_not_exists(#last) OR #last < :global_cutoff) AND (attribute_not_exists(#pb) OR #pb < :pb_cutoff)",
        );
        let mut u = self.tx_update_key(
            s(keys::customer(r.customer_id.as_str())),
            s(keys::FOLLOWUP_CAP),
        );
        if r.purpose == Purpose::Marketing {
            // No marketing message right after a service reply; never the reverse.
            condition.push_str(" AND (attribute_not_exists(#svc) OR #svc < :global_cutoff)");
            u = u.expression_attribute_names("#svc", SERVICE);
        }
        let last = purpose_attribute(r.purpose);
        u.update_expression(
                "SET #prev_last = if_not_exists(#last, :never), #prev_pb = if_not_exists(#pb, :never), #last = :now, #pb = :now",
            )
            .condition_expression(condition)
            .expression_attribute_names("#prev_last", format!("before_{last}"))
            .expression_attribute_names("#prev_pb", format!("before:{}", r.playbook))
            .expression_attribute_names("#last", last)
            .expression_attribute_names("#pb", format!("last:{}", r.playbook))
            .expression_attribute_values(":never", s(""))
            .expression_attribute_values(":now", s(r.now.to_rfc3339()))
            .expression_attribute_values(":global_cutoff", s(global_cutoff))
            .expression_attribute_values(":pb_cutoff", s(playbook_cutoff))
            .build()
            .map_err(build_err("cap update"))
    }

    /// The sends on the customer's cap item that bear on this claim.
    async fn last_sent(&self, r: &ClaimRequest<'_>) -> Result<LastSent, StoreError> {
        let out = self
            .get_key(
                s(keys::customer(r.customer_id.as_str())),
                s(keys::FOLLOWUP_CAP),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("read follow-up caps", &e))?;
        let at = |name: &str| -> Option<DateTime<Utc>> {
            let v = out.item()?.get(name)?.as_s().ok()?;
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Ok(LastSent {
            service: at(SERVICE),
            marketing: at(MARKETING),
            playbook: at(&format!("last:{}", r.playbook)),
        })
    }

    pub(crate) async fn release_attempt(
        &self,
        r: &ClaimRequest<'_>,
        keep_attempt: bool,
    ) -> Result<(), StoreError> {
        let last = purpose_attribute(r.purpose);
        // Only while the caps are still this claim's own: a later send (possible when a
        // window is 0 days) is never rolled back.
        let result = self
            .update_key(s(keys::customer(r.customer_id.as_str())), s(keys::FOLLOWUP_CAP))
            .update_expression("SET #last = #prev_last, #pb = #prev_pb")
            .condition_expression(
                "#last = :now AND #pb = :now AND attribute_exists(#prev_last) AND attribute_exists(#prev_pb)",
            )
            .expression_attribute_names("#last", last)
            .expression_attribute_names("#pb", format!("last:{}", r.playbook))
            .expression_attribute_names("#prev_last", format!("before_{last}"))
            .expression_attribute_names("#prev_pb", format!("before:{}", r.playbook))
            .expression_attribute_values(":now", s(r.now.to_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_condition_failure(&e) => {}
            Err(e) => return Err(classify("release follow-up caps", &e)),
        }
        if keep_attempt {
            return Ok(());
        }
        let result = self
            .delete_key(
                s(keys::customer(r.customer_id.as_str())),
                s(keys::followup(r.feedback_id, r.playbook)),
            )
            .condition_expression("#status = :claimed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":claimed", s(Status::Claimed.as_str()))
            .send()
            .await;
        match result {
            // Already recorded by someone (it cannot be, but never erase a record).
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(classify("release follow-up claim", &e)),
        }
    }
}
