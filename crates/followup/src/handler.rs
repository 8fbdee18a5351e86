//! One SQS batch of follow-up intents. For each: re-check the guards against the
//! customer as they are now (an opt-out since the feedback wins), defer if it is not
//! time yet, claim atomically (dedupe + caps), deliver or dry-run, record the outcome.
//! Store errors are transient: the record is reported as a batch item failure and SQS
//! redelivers it; the claim keeps a redelivery from sending twice.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use feedloop_core::envelope::customer_hint;
use feedloop_core::followup::guards::SkipReason;
use feedloop_core::followup::outcomes::SentState;
use feedloop_core::followup::plan::{after_cap, plan, DispatchPolicy, Message, Plan};
use feedloop_core::followup::templates::Templates;
use std::ops::ControlFlow::{self, Break, Continue};

use feedloop_core::followup::suppression::{self, ChannelKeys};
use feedloop_core::followup::{ContactChannel, FollowUpIntent};
use feedloop_kit::batch::{self, BatchError};
use feedloop_kit::ports::ingest::{RejectRecord, RejectStore};
use tracing::{info, warn};

use feedloop_kit::ports::followup::*;

/// SQS delays are at most 15 minutes; longer waits take several hops.
pub const MAX_REQUEUE_DELAY: std::time::Duration = std::time::Duration::from_secs(900);
/// Delivery attempts within one invocation for throttling / network errors.
pub const DELIVERY_ATTEMPTS: u32 = 3;
/// Invocations that may try an intent the provider keeps refusing for a passing
/// reason; between them it waits on the queue (`backoff_delay`), about an hour in all.
pub const DELIVERY_ROUNDS: u32 = 8;

/// The reasons of the two "failed" outcomes where the customer may have the message.
pub const UNCONFIRMED: &str =
    "the provider did not answer; not sent again, it may have been delivered";
pub const INTERRUPTED: &str =
    "interrupted between claim and record; not sent again, it may have been delivered";
pub const INTERRUPTED_DRY_RUN: &str = "interrupted between claim and record (dry run)";

/// How long an intent waits on the queue after `failed_rounds` refused deliveries.
pub fn backoff_delay(failed_rounds: u32) -> std::time::Duration {
    let secs = 60u64.saturating_mul(1 << failed_rounds.min(10));
    std::time::Duration::from_secs(secs).min(MAX_REQUEUE_DELAY)
}

/// The one clock type, the ingest service's: tests and the demo pass a fixed time.
pub use feedloop_kit::Clock;

feedloop_core::keyword_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DeliveryMode ("delivery mode") {
        /// Decide, claim, render and record; send nothing. The default for a fresh deploy.
        DryRun = "dry-run",
        Live = "live",
    }
}

pub use crate::report::{DispatchReport, Handled};

pub struct Dispatcher<S, D, Q> {
    pub store: S,
    pub deliver: D,
    pub requeue: Q,
    pub templates: Templates,
    pub policy: DispatchPolicy,
    pub mode: DeliveryMode,
    pub suppression_salt: String,
    pub clock: Clock,
    /// How long a claim may be held by a live dispatcher (the function timeout): an
    /// attempt still only claimed after that was abandoned between claim and record.
    pub claim_lease: std::time::Duration,
}

impl<S, D, Q> Dispatcher<S, D, Q> {
    /// The claim lease when none is given: comfortably above one send, below the
    /// queue's visibility timeout.
    pub const DEFAULT_CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

    /// A live dispatcher with the built-in catalogue, the default policy and the
    /// default lease; the `with_*` methods change one of them.
    pub fn new(
        store: S,
        deliver: D,
        requeue: Q,
        suppression_salt: impl Into<String>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            deliver,
            requeue,
            templates: Templates::default_catalog(),
            policy: DispatchPolicy::default(),
            mode: DeliveryMode::Live,
            suppression_salt: suppression_salt.into(),
            clock,
            claim_lease: Self::DEFAULT_CLAIM_LEASE,
        }
    }

    pub fn with_policy(self, policy: DispatchPolicy) -> Self {
        Self { policy, ..self }
    }

    pub fn with_mode(self, mode: DeliveryMode) -> Self {
        Self { mode, ..self }
    }

    pub fn with_claim_lease(self, claim_lease: std::time::Duration) -> Self {
        Self {
            claim_lease,
            ..self
        }
    }

    /// The same dispatcher with its delivery port wrapped (to inject faults or races,
    /// say).
    pub fn map_deliver<E>(self, wrap: impl FnOnce(D) -> E) -> Dispatcher<S, E, Q> {
        Dispatcher {
            store: self.store,
            deliver: wrap(self.deliver),
            requeue: self.requeue,
            templates: self.templates,
            policy: self.policy,
            mode: self.mode,
            suppression_salt: self.suppression_salt,
            clock: self.clock,
            claim_lease: self.claim_lease,
        }
    }
}

impl<S, D, Q> Dispatcher<S, D, Q>
where
    S: FollowUpStore + RejectStore + SuppressionList,
    D: Deliver,
    Q: Requeue,
{
    pub async fn handle(
        &self,
        event: SqsEvent,
    ) -> Result<(SqsBatchResponse, DispatchReport), BatchError> {
        self.handle_within(event, None).await
    }

    /// `handle`, done by `deadline`: intents not handled by then go back as batch-item
    /// failures (a claim held when time runs out is settled by its redelivery).
    pub async fn handle_within(
        &self,
        event: SqsEvent,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(SqsBatchResponse, DispatchReport), BatchError> {
        // One unit, one intent at a time: a batch is at most 10 intents, and two
        // intents for the same customer in one batch then meet the cap in order
        // instead of racing.
        let driven = batch::drive(
            vec![batch::records(event)?],
            1,
            deadline,
            |id, body| async move { self.process(&id, &body).await },
        )
        .await;
        let mut report = DispatchReport {
            retried: driven.retry.len() as u32,
            ..DispatchReport::default()
        };
        driven.done.iter().for_each(|outcome| report.count(outcome));
        Ok((driven.response(), report))
    }

    pub async fn process(&self, message_id: &str, body: &str) -> Result<Handled, StoreError> {
        let now = (self.clock)();
        let intent = match self.parse(message_id, body, now).await? {
            Continue(intent) => intent,
            Break(handled) => return Ok(handled),
        };
        let (message, keys, zone_note) = match self.decide(&intent, body, now).await? {
            Continue(decided) => decided,
            Break(handled) => return Ok(handled),
        };
        let address = match message.channel() {
            ContactChannel::Email => keys.email.clone(),
            ContactChannel::Sms => keys.phone.clone(),
        };
        let unless_suppressed: Vec<String> =
            std::iter::once(keys.id.clone()).chain(address).collect();
        let claim = ClaimRequest {
            customer_id: &intent.customer_id,
            feedback_id: &intent.feedback_id,
            playbook: &intent.playbook,
            purpose: intent.purpose,
            now,
            caps: self.policy.caps.clone(),
            unless_suppressed: &unless_suppressed,
        };
        if let Break(handled) = self.claim(&intent, &claim, body).await? {
            return Ok(handled);
        }
        if intent.staff_task && self.mode == DeliveryMode::Live {
            self.hand_to_staff(&intent, &message, &claim).await?;
        }
        // Say so in the history when quiet hours were judged in the business's zone.
        let mut attempt = attempt_record(&intent, Status::DryRun, zone_note, now);
        attempt.channel = Some(message.channel());
        attempt.variant = Some(message.variant().clone());
        attempt.preview = Some(message.preview().to_owned());
        if self.mode == DeliveryMode::Live {
            if let Break(handled) = self
                .deliver(&intent, &message, &claim, &mut attempt)
                .await?
            {
                return Ok(handled);
            }
        }
        self.record_outcome(attempt).await
    }

    /// The intent, or its reject recorded (an intent that can never be dispatched).
    async fn parse(
        &self,
        message_id: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<ControlFlow<Handled, FollowUpIntent>, StoreError> {
        let e = match serde_json::from_str(body) {
            Ok(intent) => return Ok(Continue(intent)),
            Err(e) => e,
        };
        self.store
            .record_reject(&RejectRecord {
                message_id: message_id.to_owned(),
                // serde quotes the offending value ("unknown variant
                // `ada@example.com`"): keep contact data out of the record.
                reason: format!(
                    "follow-up intent is not valid: {}",
                    feedloop_core::pii::redact(&e.to_string())
                ),
                body_prefix: batch::reject_body(body),
                received_at: now,
                // An intent names its customer like an envelope does: keep the pointer
                // so an erasure finds this record too.
                customer_id: customer_hint(body.as_bytes()).map(|c| c.to_string()),
            })
            .await?;
        warn!(
            line = e.line(),
            column = e.column(),
            "rejected malformed intent"
        );
        Ok(Break(Handled::Rejected))
    }

    /// The guards against the customer as they are now: the message to send, or the
    /// intent deferred, skipped or failed (and recorded as such).
    async fn decide(
        &self,
        intent: &FollowUpIntent,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<ControlFlow<Handled, (Message, ChannelKeys, Option<String>)>, StoreError> {
        let contact = self.store.contact(&intent.customer_id).await?;
        let keys = ChannelKeys::of(
            &self.suppression_salt,
            intent.customer_id.as_str(),
            contact.as_ref(),
        );
        let suppressed = keys.suppressed(&self.store.suppressed_among(&keys.all()).await?);
        let planned = plan(
            intent,
            contact.as_ref(),
            &suppressed,
            &self.templates,
            &self.policy,
            now,
        );
        let handled = match planned {
            Plan::Send(message, note) => return Ok(Continue((message, keys, note))),
            Plan::Defer(until) => {
                self.defer(body, until, now).await?;
                info!(until = %until, "deferred");
                Handled::Deferred
            }
            // Nothing is written for a suppressed customer: after an erasure, a history
            // item would put their id back into the table.
            Plan::Skip(SkipReason::Suppressed) => {
                info!("suppressed: not contacted, nothing recorded");
                Handled::Suppressed
            }
            Plan::Skip(reason) => self.skip(intent, reason.to_string(), now).await?,
            Plan::Fail(error) => {
                let failed = attempt_record(intent, Status::Failed, Some(error.clone()), now);
                self.store.record(&failed).await?;
                warn!(error = %error, "template failed");
                Handled::Recorded(Status::Failed)
            }
        };
        Ok(Break(handled))
    }

    async fn defer(
        &self,
        body: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let wait = (until - now)
            .to_std()
            .unwrap_or_default()
            .min(MAX_REQUEUE_DELAY);
        self.requeue.requeue(body, wait).await
    }

    async fn skip(
        &self,
        intent: &FollowUpIntent,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let skipped = attempt_record(intent, Status::Skipped, Some(reason.clone()), now);
        self.store.record(&skipped).await?;
        info!(reason = %reason, "skipped");
        Ok(Handled::Recorded(Status::Skipped))
    }

    /// Claim the (feedback, playbook) attempt and the caps; anything but a grant ends
    /// the intent here.
    async fn claim(
        &self,
        intent: &FollowUpIntent,
        request: &ClaimRequest<'_>,
        body: &str,
    ) -> Result<ControlFlow<Handled>, StoreError> {
        let now = request.now;
        let handled = match self.store.claim(request).await? {
            Claim::Granted => return Ok(Continue(())),
            Claim::AlreadyClaimed => self.settle(intent, now).await?,
            Claim::Capped { allowed_at } => match after_cap(intent, allowed_at, &self.policy) {
                Plan::Defer(until) => {
                    self.defer(body, until, now).await?;
                    info!(until = %until, "capped: deferred until the cap allows");
                    Handled::Deferred
                }
                Plan::Skip(reason) => self.skip(intent, reason.to_string(), now).await?,
                _ => self.skip(intent, "frequency cap".to_owned(), now).await?,
            },
            Claim::Suppressed => {
                info!("suppressed while dispatching: nothing claimed, nothing recorded");
                Handled::Suppressed
            }
        };
        Ok(Break(handled))
    }

    /// A dispatcher that stopped between claim and record (timeout, crash, a record
    /// that kept failing) leaves the attempt claimed; its message comes back here. It
    /// may have been sent: close it as failed, never send it again.
    async fn settle(
        &self,
        intent: &FollowUpIntent,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let reason = match self.mode {
            DeliveryMode::Live => INTERRUPTED,
            DeliveryMode::DryRun => INTERRUPTED_DRY_RUN,
        };
        let lease = Duration::from_std(self.claim_lease).unwrap_or(Duration::MAX);
        let closed = attempt_record(intent, Status::Failed, Some(reason.to_owned()), now);
        match self.store.settle_interrupted(&closed, now - lease).await? {
            Settle::Final => {
                info!("already claimed: one follow-up per feedback and playbook");
                Ok(Handled::Duplicate)
            }
            // Retried after the visibility timeout, by when the holder has recorded or
            // is gone.
            Settle::InFlight => Err(StoreError::Transient(
                "another delivery of this intent holds the claim".into(),
            )),
            Settle::Settled => {
                warn!("claimed but never recorded: closed as failed, not resent");
                Ok(Handled::Recorded(Status::Failed))
            }
        }
    }

    /// No message may promise a person nobody was told about: if the staff event does
    /// not go, the claim is given back and the intent comes again.
    async fn hand_to_staff(
        &self,
        intent: &FollowUpIntent,
        message: &Message,
        claim: &ClaimRequest<'_>,
    ) -> Result<(), StoreError> {
        let task = StaffTask {
            customer_id: intent.customer_id.clone(),
            feedback_id: intent.feedback_id.clone(),
            playbook: intent.playbook.clone(),
            channel: message.channel(),
            at: claim.now,
        };
        if let Err(e) = self.deliver.hand_to_staff(&task).await {
            self.store.release(claim, false).await?;
            return Err(StoreError::Transient(e.message));
        }
        info!(playbook = %intent.playbook, "handed to staff");
        Ok(())
    }

    /// Send it and write the result into `attempt`; a refusal for now gives the claim
    /// back and requeues the intent with a backoff instead.
    async fn deliver(
        &self,
        intent: &FollowUpIntent,
        message: &Message,
        claim: &ClaimRequest<'_>,
        attempt: &mut AttemptRecord,
    ) -> Result<ControlFlow<Handled>, StoreError> {
        let e = match self.deliver_with_retries(message, intent).await {
            Ok(provider_id) => {
                attempt.status = Status::Sent;
                attempt.provider_id = Some(provider_id);
                attempt.sent = Some(SentState {
                    playbook: intent.playbook.clone(),
                    variant: message.variant().clone(),
                    sent_at: claim.now,
                    nps_before: intent.nps_score,
                    sentiment_before: intent.sentiment,
                });
                return Ok(Continue(()));
            }
            Err(e) => e,
        };
        attempt.status = Status::Failed;
        let rounds = intent.delivery_attempts + 1;
        attempt.reason = Some(match e.kind {
            // Perhaps delivered: the claim and the caps stand, as for a sent message,
            // and it is never tried again.
            FailureKind::Unconfirmed => format!("{UNCONFIRMED}: {}", e.message),
            FailureKind::Transient if rounds < DELIVERY_ROUNDS => {
                self.back_off(intent, claim, &e).await?;
                return Ok(Break(Handled::BackedOff));
            }
            FailureKind::Transient => {
                self.store.release(claim, true).await?;
                format!("gave up after {rounds} deliveries: {}", e.message)
            }
            FailureKind::BadRecipient => {
                self.store.release(claim, true).await?;
                let key = match message {
                    Message::Email { to, .. } => suppression::email_key(&self.suppression_salt, to),
                    Message::Sms { to, .. } => suppression::phone_key(&self.suppression_salt, to),
                };
                self.store
                    .suppress(&[key], "provider rejected the address", claim.now)
                    .await?;
                format!("{} (address suppressed)", e.message)
            }
            // Final: the attempt stays claimed (never retried), but only a sent
            // message counts against the caps.
            FailureKind::Permanent => {
                self.store.release(claim, true).await?;
                e.message
            }
        });
        Ok(Continue(()))
    }

    /// Forget the claim, then requeue: the other way round, a failed release would
    /// leave a requeued intent that can never claim again.
    async fn back_off(
        &self,
        intent: &FollowUpIntent,
        claim: &ClaimRequest<'_>,
        e: &DeliveryError,
    ) -> Result<(), StoreError> {
        self.store.release(claim, false).await?;
        let mut again = intent.clone();
        again.delivery_attempts += 1;
        let wait = backoff_delay(intent.delivery_attempts);
        let body = serde_json::to_string(&again)
            .map_err(|e| StoreError::Permanent(format!("encoding the intent: {e}")))?;
        self.requeue.requeue(&body, wait).await?;
        warn!(error = %e, round = again.delivery_attempts, wait_s = wait.as_secs(), "provider refused the message for now; caps released, intent requeued");
        Ok(())
    }

    /// Delivery happened (or definitively failed): the record must not be lost to a
    /// passing store error, or the history would show "claimed" forever.
    async fn record_outcome(&self, attempt: AttemptRecord) -> Result<Handled, StoreError> {
        let mut tries = 0;
        loop {
            match self.store.record_claimed(&attempt).await {
                Ok(Recorded::Written | Recorded::AlreadyRecorded) => break,
                Ok(Recorded::ClaimGone) => {
                    warn!(
                        status = attempt.status.as_str(),
                        "the customer was erased while the message was out: nothing written back"
                    );
                    return Ok(Handled::Suppressed);
                }
                Err(e) if tries + 1 < DELIVERY_ATTEMPTS => {
                    tries += 1;
                    warn!(error = %e, "recording the attempt failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
        info!(status = attempt.status.as_str(), channel = ?attempt.channel, variant = attempt.variant.as_ref().map(|v| v.as_str()), "follow-up recorded");
        Ok(Handled::Recorded(attempt.status))
    }

    async fn deliver_with_retries(
        &self,
        message: &Message,
        intent: &FollowUpIntent,
    ) -> Result<String, DeliveryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.deliver.deliver(message, intent.purpose).await {
                Err(e) if e.kind == FailureKind::Transient && attempt < DELIVERY_ATTEMPTS => {
                    warn!(error = %e, attempt, "delivery failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// The intent's history line with `status`; the delivery fields are filled in when a
/// message was rendered.
fn attempt_record(
    intent: &FollowUpIntent,
    status: Status,
    reason: Option<String>,
    at: DateTime<Utc>,
) -> AttemptRecord {
    AttemptRecord {
        customer_id: intent.customer_id.clone(),
        feedback_id: intent.feedback_id.clone(),
        playbook: intent.playbook.clone(),
        status,
        at,
        reason,
        channel: None,
        variant: None,
        preview: None,
        provider_id: None,
        sent: None,
    }
}
