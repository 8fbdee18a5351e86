//! The pure part of dispatching one intent: who to contact, on which channel, when,
//! and with which rendered message. The dry run and the follow-up function both call
//! this, so a dry run shows exactly what a live deployment would send. The atomic cap
//! check and delivery are the caller's.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::guards::{self, CapPolicy, ConsentPolicy, SkipReason};
use super::suppression::Suppressed;
use super::templates::{Pick, RenderedEmail, RenderedSms, Templates, Variables};
use super::{ContactChannel, FollowUpIntent, VariantId};
use crate::envelope::{CustomerInfo, Tz};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DispatchPolicy {
    pub consent: ConsentPolicy,
    pub caps: CapPolicy,
    /// Local time in the customer's zone; start > end wraps midnight. `None`: no quiet hours.
    pub quiet_hours: Option<(NaiveTime, NaiveTime)>,
    pub company: Option<String>,
    /// Feedback older than this gets no follow-up (skipped as `stale`).
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: i64,
    /// The business's own IANA zone: quiet hours for a customer without a time zone
    /// are judged here, never in UTC by accident (`DefaultTimezone`).
    #[serde(default = "default_timezone")]
    pub default_timezone: Tz,
    /// Signs the opt-out link of every e-mail. `None` only where nothing is sent for
    /// real (the embedded demo, dry runs); live mode requires it.
    #[serde(skip)]
    pub unsubscribe: Option<super::unsubscribe::UnsubscribeLinks>,
    /// The business's postal address, at the foot of every marketing e-mail; live
    /// mode requires it.
    #[serde(default)]
    pub postal_address: Option<String>,
}

fn default_timezone() -> Tz {
    Tz::utc()
}

/// The zones quiet hours are judged in, and a note for the attempt's record when they
/// are not the customer's own: the zones of their phone number's country (every one of
/// them where the country has several), else the business's `DefaultTimezone`. Never
/// UTC by accident.
pub fn quiet_hours_zones<'a>(
    customer: Option<&'a CustomerInfo>,
    policy: &'a DispatchPolicy,
) -> (Vec<&'a str>, Option<String>) {
    if let Some(tz) = customer.and_then(|c| c.timezone.as_ref()).map(Tz::as_str) {
        return (vec![tz], None);
    }
    if let Some((country, zones)) = customer
        .and_then(|c| c.phone.as_deref())
        .and_then(phone_country_zones)
    {
        let note = match zones {
            [zone] => format!(
                "quiet hours judged in {zone}, the zone of the phone number's country ({country}): the customer has no time zone"
            ),
            _ => format!(
                "quiet hours held in all {} zones of the phone number's country ({country}): the customer has no time zone",
                zones.len()
            ),
        };
        return (zones.to_vec(), Some(note));
    }
    (
        vec![policy.default_timezone.as_str()],
        Some(format!(
            "quiet hours judged in {} (DefaultTimezone): the customer has no time zone",
            policy.default_timezone
        )),
    )
}

/// When a message due at `at` may go: outside quiet hours in every zone
/// `quiet_hours_zones` gives, with its note. Where the zones lie too far apart for any
/// hour to be outside quiet hours in all of them, the business's zone decides, and the
/// note says so.
pub fn quiet_hours_release(
    at: DateTime<Utc>,
    customer: Option<&CustomerInfo>,
    policy: &DispatchPolicy,
) -> (DateTime<Utc>, Option<String>) {
    let (zones, note) = quiet_hours_zones(customer, policy);
    let Some((start, end)) = policy.quiet_hours else {
        return (at, note);
    };
    if let Some(t) = guards::not_before_quiet_hours_everywhere(at, &zones, start, end) {
        return (t, note);
    }
    let zone = policy.default_timezone.as_str();
    (
        guards::not_before_quiet_hours(at, Some(zone), start, end),
        Some(format!(
            "quiet hours judged in {zone} (DefaultTimezone): no hour is outside quiet hours in all {} zones of the phone number's country",
            zones.len()
        )),
    )
}

/// The country of an international (E.164) number and the zones that stand for it
/// (`country_zones`: one per distinct UTC offset); `None` for numbers libphonenumber
/// does not place.
pub fn phone_country_zones(phone: &str) -> Option<(&'static str, &'static [&'static str])> {
    let number = phonenumber::parse(None, phone).ok()?;
    let id = number.country().id()?;
    let id: &str = id.as_ref();
    super::country_zones::COUNTRY_ZONES
        .iter()
        .find(|(c, _)| *c == id)
        .map(|(c, z)| (*c, *z))
}

fn default_max_age_hours() -> i64 {
    super::DEFAULT_MAX_AGE_HOURS
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        DispatchPolicy {
            consent: ConsentPolicy::default(),
            caps: CapPolicy::default(),
            quiet_hours: NaiveTime::from_hms_opt(21, 0, 0).zip(NaiveTime::from_hms_opt(8, 0, 0)),
            company: None,
            max_age_hours: super::DEFAULT_MAX_AGE_HOURS,
            default_timezone: default_timezone(),
            unsubscribe: None,
            postal_address: None,
        }
    }
}

/// Parse "HH:MM-HH:MM" (or "off").
pub fn parse_quiet_hours(s: &str) -> Result<Option<(NaiveTime, NaiveTime)>, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("quiet hours {s:?} are not HH:MM-HH:MM or off"))?;
    let t = |x: &str| {
        NaiveTime::parse_from_str(x.trim(), "%H:%M")
            .map_err(|_| format!("quiet hours {s:?}: {x:?} is not HH:MM"))
    };
    let (a, b) = (t(a)?, t(b)?);
    if a == b {
        return Err(format!("quiet hours {s:?} are empty"));
    }
    Ok(Some((a, b)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Message {
    Email {
        to: String,
        #[serde(flatten)]
        email: RenderedEmail,
    },
    Sms {
        to: String,
        #[serde(flatten)]
        sms: RenderedSms,
    },
}

impl Message {
    pub fn channel(&self) -> ContactChannel {
        match self {
            Message::Email { .. } => ContactChannel::Email,
            Message::Sms { .. } => ContactChannel::Sms,
        }
    }

    pub fn variant(&self) -> &VariantId {
        match self {
            Message::Email { email, .. } => &email.variant,
            Message::Sms { sms, .. } => &sms.variant,
        }
    }

    /// One line for logs and history: the subject or the SMS text.
    pub fn preview(&self) -> &str {
        match self {
            Message::Email { email, .. } => &email.subject,
            Message::Sms { sms, .. } => &sms.text,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Ready to go now (after the atomic cap claim), with the note for the history
    /// record when quiet hours were judged in a zone that is not the customer's own.
    Send(Message, Option<String>),
    /// Not before this time (the intent's delay or quiet hours): try again then.
    Defer(DateTime<Utc>),
    Skip(SkipReason),
    /// A template problem: recorded as failed, retrying would not help.
    Fail(String),
}

/// Decide what to do with an intent now. `customer` is the contact block from the
/// current profile (it may have changed since the feedback, e.g. an opt-out);
/// `suppressed` comes from the suppression list.
pub fn plan(
    intent: &FollowUpIntent,
    customer: Option<&CustomerInfo>,
    suppressed: &Suppressed,
    templates: &Templates,
    policy: &DispatchPolicy,
    now: DateTime<Utc>,
) -> Plan {
    if suppressed.customer {
        return Plan::Skip(SkipReason::Suppressed);
    }
    // The queue may have held the intent for days (deferrals, a DLQ redrive).
    let occurred = intent.occurred_at.unwrap_or(intent.not_before);
    if let Some(age_hours) = super::stale_age_hours(occurred, now, policy.max_age_hours) {
        return Plan::Skip(SkipReason::Stale {
            age_hours,
            max_hours: policy.max_age_hours,
        });
    }
    let empty = CustomerInfo::default();
    let customer = customer.unwrap_or(&empty);
    let channel = match guards::choose_channel(
        intent,
        customer,
        intent.inbound,
        &policy.consent,
        suppressed,
    ) {
        Ok(c) => c,
        Err(reason) => return Plan::Skip(reason),
    };
    let at = now.max(intent.not_before);
    let (at, zone_note) = quiet_hours_release(at, Some(customer), policy);
    if at > now {
        return Plan::Defer(at);
    }
    let vars = Variables {
        first_name: customer
            .name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(str::to_owned),
        company: policy.company.clone(),
        theme_label: intent.theme_label.clone(),
        product: None,
        score: intent.nps_score,
        ticket_id: intent.ticket_id.clone(),
        agent: None,
    };
    let locale = intent.locale.as_deref().unwrap_or("en");
    let c = &intent.customer_id;
    let pick = Pick {
        template: intent.template.as_str(),
        locale,
        customer: c,
        playbook: &intent.playbook,
    };
    let rendered = match channel {
        ContactChannel::Email => templates.render_email(&pick, &vars).map(|email| {
            let email = match &policy.unsubscribe {
                Some(links) => {
                    email.with_unsubscribe(&links.link(c.as_str(), ContactChannel::Email, now))
                }
                None => email,
            };
            let email = match (&policy.postal_address, intent.purpose) {
                (Some(a), super::Purpose::Marketing) => email.with_postal_address(a),
                _ => email,
            };
            Message::Email {
                to: customer.email.clone().unwrap_or_default(),
                email,
            }
        }),
        ContactChannel::Sms => templates
            .render_sms(&pick, &vars, intent.purpose == super::Purpose::Marketing)
            .map(|sms| Message::Sms {
                to: customer.phone.clone().unwrap_or_default(),
                sms,
            }),
    };
    match rendered {
        Ok(m) => Plan::Send(m, zone_note),
        Err(e) => Plan::Fail(e.to_string()),
    }
}

/// What to do with an intent the atomic claim found capped until `allowed_at`: a
/// service reply waits for the cap while its feedback is still fresh (a marketing send
/// never costs a customer their apology); marketing, or a reply the wait would make
/// stale, is skipped with the reason.
pub fn after_cap(
    intent: &FollowUpIntent,
    allowed_at: DateTime<Utc>,
    policy: &DispatchPolicy,
) -> Plan {
    let occurred = intent.occurred_at.unwrap_or(intent.not_before);
    let fresh_until = occurred + chrono::Duration::hours(policy.max_age_hours);
    if intent.purpose == super::Purpose::Service && allowed_at <= fresh_until {
        return Plan::Defer(allowed_at);
    }
    Plan::Skip(SkipReason::FrequencyCap {
        purpose: intent.purpose,
        allowed_at,
        global: policy.caps.global,
        playbook: policy.caps.playbook,
    })
}

#[cfg(test)]
mod tests;
