//! The suppression list: salted keys with the reason each went on.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use feedloop_core::followup::suppression;
use feedloop_kit::ports::followup::*;

use crate::item::{n, s};
use crate::schema::{self, keys};
use crate::store::{classify, DynamoStore};

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
                .put()
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
                .delete_key(s(keys::suppression(k)), s(keys::SUPPRESSION))
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
            .update_key(s(keys::suppression(key)), s(keys::SOFT_BOUNCES))
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
