//! A customer's follow-up history and the A/B counters, read for the query side.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use feedloop_core::followup::{PlaybookId, VariantId};
use feedloop_kit::ports::followup::*;

use crate::item::{build_err, n, s};
use crate::schema::{self, keys};
use crate::store::{classify, DynamoStore};

impl DynamoStore {
    /// A customer's follow-up history (every attempt with its status), newest last.
    /// Every attempt of a customer, oldest first: all pages of the query (one page
    /// stops at 1 MB).
    pub async fn followup_history(&self, customer: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut v: Vec<AttemptRecord> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .query_table()
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
            .query_table()
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
                let pb = PlaybookId::new(i.get("playbook")?.as_s().ok()?.clone());
                let variant = VariantId::new(i.get("variant")?.as_s().ok()?.clone());
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

    pub(super) fn stats_update(
        &self,
        playbook: &PlaybookId,
        variant: &VariantId,
        adds: &[(&str, i64)],
    ) -> Result<Update, StoreError> {
        let mut u = self
            .tx_update_key(
                s(keys::FOLLOWUP_STATS),
                s(keys::followup_stats(playbook, variant)),
            )
            .expression_attribute_names("#pb", "playbook")
            .expression_attribute_names("#va", "variant")
            .expression_attribute_values(":pb", s(playbook.as_str()))
            .expression_attribute_values(":va", s(variant.as_str()));
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
        .map_err(build_err("stats update"))
    }
}
