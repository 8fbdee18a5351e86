//! What the API reads, deletes and (consent only) changes, one narrow trait.

use std::collections::BTreeMap;
use std::future::Future;

use super::followup::AttemptRecord;
pub use crate::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
pub use feedloop_core::envelope::{Consent, CustomerId};
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::records::FeedbackRecord;
use feedloop_core::reports::Counters;
use serde::{Deserialize, Serialize};

/// One page and the store's position after it (`None`: last page). The position is
/// the store's own (a sort key); the API signs it into an opaque cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A customer in a segment list, without loading the whole profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    pub customer_id: CustomerId,
    pub churn_risk: f64,
}

/// What an erasure removed. Counts only: the response must not echo personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Erased {
    pub profile: bool,
    pub feedback: u64,
    pub followups: u64,
    pub rejects: u64,
    /// Caps, pending follow-up and other per-customer bookkeeping items.
    pub other: u64,
    /// Salted hashes now on the suppression list (id, e-mail, phone).
    pub suppression_keys: u64,
}

/// The read side and the API's few writes (erase, consent). Unsubscribes and opt-ins
/// go through the same suppression list the dispatcher reads.
pub trait QueryStore: crate::ports::followup::SuppressionList {
    fn profile(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
    /// Several profiles in one read (the dashboard's at-risk lists); a missing one is
    /// left out.
    fn profiles(
        &self,
        customers: &[CustomerId],
    ) -> impl Future<Output = Result<Vec<Profile>, StoreError>> + Send;
    /// Newest first, starting after `after`.
    fn feedback_page(
        &self,
        customer: &CustomerId,
        limit: usize,
        after: Option<String>,
    ) -> impl Future<Output = Result<Page<FeedbackRecord>, StoreError>> + Send;
    fn followups(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Vec<AttemptRecord>, StoreError>> + Send;
    /// Highest churn risk first, starting after `after`.
    fn segment_page(
        &self,
        segment: Segment,
        limit: usize,
        after: Option<String>,
    ) -> impl Future<Output = Result<Page<Member>, StoreError>> + Send;
    /// Customers per segment, every segment present (kept at write time: no count at
    /// read time).
    fn segment_counts(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<Segment, u64>, StoreError>> + Send;
    /// The summed counters (all shards) of every day in `from..=to` that has any; read
    /// as one range so a store can batch the keys.
    fn day_counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<BTreeMap<NaiveDate, Counters>, StoreError>> + Send;
    /// Every playbook variant's A/B counters: (playbook, variant, counters).
    fn variant_stats(
        &self,
    ) -> impl Future<Output = Result<feedloop_core::followup::outcomes::VariantRows, StoreError>> + Send;
    /// Put the keys on the suppression list, then delete everything stored under the
    /// customer (profile, feedback, follow-ups, caps) and their reject records.
    fn erase(
        &self,
        customer: &CustomerId,
        suppression_keys: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Erased, StoreError>> + Send;
    /// Record an explicit consent statement on the customer's profile (a versioned
    /// write, retried on conflict with ingest). `None` when there is no such profile.
    fn set_consent(
        &self,
        customer: &CustomerId,
        consent: &Consent,
        source: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
}
