//! The capabilities the ingest service needs, one narrow trait each.

use std::future::Future;

use chrono::{DateTime, Utc};
use feedloop_core::envelope::CustomerId;
use feedloop_core::followup::outcomes::{Outcome, SentState};
use feedloop_core::followup::FollowUpIntent;
use feedloop_core::profile::Profile;
use feedloop_core::records::Effects;
use serde::Serialize;

/// A stored value and the version it was read at (optimistic concurrency).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// Everything one feedback writes, guarded by the profile version it was computed from.
#[derive(Debug, Clone)]
pub struct Commit {
    pub effects: Effects,
    /// `None`: the profile must not exist yet.
    pub expected_version: Option<u64>,
    /// The stored profile's segment before this feedback (`None`: a new customer), so
    /// a store can keep segment sizes as counters instead of counting at read time.
    pub previous_segment: Option<feedloop_core::profile::Segment>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Applied,
    /// This feedback id was committed before: nothing was written.
    Duplicate,
    /// The profile changed since it was read: re-read and retry.
    Conflict,
}

/// A message that can never succeed, kept for people to look at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectRecord {
    pub message_id: String,
    pub reason: String,
    /// The first 8 KiB of the body, cut at a character boundary.
    pub body_prefix: String,
    pub received_at: DateTime<Utc>,
    /// When the body names one (for erasure requests).
    pub customer_id: Option<String>,
}

pub use crate::StoreError;

pub trait ProfileStore: Send + Sync {
    fn load_profile(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Option<Versioned<Profile>>, StoreError>> + Send;

    /// Write the feedback record, the profile and the aggregate increments atomically,
    /// unless the feedback was committed before or the profile version moved.
    fn commit(
        &self,
        commit: &Commit,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
}

pub trait RejectStore: Send + Sync {
    /// Idempotent by message id.
    fn record_reject(
        &self,
        reject: &RejectRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A message as a queue consumer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

/// The consumer side of a queue, as Lambda's SQS poller uses it. Tests and the local
/// runner drive the real handler through this, with real receive/delete semantics.
pub trait MessageQueue: Send + Sync {
    fn receive(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<QueueMessage>, StoreError>> + Send;
    /// Acknowledge (delete) processed messages.
    fn ack(&self, messages: &[QueueMessage])
        -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where ingest hands follow-ups over, and the A/B bookkeeping that needs the next
/// feedback. Every method is idempotent: ingest calls them again on a re-delivery.
pub trait FollowUpSink: Send + Sync {
    /// Put an intent on the follow-up queue. Sending it twice is harmless: the
    /// dispatcher's claim allows one attempt per (feedback, playbook).
    fn enqueue(
        &self,
        intent: &FollowUpIntent,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The intent committed with a feedback, for re-delivered messages.
    fn stored_intent(
        &self,
        customer: &CustomerId,
        history_key: &str,
    ) -> impl Future<Output = Result<Option<FollowUpIntent>, StoreError>> + Send;
    /// The last follow-up sent to the customer that no feedback was attributed to yet.
    fn pending(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Option<SentState>, StoreError>> + Send;
    /// Count the outcome for its variant and clear the pending follow-up, once: a
    /// second call for the same follow-up changes nothing.
    fn record_outcome(
        &self,
        customer: &CustomerId,
        sent: &SentState,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Follow-ups switched off (tests of ingest alone, `feedloop process`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFollowUps;

impl FollowUpSink for NoFollowUps {
    async fn enqueue(&self, _: &FollowUpIntent, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn stored_intent(
        &self,
        _: &CustomerId,
        _: &str,
    ) -> Result<Option<FollowUpIntent>, StoreError> {
        Ok(None)
    }
    async fn pending(&self, _: &CustomerId) -> Result<Option<SentState>, StoreError> {
        Ok(None)
    }
    async fn record_outcome(
        &self,
        _: &CustomerId,
        _: &SentState,
        _: &Outcome,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}
