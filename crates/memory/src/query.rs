//! The store as a query store (handler tests, the demo dashboard). Same ordering and
//! paging semantics as DynamoDB.

use chrono::{DateTime, NaiveDate, Utc};
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::records::FeedbackRecord;
use feedloop_core::reports::Counters;
use feedloop_kit::ports::followup::AttemptRecord;
use feedloop_kit::ports::query::*;

use crate::MemoryStore;

impl QueryStore for MemoryStore {
    async fn profile(&self, customer_id: &CustomerId) -> Result<Option<Profile>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| s.profiles.get(customer).map(|p| p.value.clone())))
    }

    async fn profiles(&self, customers: &[CustomerId]) -> Result<Vec<Profile>, StoreError> {
        Ok(self.with(|s| {
            customers
                .iter()
                .filter_map(|c| s.profiles.get(c.as_str()).map(|p| p.value.clone()))
                .collect()
        }))
    }

    async fn feedback_page(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        after: Option<String>,
    ) -> Result<Page<FeedbackRecord>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| {
            let mut all: Vec<(&String, &FeedbackRecord)> = s
                .feedback
                .iter()
                .filter(|((c, _), _)| c == customer)
                .map(|((_, k), f)| (k, f))
                .collect();
            all.reverse();
            let start = after.as_ref().map_or(0, |a| {
                all.iter()
                    .position(|(k, _)| k.as_str() < a.as_str())
                    .unwrap_or(all.len())
            });
            let items: Vec<_> = all.iter().skip(start).take(limit).collect();
            let next = (start + items.len() < all.len())
                .then(|| items.last().map(|(k, _)| (*k).clone()))
                .flatten();
            Page {
                items: items.into_iter().map(|(_, f)| (*f).clone()).collect(),
                next,
            }
        }))
    }

    async fn followups(&self, customer_id: &CustomerId) -> Result<Vec<AttemptRecord>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| {
            let mut v: Vec<AttemptRecord> = s
                .followups
                .iter()
                .filter(|((c, _, _), _)| c == customer)
                .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
                .collect();
            v.sort_by_key(|a| a.at);
            v
        }))
    }

    async fn segment_page(
        &self,
        segment: Segment,
        limit: usize,
        after: Option<String>,
    ) -> Result<Page<Member>, StoreError> {
        Ok(self.with(|s| {
            let mut all: Vec<Member> = s
                .profiles
                .values()
                .filter(|p| p.value.segment() == segment)
                .map(|p| Member {
                    customer_id: p.value.customer_id.clone(),
                    churn_risk: p.value.churn_risk().score,
                })
                .collect();
            all.sort_by(|a, b| {
                b.churn_risk
                    .total_cmp(&a.churn_risk)
                    .then(a.customer_id.cmp(&b.customer_id))
            });
            let start = after
                .as_ref()
                .and_then(|a| all.iter().position(|m| m.customer_id.as_str() == a))
                .map_or(0, |i| i + 1);
            let items: Vec<Member> = all.iter().skip(start).take(limit).cloned().collect();
            let next = (start + items.len() < all.len())
                .then(|| items.last().map(|m| m.customer_id.to_string()))
                .flatten();
            Page { items, next }
        }))
    }

    async fn segment_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<feedloop_core::profile::Segment, u64>, StoreError> {
        Ok(self.with(|s| {
            let mut out: std::collections::BTreeMap<_, u64> =
                feedloop_core::profile::Segment::ALL.map(|g| (g, 0)).into();
            for p in s.profiles.values() {
                *out.entry(p.value.segment()).or_insert(0) += 1;
            }
            out
        }))
    }

    async fn day_counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<NaiveDate, Counters>, StoreError> {
        Ok(self.with(|s| {
            let mut out = std::collections::BTreeMap::new();
            for ((d, _), c) in &s.aggregates {
                if (from..=to).contains(d) {
                    feedloop_core::reports::add_into(
                        out.entry(*d).or_insert_with(Counters::new),
                        c,
                    );
                }
            }
            out
        }))
    }

    async fn variant_stats(
        &self,
    ) -> Result<feedloop_core::followup::outcomes::VariantRows, StoreError> {
        Ok(self.with(|s| {
            s.variant_stats
                .iter()
                .map(|((p, v), st)| (p.clone(), v.clone(), st.clone()))
                .collect()
        }))
    }

    async fn erase(
        &self,
        customer_id: &CustomerId,
        keys: &[String],
        _now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| {
            for k in keys {
                s.suppressed.insert(k.clone(), "erased".into());
            }
            let mut e = Erased {
                suppression_keys: keys.len() as u64,
                ..Erased::default()
            };
            e.profile = s.profiles.remove(customer).is_some();
            let before = s.feedback.len();
            s.feedback.retain(|(c, _), _| c != customer);
            e.feedback = (before - s.feedback.len()) as u64;
            let before = s.followups.len();
            s.followups.retain(|(c, _, _), _| c != customer);
            e.followups = (before - s.followups.len()) as u64;
            let before = s.rejects.len();
            s.rejects
                .retain(|_, r| r.customer_id.as_deref() != Some(customer));
            e.rejects = (before - s.rejects.len()) as u64;
            e.other = u64::from(s.pending_followups.remove(customer).is_some())
                + u64::from(s.last_sent.remove(customer).is_some());
            e
        }))
    }

    async fn set_consent(
        &self,
        customer_id: &CustomerId,
        consent: &Consent,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let customer = customer_id.as_str();
        Ok(self.with(|s| {
            let p = s.profiles.get_mut(customer)?;
            p.value.set_consent(now, source, consent);
            p.version += 1;
            Some(p.value.clone())
        }))
    }
}
