//! The API's reads and the GDPR erase over the single table: keys only, no scans.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use chrono::{DateTime, NaiveDate, Utc};
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::records::FeedbackRecord;
use feedloop_core::reports::Counters;
use feedloop_kit::ports::followup::AttemptRecord;
use feedloop_kit::ports::query::*;

use crate::schema::{self, keys};
use crate::store::{classify, DynamoStore};

use crate::item::{decode, s, str_attr as str_of, Item};

/// Queries ask for `limit + 1` items: the extra one only says that there is a next
/// page, which then starts after the last item shown (its sort key is the position).
fn split_page<'a>(
    items: &'a [Item],
    limit: usize,
    position: &str,
) -> (Vec<&'a Item>, Option<String>) {
    let page: Vec<&Item> = items.iter().take(limit).collect();
    let next = (items.len() > limit)
        .then(|| {
            page.last()
                .and_then(|i| str_of(i, position))
                .map(str::to_owned)
        })
        .flatten();
    (page, next)
}

/// BatchWriteItem deletes, 25 at a time, retrying unprocessed items with backoff.
async fn delete_all(
    store: &DynamoStore,
    mut keys_: Vec<(String, String)>,
) -> Result<(), StoreError> {
    while !keys_.is_empty() {
        let chunk: Vec<(String, String)> = keys_.drain(..keys_.len().min(25)).collect();
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|(pk, sk)| {
                DeleteRequest::builder()
                    .key(schema::PK, s(pk))
                    .key(schema::SK, s(sk))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| StoreError::Permanent(format!("building delete: {e}")))
            })
            .collect::<Result<_, _>>()?;
        for attempt in 0..8u32 {
            let out = store
                .client()
                .batch_write_item()
                .request_items(store.table(), requests)
                .send()
                .await
                .map_err(|e| classify("batch delete", &e))?;
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(store.table()))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            if attempt == 7 {
                return Err(StoreError::Throttled(format!(
                    "{} deletes left unprocessed",
                    requests.len()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
    Ok(())
}

impl QueryStore for DynamoStore {
    async fn profile(&self, customer_id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        let customer = customer_id.as_str();
        self.get_data(
            keys::customer(customer),
            keys::PROFILE.into(),
            false,
            "profile",
        )
        .await
    }

    async fn profiles(&self, customers: &[CustomerId]) -> Result<Vec<Profile>, StoreError> {
        let mut out = Vec::with_capacity(customers.len());
        // BatchGetItem takes at most 100 keys.
        for chunk in customers.chunks(100) {
            let keys = chunk
                .iter()
                .map(|c| {
                    HashMap::from([
                        (schema::PK.to_owned(), s(keys::customer(c.as_str()))),
                        (schema::SK.to_owned(), s(keys::PROFILE)),
                    ])
                })
                .collect();
            for item in self.batch_get(keys, None).await? {
                out.push(decode(&item, "profile")?);
            }
        }
        Ok(out)
    }

    async fn feedback_page(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        after: Option<String>,
    ) -> Result<Page<FeedbackRecord>, StoreError> {
        let customer = customer_id.as_str();
        let pk = keys::customer(customer);
        let mut q = self
            .query_table()
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :fb)")
            .expression_attribute_names("#pk", schema::PK)
            .expression_attribute_names("#sk", schema::SK)
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":fb", s(keys::FEEDBACK_PREFIX))
            .scan_index_forward(false)
            .limit(limit as i32 + 1);
        if let Some(a) = &after {
            q = q
                .exclusive_start_key(schema::PK, s(&pk))
                .exclusive_start_key(schema::SK, s(a));
        }
        let out = q
            .send()
            .await
            .map_err(|e| classify("query feedback page", &e))?;
        let (page, next) = split_page(out.items(), limit, schema::SK);
        Ok(Page {
            items: page
                .iter()
                .map(|i| decode(i, "feedback"))
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn followups(&self, customer_id: &CustomerId) -> Result<Vec<AttemptRecord>, StoreError> {
        let customer = customer_id.as_str();
        self.followup_history(customer).await
    }

    async fn segment_page(
        &self,
        segment: Segment,
        limit: usize,
        after: Option<String>,
    ) -> Result<Page<Member>, StoreError> {
        let mut q = self
            .query_table()
            .index_name(schema::GSI1)
            .key_condition_expression("#pk = :seg")
            .expression_attribute_names("#pk", schema::GSI1PK)
            .expression_attribute_values(":seg", s(keys::segment(segment.as_str())))
            .limit(limit as i32 + 1);
        if let Some(a) = &after {
            let id = a
                .split_once('#')
                .map(|(_, id)| id)
                .ok_or_else(|| StoreError::Permanent("bad segment position".into()))?;
            q = q
                .exclusive_start_key(schema::GSI1PK, s(keys::segment(segment.as_str())))
                .exclusive_start_key(schema::GSI1SK, s(a))
                .exclusive_start_key(schema::PK, s(keys::customer(id)))
                .exclusive_start_key(schema::SK, s(keys::PROFILE));
        }
        let out = q.send().await.map_err(|e| classify("query segment", &e))?;
        let (page, next) = split_page(out.items(), limit, schema::GSI1SK);
        // The index holds keys only: the risk itself comes from the profiles.
        let ids: Vec<String> = page
            .iter()
            .filter_map(|i| {
                str_of(i, schema::PK)?
                    .strip_prefix("CUST#")
                    .map(str::to_owned)
            })
            .collect();
        let mut risk: HashMap<String, f64> = HashMap::new();
        if !ids.is_empty() {
            let keys = ids
                .iter()
                .map(|id| {
                    HashMap::from([
                        (schema::PK.to_owned(), s(keys::customer(id))),
                        (schema::SK.to_owned(), s(keys::PROFILE)),
                    ])
                })
                .collect();
            for i in self
                .batch_get(keys, Some("customer_id, churn_risk"))
                .await?
            {
                if let (Some(id), Some(r)) = (
                    str_of(&i, "customer_id"),
                    i.get("churn_risk").and_then(|v| v.as_n().ok()),
                ) {
                    risk.insert(id.to_owned(), r.parse().unwrap_or(0.0));
                }
            }
        }
        let items = ids
            .into_iter()
            .map(|id| {
                Ok(Member {
                    churn_risk: risk.get(&id).copied().unwrap_or(0.0),
                    customer_id: feedloop_core::envelope::CustomerId::parse(&id).map_err(|e| {
                        StoreError::Permanent(format!("segment index: stored customer id: {e}"))
                    })?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    async fn segment_counts(&self) -> Result<BTreeMap<Segment, u64>, StoreError> {
        let keys: Vec<Item> = (0..keys::SEGMENT_COUNT_SHARDS)
            .map(|shard| {
                HashMap::from([
                    (schema::PK.to_owned(), s(keys::segment_count(shard))),
                    (schema::SK.to_owned(), s(keys::SEGMENT_COUNT)),
                ])
            })
            .collect();
        let mut out = BTreeMap::new();
        for item in self.batch_get(keys, None).await? {
            for seg in Segment::ALL {
                let n = item
                    .get(&format!("n:{}", seg.as_str()))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                *out.entry(seg).or_insert(0i64) += n;
            }
        }
        Ok(out.into_iter().map(|(k, v)| (k, v.max(0) as u64)).collect())
    }

    async fn day_counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<NaiveDate, Counters>, StoreError> {
        Ok(self
            .day_range_counters(from, to)
            .await?
            .into_iter()
            .map(|(day, c)| (day, c.into_iter().collect()))
            .collect())
    }

    async fn variant_stats(
        &self,
    ) -> Result<feedloop_core::followup::outcomes::VariantRows, StoreError> {
        self.followup_stats().await
    }

    async fn erase(
        &self,
        customer_id: &CustomerId,
        suppression_keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let customer = customer_id.as_str();
        // Suppress first: a follow-up dispatched while the erase runs is refused.
        feedloop_kit::ports::followup::SuppressionList::suppress(
            self,
            suppression_keys,
            "erased",
            now,
        )
        .await?;
        let mut e = Erased {
            suppression_keys: suppression_keys.len() as u64,
            ..Erased::default()
        };
        let pk = keys::customer(customer);
        let mut doomed: Vec<(String, String)> = Vec::new();
        let mut segment: Option<Segment> = None;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .query_table()
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_values(":pk", s(&pk))
                .projection_expression("PK, SK, reject_pk, reject_sk, #segment")
                .expression_attribute_names("#segment", "segment")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("query customer items", &e))?;
            for i in out.items() {
                let Some(sk) = str_of(i, schema::SK) else {
                    continue;
                };
                match sk {
                    keys::PROFILE => {
                        e.profile = true;
                        segment = str_of(i, "segment")
                            .and_then(|n| Segment::ALL.into_iter().find(|x| x.as_str() == n));
                        // Deleted below together with its segment count.
                        continue;
                    }
                    s if s.starts_with(keys::FEEDBACK_PREFIX) => e.feedback += 1,
                    s if s.starts_with(keys::FOLLOWUP_PREFIX) => e.followups += 1,
                    s if s.starts_with("REJ#") => {
                        e.rejects += 1;
                        if let (Some(rp), Some(rs)) =
                            (str_of(i, "reject_pk"), str_of(i, "reject_sk"))
                        {
                            doomed.push((rp.to_owned(), rs.to_owned()));
                        }
                    }
                    _ => e.other += 1,
                }
                doomed.push((pk.clone(), sk.to_owned()));
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        if e.profile {
            self.delete_profile(customer, segment).await?;
        }
        delete_all(self, doomed).await?;
        Ok(e)
    }

    async fn set_consent(
        &self,
        customer_id: &CustomerId,
        consent: &Consent,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let customer = customer_id.as_str();
        use feedloop_kit::ports::ingest::ProfileStore;
        let id = feedloop_core::envelope::CustomerId::parse(customer)
            .map_err(|e| StoreError::Permanent(format!("customer id: {e}")))?;
        // Ingest may commit the same profile meanwhile: reload and reapply on conflict.
        for _ in 0..5 {
            let Some(mut current) = self.load_profile(&id).await? else {
                return Ok(None);
            };
            current.value.set_consent(now, source, consent);
            if self
                .put_profile(&current.value, current.version, now)
                .await?
            {
                return Ok(Some(current.value));
            }
        }
        Err(StoreError::Transient(
            "the profile kept changing during the consent update".into(),
        ))
    }
}

impl DynamoStore {
    /// The profile and its place in the segment counts go together (one transaction),
    /// so an erase never leaves a segment size counting someone who is gone.
    async fn delete_profile(
        &self,
        customer: &str,
        segment: Option<Segment>,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let delete = self
            .tx_delete_key(s(keys::customer(customer)), s(keys::PROFILE))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", schema::PK)
            .build()
            .map_err(|e| StoreError::Permanent(format!("building profile delete: {e}")))?;
        let mut tx = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build());
        if let Some(u) = crate::store::segment_move(self, customer, segment, None)? {
            tx = tx.transact_items(TransactWriteItem::builder().update(u).build());
        }
        match crate::store::transact(tx, "delete profile").await? {
            None => Ok(()),
            // Gone already (a concurrent erase): nothing left to count.
            Some(c) if c.first_check_failed() => Ok(()),
            Some(c) => Err(c.error),
        }
    }
}
