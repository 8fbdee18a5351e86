//! What the dispatcher reports: the outcome of one intent, and the counts of a batch
//! with the CloudWatch metric each is emitted as.

use chrono::{DateTime, Utc};
use feedloop_kit::ports::followup::Status;
use serde::Serialize;

feedloop_kit::counters! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
    pub struct DispatchReport {
        sent => "FollowUpsSent",
        dry_run => "FollowUpsDryRun",
        skipped => "FollowUpsSkipped",
        failed => "FollowUpsFailed",
        deferred => "FollowUpsDeferred",
        duplicate => "FollowUpsDuplicate",
        rejected => "FollowUpsRejected",
        retried => "FollowUpsRetried",
        suppressed => "FollowUpsSuppressed",
        /// Refused by the provider for a passing reason: caps given back, intent requeued.
        backed_off => "FollowUpsBackedOff",
    }
}

impl DispatchReport {
    pub fn count(&mut self, outcome: &Handled) {
        match outcome {
            Handled::Recorded(Status::Sent) => self.sent += 1,
            Handled::Recorded(Status::DryRun) => self.dry_run += 1,
            Handled::Recorded(Status::Skipped) => self.skipped += 1,
            Handled::Recorded(Status::Failed) => self.failed += 1,
            // Every outcome is recorded over its claim, never as one.
            Handled::Recorded(Status::Claimed) => {}
            Handled::Deferred => self.deferred += 1,
            Handled::Suppressed => self.suppressed += 1,
            Handled::Duplicate => self.duplicate += 1,
            Handled::Rejected => self.rejected += 1,
            Handled::BackedOff => self.backed_off += 1,
        }
    }
}

impl DispatchReport {
    pub fn emf(&self, now: DateTime<Utc>) -> String {
        feedloop_kit::emf_line("followup", &self.metrics(), now)
    }
}

/// What happened to one intent (final unless `Err`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Recorded(Status),
    Deferred,
    Duplicate,
    Rejected,
    /// On the suppression list: not contacted and, deliberately, not recorded.
    Suppressed,
    /// The provider refused it for now: claim and caps released, back on the queue.
    BackedOff,
}
