//! The feedback envelope (`feedloop.feedback/v1`): the one JSON shape feedloop accepts,
//! parsed once at the edge into types that cannot hold an invalid value.

mod parse;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use parse::{customer_hint, parse_envelope, EnvelopeError, Limits, Problem, Wrapper};

pub const SCHEMA: &str = "feedloop.feedback/v1";

/// What every string newtype of the crate has: comparison with `str`, `as_str`,
/// `Display` (the ids here, `PlaybookId` and `VariantId` in `followup`).
macro_rules! str_newtype_impls {
    ($name:ident) => {
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use str_newtype_impls;

macro_rules! id_newtype {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, ": 1..=128 characters from `[A-Za-z0-9._:@/+=-]`.")]
        // Read back from JSON (a stored record, a queued intent) it is checked again
        // (`try_from`): no way in skips the rule.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                parse::check_id(&s).map(|()| Self(s))
            }
        }

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                parse::check_id(s).map(|()| Self(s.to_owned()))
            }
        }

        str_newtype_impls!($name);
    };
}

/// An IANA time zone the tz database knows (`Europe/Paris`), checked whenever one is
/// read (JSON included), so quiet hours never fall back to UTC on a typo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Tz(String);

impl TryFrom<String> for Tz {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.parse::<chrono_tz::Tz>() {
            Ok(_) => Ok(Tz(s)),
            Err(_) => Err(format!(
                "{s:?} is not an IANA time zone (e.g. Europe/London)"
            )),
        }
    }
}

impl Tz {
    pub fn parse(s: &str) -> Result<Tz, String> {
        Tz::try_from(s.to_owned())
    }

    pub fn utc() -> Tz {
        Tz("UTC".to_owned())
    }
}

str_newtype_impls!(Tz);

id_newtype!(FeedbackId, "feedback id (the idempotency key)");
id_newtype!(CustomerId, "customer id");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Review,
    Survey,
    Ticket,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Review, Kind::Survey, Kind::Ticket];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Review => "review",
            Kind::Survey => "survey",
            Kind::Ticket => "ticket",
        }
    }
}

/// Where the feedback came in, and (for e-mail / SMS) where a reply can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Phone,
    Web,
    App,
    Chat,
    Social,
    InPerson,
    Other,
}

impl Channel {
    pub const NAMES: &'static [&'static str] = &[
        "email",
        "sms",
        "phone",
        "web",
        "app",
        "chat",
        "social",
        "in_person",
        "other",
    ];
    pub fn from_name(s: &str) -> Option<Channel> {
        use Channel::*;
        Some(match s {
            "email" => Email,
            "sms" => Sms,
            "phone" => Phone,
            "web" => Web,
            "app" => App,
            "chat" => Chat,
            "social" => Social,
            "in_person" => InPerson,
            "other" => Other,
            _ => return None,
        })
    }
}

/// Per-channel contact consent as the customer gave it; absent means "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Consent {
    pub email: Option<bool>,
    pub sms: Option<bool>,
    pub phone: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CustomerInfo {
    pub name: Option<String>,
    pub email: Option<String>,
    /// E.164, normalised (`+` and digits only).
    pub phone: Option<String>,
    /// An IANA time zone name, checked against the tz database.
    pub timezone: Option<Tz>,
    pub preferred_channel: Option<Channel>,
    pub consent: Consent,
    /// Fields the block set to an explicit `null`: they clear what the profile held.
    /// (A field left out changes nothing.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleared: Vec<ContactField>,
}

/// A field of the contact block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Name,
    Email,
    Phone,
    Timezone,
    PreferredChannel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Pending,
    Solved,
    Closed,
}

impl TicketStatus {
    pub fn is_open(self) -> bool {
        matches!(self, TicketStatus::Open | TicketStatus::Pending)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// The kind-specific part of an envelope. Scores are range-checked at parse time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Details {
    Review {
        /// 1..=5 stars.
        rating: Option<u8>,
        product_id: Option<String>,
    },
    Survey {
        /// 0..=10.
        nps_score: Option<u8>,
        /// 1..=5.
        csat: Option<u8>,
        question: Option<String>,
    },
    Ticket {
        ticket_id: String,
        status: TicketStatus,
        priority: Priority,
        category: Option<String>,
        subject: Option<String>,
    },
}

impl Details {
    pub fn kind(&self) -> Kind {
        match self {
            Details::Review { .. } => Kind::Review,
            Details::Survey { .. } => Kind::Survey,
            Details::Ticket { .. } => Kind::Ticket,
        }
    }

    pub fn nps_score(&self) -> Option<u8> {
        match self {
            Details::Survey { nps_score, .. } => *nps_score,
            _ => None,
        }
    }

    pub fn csat(&self) -> Option<u8> {
        match self {
            Details::Survey { csat, .. } => *csat,
            _ => None,
        }
    }

    pub fn rating(&self) -> Option<u8> {
        match self {
            Details::Review { rating, .. } => *rating,
            _ => None,
        }
    }
}

/// A feedback that passed validation. Fields are public for reading; the only way to
/// build one from untrusted input is [`parse_envelope`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub feedback_id: FeedbackId,
    pub customer_id: CustomerId,
    pub occurred_at: DateTime<Utc>,
    pub text: String,
    pub channel: Option<Channel>,
    pub source: Option<String>,
    pub locale: Option<String>,
    pub customer: Option<CustomerInfo>,
    pub metadata: BTreeMap<String, String>,
    #[serde(flatten)]
    pub details: Details,
    /// When feedloop received it: consent statements are ordered by this, never by
    /// the producer's `occurred_at` (which may run up to a day ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
}

impl Feedback {
    pub fn kind(&self) -> Kind {
        self.details.kind()
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn ids_read_back_from_json_are_checked_again() {
        let ok: CustomerId = serde_json::from_str("\"cust-042\"").unwrap();
        assert_eq!(ok, "cust-042");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"cust-042\"");
        for bad in ["\"\"", "\"two words\"", "\"ada@example.com\\n\""] {
            assert!(serde_json::from_str::<CustomerId>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<FeedbackId>(bad).is_err(), "{bad}");
        }
        let long = format!("\"{}\"", "x".repeat(129));
        assert!(serde_json::from_str::<FeedbackId>(&long).is_err());
    }
}
