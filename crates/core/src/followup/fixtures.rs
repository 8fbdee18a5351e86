//! Test fixtures shared by this module's unit tests.

use chrono::{DateTime, Utc};

use super::{ContactChannel, FollowUpIntent, Purpose};
use crate::envelope::{CustomerId, FeedbackId};

/// Feedback f1 of customer c1 under `playbook`, whose template has the same name; no
/// optional facts, never delivered before.
pub(crate) fn intent(
    purpose: Purpose,
    playbook: &str,
    channels: Vec<ContactChannel>,
    not_before: DateTime<Utc>,
) -> FollowUpIntent {
    FollowUpIntent {
        feedback_id: FeedbackId::parse("f1").expect("a valid id"),
        customer_id: CustomerId::parse("c1").expect("a valid id"),
        playbook: playbook.into(),
        purpose,
        priority: 100,
        template: playbook.into(),
        channels,
        not_before,
        occurred_at: None,
        top_negative_theme: None,
        nps_score: None,
        ticket_id: None,
        theme_label: None,
        inbound: None,
        locale: None,
        sentiment: None,
        delivery_attempts: 0,
        first_seen: Vec::new(),
        staff_task: false,
    }
}
