//! Follow-ups in dry-run: decide, guard and render exactly as the dispatcher will, but
//! record what would be sent instead of sending. Used by the embedded demo and
//! `feedloop process`; a fresh deployment starts in this mode too.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;

use super::guards::{self, CapPolicy, ConsentPolicy, SentFollowUp, SkipReason};
use super::templates::{TemplateError, Templates, Variables};
use super::{ContactChannel, Playbook};
use crate::analysis::AnalyzedFeedback;
use crate::profile::Profile;
use crate::themes::Taxonomy;

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
    consent: ConsentPolicy,
    caps: CapPolicy,
    company: Option<String>,
    sent: HashMap<String, Vec<SentFollowUp>>,
    done: HashSet<String>,
    pub records: Vec<FollowUpRecord>,
}

impl DryRun {
    pub fn new(company: Option<String>) -> DryRun {
        DryRun {
            playbook: Playbook::default_rules(),
            templates: Templates::default_catalog(),
            consent: ConsentPolicy::default(),
            caps: CapPolicy::default(),
            company,
            sent: HashMap::new(),
            done: HashSet::new(),
            records: Vec::new(),
        }
    }

    /// Decide and guard the follow-up for one applied feedback.
    pub fn consider(&mut self, af: &AnalyzedFeedback, profile: &Profile, taxonomy: &Taxonomy) {
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
        let customer = profile
            .contact
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_default();
        let channel =
            match guards::choose_channel(&intent, &customer, af.feedback.channel, &self.consent) {
                Ok(c) => c,
                Err(reason) => {
                    return self.records.push(record(Attempt::Skipped {
                        reason: reason.to_string(),
                    }))
                }
            };
        let history = self.sent.entry(intent.customer_id.clone()).or_default();
        let now = intent.not_before;
        if let Err(reason) = guards::check_caps(history, &intent.playbook, now, &self.caps) {
            return self.records.push(record(Attempt::Skipped {
                reason: reason.to_string(),
            }));
        }
        let quiet = (
            NaiveTime::from_hms_opt(21, 0, 0),
            NaiveTime::from_hms_opt(8, 0, 0),
        );
        let send_at = match quiet {
            (Some(s), Some(e)) => {
                guards::not_before_quiet_hours(now, customer.timezone.as_deref(), s, e)
            }
            _ => now,
        };
        let vars = Variables {
            first_name: customer
                .name
                .as_deref()
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_owned),
            company: self.company.clone(),
            theme_label: intent
                .top_negative_theme
                .as_deref()
                .and_then(|t| taxonomy.label(t))
                .map(str::to_owned),
            product: None,
            score: intent.nps_score,
            ticket_id: intent.ticket_id.clone(),
            agent: None,
        };
        let locale = af.feedback.locale.as_deref().unwrap_or("en");
        let rendered: Result<(String, String), TemplateError> = match channel {
            ContactChannel::Email => self
                .templates
                .render_email(
                    &intent.template,
                    locale,
                    &intent.customer_id,
                    &intent.playbook,
                    &vars,
                )
                .map(|e| (e.variant, e.subject)),
            ContactChannel::Sms => self
                .templates
                .render_sms(
                    &intent.template,
                    locale,
                    &intent.customer_id,
                    &intent.playbook,
                    &vars,
                )
                .map(|s| (s.variant, s.text)),
        };
        match rendered {
            Ok((variant, preview)) => {
                history.push(SentFollowUp {
                    playbook: intent.playbook.clone(),
                    sent_at: send_at,
                });
                self.records.push(record(Attempt::WouldSend {
                    channel,
                    variant,
                    send_at,
                    preview,
                }));
            }
            Err(e) => self.records.push(record(Attempt::Failed {
                error: e.to_string(),
            })),
        }
    }
}
