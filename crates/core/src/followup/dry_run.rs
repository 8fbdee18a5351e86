//! Follow-ups in dry-run: decide, guard and render exactly as the dispatcher will, but
//! record what would be sent instead of sending. Used by the embedded demo and
//! `feedloop process`; a fresh deployment starts in this mode too.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::guards::{self, SentFollowUp, SkipReason};
use super::plan::{plan, DispatchPolicy, Plan};
use super::templates::Templates;
use super::{ContactChannel, Playbook};
use crate::analysis::AnalyzedFeedback;
use crate::profile::Profile;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Attempt {
    WouldSend {
        channel: ContactChannel,
        variant: String,
        send_at: DateTime<Utc>,
        preview: String,
    },
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUpRecord {
    pub customer_id: String,
    pub feedback_id: String,
    pub playbook: String,
    #[serde(flatten)]
    pub attempt: Attempt,
}

pub struct DryRun {
    playbook: Playbook,
    templates: Templates,
    policy: DispatchPolicy,
    sent: HashMap<String, Vec<SentFollowUp>>,
    done: HashSet<String>,
    pub records: Vec<FollowUpRecord>,
}

impl DryRun {
    pub fn new(company: Option<String>) -> DryRun {
        DryRun {
            playbook: Playbook::default_rules(),
            templates: Templates::default_catalog(),
            policy: DispatchPolicy {
                company,
                ..DispatchPolicy::default()
            },
            sent: HashMap::new(),
            done: HashSet::new(),
            records: Vec::new(),
        }
    }

    pub fn set_company(&mut self, company: Option<String>) {
        self.policy.company = company;
    }

    /// Decide, guard and render the follow-up for one applied feedback as if the
    /// dispatcher ran when it falls due (after its delay and the customer's quiet hours).
    pub fn consider(&mut self, af: &AnalyzedFeedback, profile: &Profile) {
        let Some(intent) = self.playbook.decide(af, profile) else {
            return;
        };
        let record = |attempt| FollowUpRecord {
            customer_id: intent.customer_id.clone(),
            feedback_id: intent.feedback_id.clone(),
            playbook: intent.playbook.clone(),
            attempt,
        };
        if !self.done.insert(guards::dedupe_key(&intent)) {
            self.records.push(record(Attempt::Skipped {
                reason: SkipReason::Duplicate.to_string(),
            }));
            return;
        }
        let customer = profile.contact.as_ref().map(|c| &c.value);
        let mut now = intent.not_before;
        let message = loop {
            match plan(&intent, customer, false, &self.templates, &self.policy, now) {
                Plan::Send(m, _) => break m,
                Plan::Defer(until) if until > now => now = until,
                Plan::Defer(_) => unreachable!("plan defers only to a later time"),
                Plan::Skip(reason) => {
                    return self.records.push(record(Attempt::Skipped {
                        reason: reason.to_string(),
                    }))
                }
                Plan::Fail(error) => return self.records.push(record(Attempt::Failed { error })),
            }
        };
        let history = self.sent.entry(intent.customer_id.clone()).or_default();
        if let Err(reason) = guards::check_caps(history, &intent.playbook, now, &self.policy.caps) {
            return self.records.push(record(Attempt::Skipped {
                reason: reason.to_string(),
            }));
        }
        history.push(SentFollowUp {
            playbook: intent.playbook.clone(),
            sent_at: now,
        });
        self.records.push(record(Attempt::WouldSend {
            channel: message.channel(),
            variant: message.variant().to_owned(),
            send_at: now,
            preview: message.preview().to_owned(),
        }));
    }
}
