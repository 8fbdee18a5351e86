//! Follow-up playbooks: the pure decision of which follow-up (if any) one analysed
//! feedback triggers. Guards (consent, caps, quiet hours) and delivery come after.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalyzedFeedback;
use crate::envelope::{Channel, CustomerId, Details, FeedbackId, Kind, Priority, TicketStatus};
use crate::nps::NpsCategory;
use crate::profile::{Profile, Segment};

pub mod bounces;
mod country_zones;
#[cfg(test)]
mod fixtures;
pub mod guards;
pub mod mime;
mod names;
pub mod outcomes;
pub mod plan;
pub mod suppression;
pub mod templates;
pub mod unsubscribe;

pub use names::{PlaybookId, VariantId};

pub const DEFAULT_PLAYBOOK: &str = include_str!("../../playbooks/default.toml");

/// Follow-ups go out only about recent feedback: a backfill of last year's reviews or
/// a DLQ redrive must not send "we'll fix it today" about a year-old complaint.
pub const DEFAULT_MAX_AGE_HOURS: i64 = 72;

/// How old feedback that happened at `occurred_at` is at `now`, in whole hours, when
/// that is more than `max_age_hours`; `None` while it is fresh enough to follow up.
pub fn stale_age_hours(
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_age_hours: i64,
) -> Option<i64> {
    let age = now - occurred_at;
    (age > Duration::hours(max_age_hours)).then(|| age.num_hours())
}

/// Service replies answer the customer about their own feedback; marketing asks them
/// for something. The two have different consent rules and service always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Service,
    Marketing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Email,
    Sms,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    pub kind: Option<Vec<Kind>>,
    pub nps_category: Option<Vec<NpsCategory>>,
    pub sentiment_below: Option<f64>,
    pub sentiment_above: Option<f64>,
    /// Any of these themes mentioned with negative aspect sentiment.
    pub theme_negative: Option<Vec<String>>,
    pub ticket_status: Option<Vec<TicketStatus>>,
    pub ticket_priority: Option<Vec<Priority>>,
    pub churn_risk_above: Option<f64>,
    pub segment: Option<Vec<Segment>>,
    pub first_feedback: Option<bool>,
    pub rating_at_most: Option<u8>,
    pub rating_at_least: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: PlaybookId,
    pub purpose: Purpose,
    pub priority: i32,
    pub template: String,
    pub channels: Vec<ContactChannel>,
    #[serde(default)]
    pub delay_minutes: u32,
    /// Hand the case to a person as well (an event staff tooling picks up): for
    /// playbooks whose message says someone will call or take the case back.
    #[serde(default)]
    pub staff_task: bool,
    #[serde(default)]
    pub when: Conditions,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("playbook is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule \"{0}\" is defined twice")]
    DuplicateId(PlaybookId),
    #[error("rule \"{0}\" has no channels")]
    NoChannels(PlaybookId),
    #[error("rule \"{rule}\": {what} must be within -1..=1")]
    BadThreshold {
        rule: PlaybookId,
        what: &'static str,
    },
}

/// What the decision produces: enough for the guards and the renderer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FollowUpIntent {
    pub feedback_id: FeedbackId,
    pub customer_id: CustomerId,
    pub playbook: PlaybookId,
    pub purpose: Purpose,
    pub priority: i32,
    pub template: String,
    pub channels: Vec<ContactChannel>,
    pub not_before: DateTime<Utc>,
    /// When the feedback happened: the dispatcher skips the intent once it is older
    /// than the freshness limit. Intents queued before this field existed have none
    /// and are judged by `not_before`.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// The most negative theme of this feedback, for "sorry about <theme>".
    pub top_negative_theme: Option<String>,
    pub nps_score: Option<u8>,
    pub ticket_id: Option<String>,
    /// Label of `top_negative_theme` as the taxonomy names it (templates say it).
    #[serde(default)]
    pub theme_label: Option<String>,
    /// Where the feedback came in: a service reply may use that channel.
    #[serde(default)]
    pub inbound: Option<Channel>,
    #[serde(default)]
    pub locale: Option<String>,
    /// The feedback's sentiment, the baseline for the A/B outcome.
    #[serde(default)]
    pub sentiment: Option<f64>,
    /// Deliveries of this intent the provider refused for a passing reason
    /// (throttling, quota, a sending pause); each put it back on the queue later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delivery_attempts: u32,
    /// Channels whose address arrived with this very feedback (the profile did not
    /// hold it before): SMS to such a number needs the business's say-so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_seen: Vec<ContactChannel>,
    /// The playbook hands the case to a person as well (`Rule::staff_task`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staff_task: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The channels whose address in `info` the customer's profile did not hold before this
/// feedback, as current or past address.
pub fn first_seen_channels(
    before: Option<&Profile>,
    info: Option<&crate::envelope::CustomerInfo>,
) -> Vec<ContactChannel> {
    let Some(info) = info else {
        return Vec::new();
    };
    let known = |address: &str| {
        before.is_some_and(|p| {
            let current = p.contact.as_ref().map(|c| &c.value);
            current.is_some_and(|c| {
                c.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(address))
                    || c.phone.as_deref() == Some(address)
            }) || p
                .past_addresses
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
        })
    };
    [
        (ContactChannel::Email, info.email.as_deref()),
        (ContactChannel::Sms, info.phone.as_deref()),
    ]
    .into_iter()
    .filter_map(|(ch, a)| a.filter(|a| !known(a)).map(|_| ch))
    .collect()
}

impl Playbook {
    pub fn default_rules() -> Playbook {
        Self::from_toml(DEFAULT_PLAYBOOK).expect("the shipped playbook is valid (checked by tests)")
    }

    pub fn from_toml(src: &str) -> Result<Playbook, PlaybookError> {
        let p: Playbook = toml::from_str(src)?;
        let mut seen = std::collections::HashSet::new();
        for r in &p.rules {
            if !seen.insert(&r.id) {
                return Err(PlaybookError::DuplicateId(r.id.clone()));
            }
            if r.channels.is_empty() {
                return Err(PlaybookError::NoChannels(r.id.clone()));
            }
            for (what, v) in [
                ("sentiment_below", r.when.sentiment_below),
                ("sentiment_above", r.when.sentiment_above),
            ] {
                if v.is_some_and(|v| !(-1.0..=1.0).contains(&v)) {
                    return Err(PlaybookError::BadThreshold {
                        rule: r.id.clone(),
                        what,
                    });
                }
            }
        }
        Ok(p)
    }

    /// Every rule that matches, best first (service before marketing, then priority,
    /// then id for a stable order).
    pub fn matching<'a>(&'a self, af: &AnalyzedFeedback, profile: &Profile) -> Vec<&'a Rule> {
        let mut m: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| matches(&r.when, af, profile))
            .collect();
        m.sort_by(|a, b| {
            a.purpose
                .cmp(&b.purpose)
                .then(b.priority.cmp(&a.priority))
                .then(a.id.cmp(&b.id))
        });
        m
    }

    /// One follow-up per feedback at most: the best matching rule.
    pub fn decide(&self, af: &AnalyzedFeedback, profile: &Profile) -> Option<FollowUpIntent> {
        let rule = *self.matching(af, profile).first()?;
        let f = &af.feedback;
        let worst = af
            .analysis
            .themes
            .iter()
            .filter(|t| t.sentiment.is_some_and(|s| s <= -0.05))
            .min_by(|a, b| {
                a.sentiment
                    .unwrap_or(0.0)
                    .total_cmp(&b.sentiment.unwrap_or(0.0))
            });
        Some(FollowUpIntent {
            feedback_id: f.feedback_id.clone(),
            customer_id: f.customer_id.clone(),
            playbook: rule.id.clone(),
            purpose: rule.purpose,
            priority: rule.priority,
            template: rule.template.clone(),
            channels: rule.channels.clone(),
            not_before: f.occurred_at + Duration::minutes(i64::from(rule.delay_minutes)),
            occurred_at: Some(f.occurred_at),
            top_negative_theme: worst.map(|t| t.theme.clone()),
            theme_label: worst.map(|t| t.label.clone()),
            inbound: f.channel,
            locale: f.locale.clone(),
            sentiment: af.compound(),
            delivery_attempts: 0,
            first_seen: Vec::new(),
            staff_task: rule.staff_task,
            nps_score: f.details.nps_score(),
            ticket_id: match &f.details {
                Details::Ticket { ticket_id, .. } => Some(ticket_id.clone()),
                _ => None,
            },
        })
    }
}

fn within<T: PartialEq>(allowed: &Option<Vec<T>>, value: Option<T>) -> bool {
    match allowed {
        None => true,
        Some(list) => value.is_some_and(|v| list.contains(&v)),
    }
}

fn matches(c: &Conditions, af: &AnalyzedFeedback, p: &Profile) -> bool {
    let f = &af.feedback;
    let compound = af.compound();
    let (status, priority) = match &f.details {
        Details::Ticket {
            status, priority, ..
        } => (Some(*status), Some(*priority)),
        _ => (None, None),
    };
    let rating = f.details.rating();
    within(&c.kind, Some(f.kind()))
        && within(&c.nps_category, af.nps_category)
        && c.sentiment_below
            .is_none_or(|t| compound.is_some_and(|s| s < t))
        && c.sentiment_above
            .is_none_or(|t| compound.is_none_or(|s| s > t))
        && c.theme_negative.as_ref().is_none_or(|themes| {
            af.analysis
                .themes
                .iter()
                .any(|m| themes.contains(&m.theme) && m.sentiment.is_some_and(|s| s <= -0.05))
        })
        && within(&c.ticket_status, status)
        && within(&c.ticket_priority, priority)
        && c.churn_risk_above.is_none_or(|t| p.churn_risk().score > t)
        && within(&c.segment, Some(p.segment()))
        && c.first_feedback
            .is_none_or(|want| (p.feedback_count == 1) == want)
        && c.rating_at_most
            .is_none_or(|t| rating.is_some_and(|r| r <= t))
        && c.rating_at_least
            .is_none_or(|t| rating.is_some_and(|r| r >= t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Analyzer;
    use crate::envelope::parse_envelope;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;
    use chrono::TimeZone;
    use serde_json::{json, Value};

    #[test]
    fn an_address_is_first_seen_when_the_profile_never_held_it() {
        use crate::envelope::CustomerInfo;
        let mut before = Profile::new(CustomerId::parse("c1").unwrap(), 30.0);
        before.contact = Some(crate::profile::Latest {
            at: now(),
            feedback_id: "f0".into(),
            value: CustomerInfo {
                email: Some("Ada@Example.com".into()),
                phone: Some("+447400123456".into()),
                ..Default::default()
            },
        });
        before.past_addresses = vec!["+447400999999".into()];
        let info = |email: &str, phone: &str| CustomerInfo {
            email: Some(email.into()),
            phone: Some(phone.into()),
            ..Default::default()
        };
        // the same addresses, and a number the customer had before: nothing new
        let known = info("ada@example.com", "+447400123456");
        assert!(first_seen_channels(Some(&before), Some(&known)).is_empty());
        let back = info("ada@example.com", "+447400999999");
        assert!(first_seen_channels(Some(&before), Some(&back)).is_empty());
        // a number never seen: SMS is first seen; a new customer: both
        let new_number = info("ada@example.com", "+447400555555");
        assert_eq!(
            first_seen_channels(Some(&before), Some(&new_number)),
            [ContactChannel::Sms]
        );
        assert_eq!(
            first_seen_channels(None, Some(&known)),
            [ContactChannel::Email, ContactChannel::Sms]
        );
        assert!(first_seen_channels(Some(&before), None).is_empty());
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    /// Apply `history` then `v` to a fresh profile and decide on `v`.
    fn decide(history: &[Value], v: Value) -> Option<FollowUpIntent> {
        let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let parse = |v: &Value| {
            a.analyze(
                parse_envelope(v.to_string().as_bytes(), now())
                    .unwrap()
                    .feedback,
            )
            .unwrap()
        };
        let af = parse(&v);
        let mut p = Profile::new(af.feedback.customer_id.clone(), 30.0);
        for h in history {
            p.apply(&parse(h));
        }
        p.apply(&af);
        Playbook::default_rules().decide(&af, &p)
    }

    fn survey(id: &str, score: u8, text: &str) -> Value {
        json!({"feedback_id": id, "customer_id": "c1", "kind": "survey", "occurred_at": "2026-11-20T10:00:00Z",
               "nps_score": score, "text": text})
    }

    #[test]
    fn shipped_playbook_is_valid_and_complete() {
        let ids: Vec<PlaybookId> = Playbook::default_rules()
            .rules
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 6);
    }

    #[test]
    fn detractor_recovery_names_the_worst_theme_and_is_immediate() {
        let i = decide(
            &[],
            survey(
                "f1",
                2,
                "Staff were nice. The parcel never arrived and I was charged twice!",
            ),
        )
        .unwrap();
        assert_eq!(
            (i.playbook.as_str(), i.purpose, i.priority),
            ("detractor_recovery", Purpose::Service, 100)
        );
        assert!(matches!(
            i.top_negative_theme.as_deref(),
            Some("delivery") | Some("billing")
        ));
        assert_eq!(
            i.not_before,
            Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn promoter_gets_a_review_ask_and_passive_a_nudge() {
        assert_eq!(
            decide(&[], survey("f1", 10, "Love it")).unwrap().playbook,
            "promoter_review_ask"
        );
        let i = decide(&[], survey("f1", 8, "")).unwrap();
        assert_eq!(
            (i.playbook.as_str(), i.purpose),
            ("passive_what_would_make_it_a_10", Purpose::Marketing)
        );
        assert_eq!(
            i.not_before - Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
            Duration::minutes(120)
        );
    }

    #[test]
    fn a_solved_ticket_with_a_negative_comment_escalates() {
        let t = json!({"feedback_id": "t1", "customer_id": "c1", "kind": "ticket", "occurred_at": "2026-11-20T10:00:00Z",
                       "ticket_id": "T-9", "status": "solved", "text": "Closed but still broken, terrible support."});
        let i = decide(&[], t).unwrap();
        assert_eq!(
            (i.playbook.as_str(), i.ticket_id.as_deref()),
            ("solved_but_still_negative", Some("T-9"))
        );
    }

    #[test]
    fn an_at_risk_customer_gets_a_winback_and_a_first_good_review_a_thank_you() {
        let history = [
            survey("h1", 1, "Awful, the delivery never arrived."),
            survey("h2", 0, "Still waiting, useless support."),
        ];
        let r = json!({"feedback_id": "r1", "customer_id": "c1", "kind": "review", "occurred_at": "2026-11-21T10:00:00Z",
                       "rating": 2, "text": "Meh."});
        let winback = decide(&history, r).unwrap();
        assert_eq!(winback.playbook, "at_risk_winback");
        // an offer asks for something: marketing, so it needs an explicit opt-in
        assert_eq!(winback.purpose, Purpose::Marketing);
        let first = json!({"feedback_id": "r2", "customer_id": "c1", "kind": "review", "occurred_at": "2026-11-21T10:00:00Z",
                           "rating": 5, "text": "Great shop!"});
        assert_eq!(decide(&[], first).unwrap().playbook, "first_review_thanks");
        let neutral = json!({"feedback_id": "r3", "customer_id": "c1", "kind": "review", "occurred_at": "2026-11-21T10:00:00Z",
                             "rating": 3, "text": "Okay."});
        assert_eq!(decide(&[], neutral), None);
    }

    #[test]
    fn precedence_recovery_beats_marketing_then_priority() {
        let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let af = a
            .analyze(
                parse_envelope(
                    survey("f1", 9, "Great staff. The delivery was awful.")
                        .to_string()
                        .as_bytes(),
                    now(),
                )
                .unwrap()
                .feedback,
            )
            .unwrap();
        let mut p = Profile::new(af.feedback.customer_id.clone(), 30.0);
        p.apply(&af);
        let book = Playbook::from_toml(
            r#"
            [[rule]]
            id = "big_marketing"
            purpose = "marketing"
            priority = 1000
            template = "m"
            channels = ["email"]
            [rule.when]
            nps_category = ["promoter"]

            [[rule]]
            id = "small_service"
            purpose = "service"
            priority = 1
            template = "s"
            channels = ["email"]
            [rule.when]
            theme_negative = ["delivery"]
            "#,
        )
        .unwrap();
        let ids: Vec<&str> = book
            .matching(&af, &p)
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["small_service", "big_marketing"]);
        assert_eq!(book.decide(&af, &p).unwrap().playbook, "small_service");
    }

    #[test]
    fn bad_playbooks_are_refused_with_a_reason() {
        let dup =
            "[[rule]]\nid='a'\npurpose='service'\npriority=1\ntemplate='t'\nchannels=['email']\n"
                .repeat(2);
        assert_eq!(
            Playbook::from_toml(&dup).unwrap_err().to_string(),
            "rule \"a\" is defined twice"
        );
        let bad =
            "[[rule]]\nid='a'\npurpose='service'\npriority=1\ntemplate='t'\nchannels=['fax']\n";
        assert!(Playbook::from_toml(bad)
            .unwrap_err()
            .to_string()
            .contains("unknown variant `fax`"));
    }
}
