//! The store as the dispatcher's store and suppression list, an outbox that records
//! deliveries, and a requeue list.

use std::sync::{Arc, Mutex};

use crate::{AttemptKey, MemoryState, MemoryStore};
use feedloop_core::envelope::{CustomerId, CustomerInfo, FeedbackId};
use feedloop_core::followup::guards::LastSent;
use feedloop_core::followup::plan::Message;
use feedloop_core::followup::suppression;
use feedloop_core::followup::{PlaybookId, Purpose};

use feedloop_kit::ports::followup::*;

impl FollowUpStore for MemoryStore {
    async fn contact(&self, customer: &CustomerId) -> Result<Option<CustomerInfo>, StoreError> {
        Ok(self.with(|s| {
            s.profiles
                .get(customer.as_str())
                .and_then(|p| p.value.contact.as_ref().map(|c| c.value.clone()))
        }))
    }

    async fn suppressed_among(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|s| {
            keys.iter()
                .filter(|k| s.suppressed.contains_key(*k))
                .cloned()
                .collect()
        }))
    }

    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        Ok(self.with(|s| {
            let key = attempt_key(r.customer_id, r.feedback_id, r.playbook);
            if s.followups.contains_key(&key) {
                return Claim::AlreadyClaimed;
            }
            if r.unless_suppressed
                .iter()
                .any(|k| s.suppressed.contains_key(k))
            {
                return Claim::Suppressed;
            }
            let last = s.last_sent.entry(r.customer_id.to_string()).or_default();
            let sent = LastSent {
                service: last.get(SERVICE).copied(),
                marketing: last.get(MARKETING).copied(),
                playbook: last.get(&playbook_key(r.playbook)).copied(),
            };
            let allowed_at = r.caps.allowed_at(r.purpose, &sent, r.now);
            if allowed_at > r.now {
                return Claim::Capped { allowed_at };
            }
            let (purpose, playbook) = (purpose_key(r.purpose), playbook_key(r.playbook));
            let before = (
                last.insert(purpose.into(), r.now),
                last.insert(playbook, r.now),
            );
            s.caps_before_claim.insert(key.clone(), before);
            s.followups.insert(key, claimed(r.now));
            Claim::Granted
        }))
    }

    async fn release(&self, r: &ClaimRequest<'_>, keep_attempt: bool) -> Result<(), StoreError> {
        self.with(|s| {
            let key = attempt_key(r.customer_id, r.feedback_id, r.playbook);
            let Some((global, playbook)) = s.caps_before_claim.remove(&key) else {
                return;
            };
            let last = s.last_sent.entry(r.customer_id.to_string()).or_default();
            let (purpose, pb) = (purpose_key(r.purpose).to_owned(), playbook_key(r.playbook));
            // Only while the caps are still this claim's own (like the DynamoDB
            // condition): a later send is never rolled back.
            if last.get(&purpose) == Some(&r.now) && last.get(&pb) == Some(&r.now) {
                for (k, v) in [(purpose, global), (pb, playbook)] {
                    match v {
                        Some(t) => last.insert(k, t),
                        None => last.remove(&k),
                    };
                }
            }
            if !keep_attempt && s.followups.get(&key) == Some(&claimed(r.now)) {
                s.followups.remove(&key);
            }
        });
        Ok(())
    }

    async fn record(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        let value = serde_json::to_value(a)
            .map_err(|e| StoreError::Permanent(format!("encoding attempt: {e}")))?;
        self.with(|s| {
            let key = attempt_key(&a.customer_id, &a.feedback_id, &a.playbook);
            if s.followups.contains_key(&key) {
                return;
            }
            write_attempt(s, key, value, a);
        });
        Ok(())
    }

    async fn record_claimed(&self, a: &AttemptRecord) -> Result<Recorded, StoreError> {
        let value = serde_json::to_value(a)
            .map_err(|e| StoreError::Permanent(format!("encoding attempt: {e}")))?;
        Ok(self.with(|s| {
            let key = attempt_key(&a.customer_id, &a.feedback_id, &a.playbook);
            match s.followups.get(&key) {
                None => return Recorded::ClaimGone,
                Some(old) if old["status"] != Status::Claimed.as_str() => {
                    return Recorded::AlreadyRecorded
                }
                Some(_) => {}
            }
            write_attempt(s, key, value, a);
            Recorded::Written
        }))
    }

    async fn settle_interrupted(
        &self,
        a: &AttemptRecord,
        claimed_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Settle, StoreError> {
        let value = serde_json::to_value(a)
            .map_err(|e| StoreError::Permanent(format!("encoding attempt: {e}")))?;
        Ok(self.with(|s| {
            let key = attempt_key(&a.customer_id, &a.feedback_id, &a.playbook);
            let Some(old) = s.followups.get(&key) else {
                return Settle::Final;
            };
            if old["status"] != Status::Claimed.as_str() {
                return Settle::Final;
            }
            let at = old["claimed_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if at.is_some_and(|t| t >= claimed_before) {
                return Settle::InFlight;
            }
            s.followups.insert(key, value);
            Settle::Settled
        }))
    }
}

// The cap map's keys, one per purpose and one per playbook.
const SERVICE: &str = "purpose:service";
const MARKETING: &str = "purpose:marketing";

fn purpose_key(p: Purpose) -> &'static str {
    match p {
        Purpose::Service => SERVICE,
        Purpose::Marketing => MARKETING,
    }
}

/// The attempt's record; a sent one is also the customer's pending follow-up and
/// counts for its variant.
fn write_attempt(
    s: &mut MemoryState,
    key: AttemptKey,
    value: serde_json::Value,
    a: &AttemptRecord,
) {
    s.followups.insert(key, value);
    if let Some(sent) = &a.sent {
        s.pending_followups
            .insert(a.customer_id.to_string(), sent.clone());
        s.variant_stats
            .entry((sent.playbook.clone(), sent.variant.clone()))
            .or_default()
            .record_sent();
    }
}

fn attempt_key(c: &CustomerId, f: &FeedbackId, p: &PlaybookId) -> AttemptKey {
    (c.clone(), f.clone(), p.clone())
}

fn playbook_key(playbook: &PlaybookId) -> String {
    format!("playbook:{playbook}")
}

/// An attempt between claim and record, as the DynamoDB item has it.
fn claimed(at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    serde_json::json!({"status": Status::Claimed, "claimed_at": at.to_rfc3339()})
}

impl SuppressionList for MemoryStore {
    async fn suppress(
        &self,
        keys: &[String],
        reason: &str,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            for k in keys {
                let kept = s
                    .suppressed
                    .get(k)
                    .is_some_and(|r| !suppression::liftable_by_consent(r));
                if !kept {
                    s.suppressed.insert(k.clone(), reason.to_owned());
                }
            }
        });
        Ok(())
    }

    async fn lift(&self, keys: &[String]) -> Result<u32, StoreError> {
        Ok(self.with(|s| {
            let mut lifted = 0;
            for k in keys {
                if s.suppressed
                    .get(k)
                    .is_some_and(|r| suppression::liftable_by_consent(r))
                {
                    s.suppressed.remove(k);
                    lifted += 1;
                }
            }
            lifted
        }))
    }

    async fn count_soft_bounce(
        &self,
        key: &str,
        event_id: &str,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, StoreError> {
        Ok(self.with(|s| {
            let seen = s.soft_bounces.entry(key.to_owned()).or_default();
            seen.insert(event_id.to_owned());
            seen.len() as u32
        }))
    }
}

/// Records every delivery instead of sending; `fail_next` makes the next one fail.
/// Clones share what was recorded.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    pub sent: Arc<Mutex<Vec<(Message, Purpose)>>>,
    failures: Arc<Mutex<Vec<DeliveryError>>>,
    pub staff_tasks: Arc<Mutex<Vec<StaffTask>>>,
}

impl Outbox {
    /// Make the next delivery fail with `e` (several queue up, the last one first).
    pub fn fail_next(&self, e: DeliveryError) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// How many messages were delivered so far.
    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Deliver for Outbox {
    async fn deliver(&self, m: &Message, purpose: Purpose) -> Result<String, DeliveryError> {
        if let Some(e) = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        {
            return Err(e);
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push((m.clone(), purpose));
        Ok(format!("outbox-{}", sent.len()))
    }

    async fn hand_to_staff(&self, task: &StaffTask) -> Result<(), DeliveryError> {
        self.staff_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.clone());
        Ok(())
    }
}

/// Records every requeue; clones share the list.
#[derive(Debug, Default, Clone)]
pub struct RequeueList(pub Arc<Mutex<Vec<(String, std::time::Duration)>>>);

impl Requeue for RequeueList {
    async fn requeue(&self, body: &str, delay: std::time::Duration) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((body.to_owned(), delay));
        Ok(())
    }
}
