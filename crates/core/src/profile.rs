//! The living customer profile: a pure, order-independent fold over analysed feedback.
//!
//! Order independence matters because SQS delivers out of order and retries: every
//! field is either commutative (counts, sums, min), chosen by the latest `occurred_at`
//! (ties broken by feedback id), or derived from those on read (segment, churn risk).
//!
//! The facts that are "latest wins" (contact, consent) are in `facts`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalyzedFeedback;
use crate::envelope::{Consent, CustomerId, CustomerInfo, Details, Kind, Priority, TicketStatus};
use crate::nps::{NpsCategory, NpsCounts};

mod facts;
use facts::{keep_latest, stamp};
pub use facts::{ConsentFacts, ContactFacts, Latest};

/// Tickets kept per profile; closed ones are dropped first beyond this.
pub const MAX_TICKETS: usize = 100;

/// Addresses a profile remembers having held, at most: enough for any real customer,
/// bounded against a producer rotating addresses on every message.
pub const MAX_PAST_ADDRESSES: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KindCounts {
    pub review: u64,
    pub survey: u64,
    pub ticket: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SentimentState {
    pub scored: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub last: Option<Latest<f64>>,
    /// Exponential decay by `occurred_at`: sums are kept relative to the newest
    /// timestamp seen, so the weighted mean does not depend on arrival order.
    pub decay_anchor: Option<DateTime<Utc>>,
    pub decayed_sum: f64,
    pub decayed_weight: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NpsState {
    pub counts: NpsCounts,
    pub last: Option<Latest<u8>>,
    /// The response before `last`, for "score dropped" signals.
    pub previous: Option<Latest<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScoreSum {
    pub sum: u64,
    pub count: u64,
}

impl ScoreSum {
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ThemeStats {
    pub mentions: u64,
    pub scored: u64,
    pub sentiment_sum: f64,
    pub negative: u64,
}

impl ThemeStats {
    pub fn mean_sentiment(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.sentiment_sum / self.scored as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TicketState {
    pub status: TicketStatus,
    pub priority: Priority,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Exactly one feedback so far and no stronger signal.
    New,
    /// Has given feedback more than once, no NPS signal.
    Active,
    /// Last NPS 9-10.
    Promoter,
    /// Last NPS 7-8.
    Passive,
    /// Last NPS 0-6.
    Detractor,
    /// Churn risk >= 0.6, whatever else is true.
    AtRisk,
    /// Promoter twice over (two promoter responses, or a promoter who left a 5-star
    /// review) whose recent sentiment is positive and churn risk low.
    Champion,
}

impl Segment {
    pub const ALL: [Segment; 7] = [
        Segment::Champion,
        Segment::Promoter,
        Segment::Passive,
        Segment::Active,
        Segment::New,
        Segment::Detractor,
        Segment::AtRisk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::New => "new",
            Segment::Active => "active",
            Segment::Promoter => "promoter",
            Segment::Passive => "passive",
            Segment::Detractor => "detractor",
            Segment::AtRisk => "at_risk",
            Segment::Champion => "champion",
        }
    }
}

/// Churn risk in 0..=1 and the signals behind it, strongest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChurnRisk {
    pub score: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Profile {
    pub customer_id: CustomerId,
    pub half_life_days: f64,
    pub feedback_count: u64,
    pub counts: KindCounts,
    pub first_feedback_at: Option<DateTime<Utc>>,
    pub last_feedback_at: Option<DateTime<Utc>>,
    pub sentiment: SentimentState,
    pub nps: NpsState,
    pub csat: ScoreSum,
    pub ratings: ScoreSum,
    pub last_rating: Option<Latest<u8>>,
    pub themes: BTreeMap<String, ThemeStats>,
    pub tickets: BTreeMap<String, Latest<TicketState>>,
    /// The contact block in force (`contact_facts` field by field); its `consent` is
    /// always `consent.current()`.
    pub contact: Option<Latest<CustomerInfo>>,
    #[serde(default, skip_serializing_if = "ContactFacts::is_empty")]
    pub contact_facts: ContactFacts,
    /// Every e-mail address and phone number the contact block has held (sorted): an
    /// erasure suppresses them all, not only the current ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_addresses: Vec<String>,
    #[serde(default)]
    pub consent: ConsentFacts,
    pub last_excerpt: Option<Latest<String>>,
    /// The language of the customer's latest feedback whose language was told, not
    /// assumed (ISO 639-1): which language a reply should be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Latest<String>>,
}

impl Profile {
    /// Record a consent change made outside feedback (staff, an unsubscribe link).
    pub fn set_consent(&mut self, at: DateTime<Utc>, source: &str, consent: &Consent) {
        self.consent.record(at, source, consent);
        self.refresh_contact_consent();
    }

    fn refresh_contact_consent(&mut self) {
        let current = self.consent.current();
        if let Some(c) = &mut self.contact {
            c.value.consent = current;
        }
    }

    /// Merge a contact block field by field and remember its addresses.
    fn apply_contact(&mut self, at: DateTime<Utc>, source: &str, info: &CustomerInfo) {
        // A profile stored before contacts were kept field by field: its whole block
        // is the first statement of every field.
        if self.contact_facts.is_empty() {
            if let Some(old) = self.contact.clone() {
                self.contact_facts
                    .record(old.at, &old.feedback_id, &old.value);
                self.remember_addresses(&old.value);
            }
        }
        self.contact_facts.record(at, source, info);
        self.remember_addresses(info);
        self.contact = self.contact_facts.current(self.consent.current());
    }

    fn remember_addresses(&mut self, info: &CustomerInfo) {
        for a in [&info.email, &info.phone].into_iter().flatten() {
            if let Err(i) = self.past_addresses.binary_search(a) {
                self.past_addresses.insert(i, a.clone());
            }
        }
        self.past_addresses.truncate(MAX_PAST_ADDRESSES);
    }

    pub fn new(customer_id: CustomerId, half_life_days: f64) -> Profile {
        Profile {
            customer_id,
            half_life_days,
            feedback_count: 0,
            counts: KindCounts::default(),
            first_feedback_at: None,
            last_feedback_at: None,
            sentiment: SentimentState::default(),
            nps: NpsState::default(),
            csat: ScoreSum::default(),
            ratings: ScoreSum::default(),
            last_rating: None,
            themes: BTreeMap::new(),
            tickets: BTreeMap::new(),
            contact: None,
            contact_facts: ContactFacts::default(),
            past_addresses: Vec::new(),
            consent: ConsentFacts::default(),
            last_excerpt: None,
            language: None,
        }
    }

    /// Fold one analysed feedback into the profile. The caller guarantees each
    /// feedback is applied once (the ingest layer deduplicates by feedback id).
    pub fn apply(&mut self, af: &AnalyzedFeedback) {
        let f = &af.feedback;
        let at = f.occurred_at;
        let id = f.feedback_id.as_str().to_owned();

        self.feedback_count += 1;
        match f.kind() {
            Kind::Review => self.counts.review += 1,
            Kind::Survey => self.counts.survey += 1,
            Kind::Ticket => self.counts.ticket += 1,
        }
        self.first_feedback_at = Some(self.first_feedback_at.map_or(at, |t| t.min(at)));
        self.last_feedback_at = Some(self.last_feedback_at.map_or(at, |t| t.max(at)));

        if let Some(c) = af.compound() {
            self.apply_sentiment(at, c);
            keep_latest(&mut self.sentiment.last, stamp(at, &id, c));
        }
        if !af.excerpt.is_empty() {
            keep_latest(&mut self.last_excerpt, stamp(at, &id, af.excerpt.clone()));
        }
        if af.analysis.language.reliable {
            let code = af.analysis.language.code.clone();
            keep_latest(&mut self.language, stamp(at, &id, code));
        }
        if let Some(info) = &f.customer {
            // Consent by when it reached us: a producer's clock cannot put a statement
            // ahead of an unsubscribe made after it arrived.
            let received = f.received_at.unwrap_or(at);
            self.consent.record(received, &id, &info.consent);
            self.apply_contact(at, &id, info);
        }

        match &f.details {
            Details::Survey {
                nps_score, csat, ..
            } => {
                if let Some(score) = *nps_score {
                    self.nps.counts.add(NpsCategory::from_score(score));
                    let candidate = stamp(at, &id, score);
                    match &self.nps.last {
                        Some(cur) if !candidate.newer_than(cur) => {
                            if self
                                .nps
                                .previous
                                .as_ref()
                                .is_none_or(|p| candidate.newer_than(p))
                            {
                                self.nps.previous = Some(candidate);
                            }
                        }
                        _ => self.nps.previous = self.nps.last.replace(candidate),
                    }
                }
                if let Some(c) = *csat {
                    self.csat.sum += u64::from(c);
                    self.csat.count += 1;
                }
            }
            Details::Review {
                rating: Some(r), ..
            } => {
                self.ratings.sum += u64::from(*r);
                self.ratings.count += 1;
                keep_latest(&mut self.last_rating, stamp(at, &id, *r));
            }
            Details::Review { rating: None, .. } => {}
            Details::Ticket {
                ticket_id,
                status,
                priority,
                subject,
                ..
            } => {
                let state = stamp(
                    at,
                    &id,
                    TicketState {
                        status: *status,
                        priority: *priority,
                        // Redacted like excerpts: a subject quotes addresses and numbers.
                        subject: subject.as_deref().map(crate::pii::redact),
                    },
                );
                let slot = self
                    .tickets
                    .entry(ticket_id.clone())
                    .or_insert_with(|| state.clone());
                if state.newer_than(slot) {
                    *slot = state;
                }
                self.prune_tickets();
            }
        }

        let mut seen = Vec::new();
        for m in &af.analysis.themes {
            if seen.contains(&&m.theme) {
                continue;
            }
            seen.push(&m.theme);
            let stats = self.themes.entry(m.theme.clone()).or_default();
            stats.mentions += 1;
            if let Some(s) = m.sentiment {
                stats.scored += 1;
                stats.sentiment_sum += s;
                if s <= -0.05 {
                    stats.negative += 1;
                }
            }
        }
    }

    fn apply_sentiment(&mut self, at: DateTime<Utc>, c: f64) {
        let s = &mut self.sentiment;
        s.scored += 1;
        s.sum += c;
        s.min = Some(s.min.map_or(c, |m| m.min(c)));
        let half_life_secs = self.half_life_days * 86_400.0;
        let decay = |from: DateTime<Utc>, to: DateTime<Utc>| {
            let dt = (to - from).num_milliseconds() as f64 / 1000.0;
            (-dt / half_life_secs).exp2()
        };
        match s.decay_anchor {
            None => {
                s.decay_anchor = Some(at);
                s.decayed_sum = c;
                s.decayed_weight = 1.0;
            }
            Some(anchor) if at > anchor => {
                let k = decay(anchor, at);
                s.decayed_sum = s.decayed_sum * k + c;
                s.decayed_weight = s.decayed_weight * k + 1.0;
                s.decay_anchor = Some(at);
            }
            Some(anchor) => {
                let w = decay(at, anchor);
                s.decayed_sum += c * w;
                s.decayed_weight += w;
            }
        }
    }

    fn prune_tickets(&mut self) {
        while self.tickets.len() > MAX_TICKETS {
            let victim = self
                .tickets
                .iter()
                .min_by(|a, b| {
                    (a.1.value.status.is_open(), a.1.at, a.0).cmp(&(
                        b.1.value.status.is_open(),
                        b.1.at,
                        b.0,
                    ))
                })
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => self.tickets.remove(&k),
                None => break,
            };
        }
    }

    /// Time-decayed mean sentiment: recent feedback weighs more (half-life
    /// `half_life_days`, by `occurred_at`).
    pub fn decayed_sentiment(&self) -> Option<f64> {
        let s = &self.sentiment;
        (s.decayed_weight > 0.0).then(|| s.decayed_sum / s.decayed_weight)
    }

    pub fn mean_sentiment(&self) -> Option<f64> {
        (self.sentiment.scored > 0).then(|| self.sentiment.sum / self.sentiment.scored as f64)
    }

    pub fn nps_category(&self) -> Option<NpsCategory> {
        self.nps
            .last
            .as_ref()
            .map(|l| NpsCategory::from_score(l.value))
    }

    pub fn open_tickets(&self) -> impl Iterator<Item = (&String, &Latest<TicketState>)> {
        self.tickets
            .iter()
            .filter(|(_, t)| t.value.status.is_open())
    }

    /// The open ticket to look at first: highest priority, then the oldest.
    pub fn most_urgent_ticket(&self) -> Option<(&String, &Latest<TicketState>)> {
        self.open_tickets().min_by(|a, b| {
            (std::cmp::Reverse(a.1.value.priority), a.1.at, a.0).cmp(&(
                std::cmp::Reverse(b.1.value.priority),
                b.1.at,
                b.0,
            ))
        })
    }

    /// Churn risk, a noisy-OR of independent warning signals:
    /// `risk = 1 - prod(1 - w_k)` over the signals present, then x0.6 if the latest NPS
    /// is a promoter (they said so themselves). Signals and weights `w_k`:
    /// - detractor (last NPS s <= 6): 0.35 + 0.05 x (6 - s)
    /// - passive (last NPS 7-8): 0.10
    /// - NPS fell by 3+ points since the previous response: 0.20
    /// - negative recent sentiment (decayed mean d < -0.05): 0.5 x min(1, -d)
    /// - open ticket: urgent 0.30, high 0.20, other 0.10 (the most urgent one counts)
    /// - CSAT mean <= 2.5: 0.25; last review rating <= 2: 0.25
    /// - a theme complained about twice or more: 0.15
    pub fn churn_risk(&self) -> ChurnRisk {
        let mut signals: Vec<(f64, String)> = Vec::new();
        if let Some(last) = &self.nps.last {
            let s = last.value;
            match NpsCategory::from_score(s) {
                NpsCategory::Detractor => signals.push((
                    0.35 + 0.05 * f64::from(6 - s),
                    format!("detractor (NPS {s})"),
                )),
                NpsCategory::Passive => signals.push((0.10, format!("passive (NPS {s})"))),
                NpsCategory::Promoter => {}
            }
            if let Some(prev) = &self.nps.previous {
                if prev.value >= s + 3 {
                    signals.push((0.20, format!("NPS fell from {} to {s}", prev.value)));
                }
            }
        }
        if let Some(d) = self.decayed_sentiment() {
            if d < -0.05 {
                signals.push((
                    0.5 * (-d).min(1.0),
                    format!("negative recent sentiment ({d:.2})"),
                ));
            }
        }
        if let Some((id, t)) = self.most_urgent_ticket() {
            let (w, p) = match t.value.priority {
                Priority::Urgent => (0.30, "urgent"),
                Priority::High => (0.20, "high-priority"),
                _ => (0.10, "open"),
            };
            signals.push((
                w,
                format!(
                    "{p} ticket {id} {}",
                    if p == "open" { "unresolved" } else { "open" }
                ),
            ));
        }
        if let Some(m) = self.csat.mean() {
            if m <= 2.5 {
                signals.push((0.25, format!("low CSAT ({m:.1}/5)")));
            }
        }
        if let Some(r) = &self.last_rating {
            if r.value <= 2 {
                signals.push((0.25, format!("{}-star review", r.value)));
            }
        }
        if let Some((theme, stats)) = self
            .themes
            .iter()
            .filter(|(_, s)| s.negative >= 2)
            .max_by(|a, b| a.1.negative.cmp(&b.1.negative).then(b.0.cmp(a.0)))
        {
            signals.push((
                0.15,
                format!("repeated complaints about {theme} ({})", stats.negative),
            ));
        }
        let mut score = 1.0 - signals.iter().map(|(w, _)| 1.0 - w).product::<f64>();
        if self.nps_category() == Some(NpsCategory::Promoter) {
            score *= 0.6;
        }
        signals.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        ChurnRisk {
            score: score.clamp(0.0, 1.0),
            reasons: signals.into_iter().take(3).map(|(_, r)| r).collect(),
        }
    }

    pub fn segment(&self) -> Segment {
        let risk = self.churn_risk().score;
        if risk >= 0.6 {
            return Segment::AtRisk;
        }
        match self.nps_category() {
            Some(NpsCategory::Promoter) => {
                let twice = self.nps.counts.promoters >= 2
                    || self.last_rating.as_ref().is_some_and(|r| r.value == 5);
                let warm = self.decayed_sentiment().is_none_or(|d| d >= 0.3);
                if twice && warm && risk < 0.3 {
                    Segment::Champion
                } else {
                    Segment::Promoter
                }
            }
            Some(NpsCategory::Passive) => Segment::Passive,
            Some(NpsCategory::Detractor) => Segment::Detractor,
            None if self.feedback_count <= 1 => Segment::New,
            None => Segment::Active,
        }
    }
}
