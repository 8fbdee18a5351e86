//! Facts where the latest statement wins (ties broken by feedback id): the contact
//! block field by field, and consent per channel.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::{Channel, Consent, ContactField, CustomerInfo, Tz};

/// A value together with the feedback that set it, so "latest" is well defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Latest_{T}"))]
pub struct Latest<T> {
    pub at: DateTime<Utc>,
    pub feedback_id: String,
    pub value: T,
}

impl<T> Latest<T> {
    pub(super) fn newer_than(&self, other: &Latest<T>) -> bool {
        (self.at, &self.feedback_id) > (other.at, &other.feedback_id)
    }
}

pub(super) fn stamp<T>(at: DateTime<Utc>, feedback_id: &str, value: T) -> Latest<T> {
    Latest {
        at,
        feedback_id: feedback_id.to_owned(),
        value,
    }
}

pub(super) fn keep_latest<T>(slot: &mut Option<Latest<T>>, candidate: Latest<T>) {
    if slot.as_ref().is_none_or(|cur| candidate.newer_than(cur)) {
        *slot = Some(candidate);
    }
}

/// Consent per channel as a fact: the latest explicit statement, with when and where
/// it was made (a feedback id, or the staff route). An opt-out stands until a later
/// explicit opt-in; a customer block that says nothing about a channel changes
/// nothing. Latest-wins by time, so the fold stays order-independent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConsentFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Latest<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<Latest<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Latest<bool>>,
}

impl ConsentFacts {
    /// Record what `consent` states explicitly, as said at `at` by `source`.
    pub fn record(&mut self, at: DateTime<Utc>, source: &str, consent: &Consent) {
        for (slot, said) in [
            (&mut self.email, consent.email),
            (&mut self.sms, consent.sms),
            (&mut self.phone, consent.phone),
        ] {
            if let Some(v) = said {
                keep_latest(slot, stamp(at, source, v));
            }
        }
    }

    /// The consent in force: each channel's latest explicit statement.
    pub fn current(&self) -> Consent {
        let v = |f: &Option<Latest<bool>>| f.as_ref().map(|l| l.value);
        Consent {
            email: v(&self.email),
            sms: v(&self.sms),
            phone: v(&self.phone),
        }
    }
}

/// The contact block field by field: each field's latest statement (a value, or an
/// explicit `null` that cleared it), so a later block naming only the customer's name
/// keeps their e-mail, phone and zone. Latest-wins by time per field: order-independent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContactFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Latest<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Latest<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Latest<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Latest<Option<Tz>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_channel: Option<Latest<Option<Channel>>>,
}

impl ContactFacts {
    pub(super) fn is_empty(&self) -> bool {
        self == &ContactFacts::default()
    }

    /// Record what `info` states, field by field, as said at `at` by `source`.
    pub fn record(&mut self, at: DateTime<Utc>, source: &str, info: &CustomerInfo) {
        let cleared = |f: ContactField| info.cleared.contains(&f);
        fn said<T: Clone>(value: &Option<T>, cleared: bool) -> Option<Option<T>> {
            match (value, cleared) {
                (Some(v), _) => Some(Some(v.clone())),
                (None, true) => Some(None),
                (None, false) => None,
            }
        }
        let strings = [
            (&mut self.name, &info.name, ContactField::Name),
            (&mut self.email, &info.email, ContactField::Email),
            (&mut self.phone, &info.phone, ContactField::Phone),
        ];
        for (slot, value, field) in strings {
            if let Some(v) = said(value, cleared(field)) {
                keep_latest(slot, stamp(at, source, v));
            }
        }
        if let Some(v) = said(&info.timezone, cleared(ContactField::Timezone)) {
            keep_latest(&mut self.timezone, stamp(at, source, v));
        }
        if let Some(v) = said(
            &info.preferred_channel,
            cleared(ContactField::PreferredChannel),
        ) {
            keep_latest(&mut self.preferred_channel, stamp(at, source, v));
        }
    }

    /// The contact block in force, stamped with its newest statement; `None` when no
    /// block was ever given.
    pub fn current(&self, consent: Consent) -> Option<Latest<CustomerInfo>> {
        fn v<T: Clone>(f: &Option<Latest<Option<T>>>) -> Option<T> {
            f.as_ref().and_then(|l| l.value.clone())
        }
        let stamps = [
            self.name.as_ref().map(|l| (l.at, &l.feedback_id)),
            self.email.as_ref().map(|l| (l.at, &l.feedback_id)),
            self.phone.as_ref().map(|l| (l.at, &l.feedback_id)),
            self.timezone.as_ref().map(|l| (l.at, &l.feedback_id)),
            self.preferred_channel
                .as_ref()
                .map(|l| (l.at, &l.feedback_id)),
        ];
        let (at, feedback_id) = stamps.into_iter().flatten().max()?;
        Some(stamp(
            at,
            feedback_id,
            CustomerInfo {
                name: v(&self.name),
                email: v(&self.email),
                phone: v(&self.phone),
                timezone: v(&self.timezone),
                preferred_channel: v(&self.preferred_channel),
                consent,
                cleared: Vec::new(),
            },
        ))
    }
}
