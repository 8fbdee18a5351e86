//! What the dispatcher needs from the outside world, one narrow trait each.

use std::future::Future;

pub use crate::StoreError;
use chrono::{DateTime, Utc};
use feedloop_core::envelope::{CustomerId, CustomerInfo, FeedbackId};
use feedloop_core::followup::guards::CapPolicy;
use feedloop_core::followup::outcomes::SentState;
use feedloop_core::followup::plan::Message;
use feedloop_core::followup::{ContactChannel, PlaybookId, Purpose, VariantId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This dispatcher may send; the attempt and the cap are recorded.
    Granted,
    /// This (feedback, playbook) was claimed before: never send twice.
    AlreadyClaimed,
    /// A follow-up went to this customer inside the global or playbook window; the
    /// caps allow this one from `allowed_at`.
    Capped { allowed_at: DateTime<Utc> },
    /// One of `unless_suppressed` went on the list after it was read (an erasure or an
    /// unsubscribe racing this dispatch): nothing claimed, nothing to send.
    Suppressed,
}

/// What `record_claimed` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Written,
    /// Recorded before (a retried write whose answer was lost): left as it is.
    AlreadyRecorded,
    /// The claim is gone: the customer was erased while the message was out.
    ClaimGone,
}

/// What `settle_interrupted` found for an attempt that was claimed before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// It has its outcome already: the intent is a duplicate.
    Final,
    /// Claimed recently: its dispatcher may still be sending or recording.
    InFlight,
    /// Its dispatcher died between claim and record; now it is recorded failed.
    Settled,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub customer_id: &'a CustomerId,
    pub feedback_id: &'a FeedbackId,
    pub playbook: &'a PlaybookId,
    /// Service replies and marketing keep separate caps (`CapPolicy::allowed_at`).
    pub purpose: Purpose,
    pub now: DateTime<Utc>,
    pub caps: CapPolicy,
    /// Suppression keys that must still be off the list when the claim is written (the
    /// customer id and the chosen address), so an erasure between the read and the
    /// claim stops the send.
    pub unless_suppressed: &'a [String],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Claimed by a dispatcher that has not recorded the outcome yet. Stored on the
    /// attempt's item between claim and record; a history lists only recorded ones.
    Claimed,
    Sent,
    /// Dry-run mode: everything but the delivery happened.
    DryRun,
    Skipped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Claimed => "claimed",
            Status::Sent => "sent",
            Status::DryRun => "dry_run",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

/// One line of a customer's follow-up history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttemptRecord {
    pub customer_id: CustomerId,
    pub feedback_id: FeedbackId,
    pub playbook: PlaybookId,
    pub status: Status,
    pub at: DateTime<Utc>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    pub channel: Option<ContactChannel>,
    pub variant: Option<VariantId>,
    /// Subject or SMS text.
    pub preview: Option<String>,
    /// The provider's message id (SES / SNS).
    pub provider_id: Option<String>,
    /// Set when sent: the baseline its A/B outcome is measured against.
    pub sent: Option<SentState>,
}

pub trait FollowUpStore: Send + Sync {
    /// The customer's current contact block (from the profile), `None` if unknown.
    fn contact(
        &self,
        customer: &CustomerId,
    ) -> impl Future<Output = Result<Option<CustomerInfo>, StoreError>> + Send;
    /// Those of these suppression keys that are on the list.
    fn suppressed_among(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Atomically record the attempt and advance the caps.
    fn claim(
        &self,
        request: &ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Undo a granted claim whose message the provider did not take: the caps go back
    /// to where they were (only a sent message counts against them) and, unless
    /// `keep_attempt`, the (feedback, playbook) attempt is forgotten so a later
    /// delivery of the intent may claim it again.
    fn release(
        &self,
        request: &ClaimRequest<'_>,
        keep_attempt: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Write the attempt's final status. A sent record also makes it the customer's
    /// pending follow-up (for attribution) and counts it for its variant. A skipped
    /// record never overwrites an existing one (a duplicate intent must not turn a
    /// "sent" into "skipped").
    fn record(
        &self,
        attempt: &AttemptRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The outcome of a granted claim, written over the claim and only while the claim
    /// is there: an erasure that deleted it meanwhile must not get the attempt back
    /// (`ClaimGone`, nothing written). Re-recording a recorded attempt changes nothing.
    fn record_claimed(
        &self,
        attempt: &AttemptRecord,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;
    /// Give an attempt that is still only claimed, and was claimed before
    /// `claimed_before`, its final record (`attempt`, failed): its dispatcher stopped
    /// between claim and record, so nobody else will. Conditional, so a record written
    /// meanwhile is never overwritten.
    fn settle_interrupted(
        &self,
        attempt: &AttemptRecord,
        claimed_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;
}

/// Salted keys that are never contacted again (see `core::followup::suppression`).
pub trait SuppressionList: Send + Sync {
    /// Put the keys on the list. A key already there for a reason consent cannot lift
    /// (a bounce, an erasure) keeps it: an unsubscribe never softens a bounce.
    fn suppress(
        &self,
        keys: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Take off the keys that are on the list for the customer's own wish (an
    /// unsubscribe, a complaint) — a staff-recorded opt-in's doing; the provider's
    /// verdicts and erasures stay. How many came off.
    fn lift(&self, keys: &[String]) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// Count one soft bounce for this key (idempotent per `event_id`, so a
    /// re-delivered notification counts once); the count so far.
    fn count_soft_bounce(
        &self,
        key: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The provider did not take the message for a passing reason (throttling, quota,
    /// a sending pause, no answer): try again later.
    Transient,
    /// The address itself was refused (malformed, unknown, opted out at the carrier):
    /// never try it again.
    BadRecipient,
    /// Anything else that retrying will not fix (our sender, our content).
    Permanent,
    /// The request may have reached the provider and no answer came back (a timeout,
    /// a dropped connection, an unreadable reply): it may have been delivered, so it
    /// is never sent again.
    Unconfirmed,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    pub kind: FailureKind,
}

impl DeliveryError {
    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            kind: FailureKind::Transient,
        }
    }
    pub fn bad_recipient(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            kind: FailureKind::BadRecipient,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            kind: FailureKind::Permanent,
        }
    }
    pub fn unconfirmed(message: impl Into<String>) -> Self {
        DeliveryError {
            message: message.into(),
            kind: FailureKind::Unconfirmed,
        }
    }
}

/// A case handed to the business's people: ids only (staff tooling reads the rest
/// from the API), so nothing personal travels in the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StaffTask {
    pub customer_id: CustomerId,
    pub feedback_id: FeedbackId,
    pub playbook: PlaybookId,
    /// The channel the customer's message goes by.
    pub channel: ContactChannel,
    pub at: DateTime<Utc>,
}

pub trait Deliver: Send + Sync {
    /// Hand the message to the provider; the provider's message id on success.
    fn deliver(
        &self,
        message: &Message,
        purpose: Purpose,
    ) -> impl Future<Output = Result<String, DeliveryError>> + Send;
    /// Tell the business's people the case needs one of them (the playbook's message
    /// says so). Done before the message goes, so no message promises a call that
    /// nobody was told about.
    fn hand_to_staff(
        &self,
        task: &StaffTask,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

pub trait Requeue: Send + Sync {
    /// Put an intent back on the queue, invisible for `delay` (at most 15 minutes).
    fn requeue(
        &self,
        body: &str,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
