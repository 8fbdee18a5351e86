//! The pure part of dispatching one intent: who to contact, on which channel, when,
//! and with which rendered message. The dry run and the follow-up function both call
//! this, so a dry run shows exactly what a live deployment would send. The atomic cap
//! check and delivery are the caller's.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::guards::{self, CapPolicy, ConsentPolicy, SkipReason};
use super::suppression::Suppressed;
use super::templates::{RenderedEmail, RenderedSms, Templates, Variables};
use super::{ContactChannel, FollowUpIntent, VariantId};
use crate::envelope::CustomerInfo;

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
    pub default_timezone: String,
    /// Signs the opt-out link of every e-mail. `None` only where nothing is sent for
    /// real (the embedded demo, dry runs); live mode requires it.
    #[serde(skip)]
    pub unsubscribe: Option<super::unsubscribe::UnsubscribeLinks>,
    /// The business's postal address, at the foot of every marketing e-mail; live
    /// mode requires it.
    #[serde(default)]
    pub postal_address: Option<String>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// The zones quiet hours are judged in, and a note for the attempt's record when they
/// are not the customer's own: the zones of their phone number's country (every one of
/// them where the country has several), else the business's `DefaultTimezone`. Never
/// UTC by accident.
pub fn quiet_hours_zones<'a>(
    customer: Option<&'a CustomerInfo>,
    policy: &'a DispatchPolicy,
) -> (Vec<&'a str>, Option<String>) {
    if let Some(tz) = customer.and_then(|c| c.timezone.as_deref()) {
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
    let (t, c, p) = (
        intent.template.as_str(),
        &intent.customer_id,
        &intent.playbook,
    );
    let rendered = match channel {
        ContactChannel::Email => templates.render_email(t, locale, c, p, &vars).map(|email| {
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
            .render_sms(
                t,
                locale,
                c,
                p,
                &vars,
                intent.purpose == super::Purpose::Marketing,
            )
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
mod tests {
    use super::*;
    use crate::envelope::{Channel, Consent};
    use crate::followup::Purpose;
    use chrono::TimeZone;

    fn intent(purpose: Purpose) -> FollowUpIntent {
        FollowUpIntent {
            feedback_id: crate::envelope::FeedbackId::parse("f1").unwrap(),
            customer_id: crate::envelope::CustomerId::parse("c1").unwrap(),
            playbook: "detractor_recovery".into(),
            purpose,
            priority: 100,
            template: "detractor_recovery".into(),
            channels: vec![ContactChannel::Email, ContactChannel::Sms],
            not_before: Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
            occurred_at: Some(Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap()),
            top_negative_theme: Some("delivery".into()),
            nps_score: Some(2),
            ticket_id: None,
            theme_label: Some("Delivery & shipping".into()),
            inbound: Some(Channel::Email),
            locale: None,
            sentiment: Some(-0.7),
            delivery_attempts: 0,
            first_seen: Vec::new(),
            staff_task: false,
        }
    }

    fn customer(tz: &str) -> CustomerInfo {
        CustomerInfo {
            name: Some("Ada <b>Lovelace</b>".into()),
            email: Some("ada@example.com".into()),
            timezone: Some(tz.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_service_reply_renders_on_the_inbound_channel_with_escaped_html() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let p = plan(
            &intent(Purpose::Service),
            Some(&customer("Europe/London")),
            &Suppressed::default(),
            &Templates::default_catalog(),
            &DispatchPolicy::default(),
            now,
        );
        let Plan::Send(Message::Email { to, email }, _) = p else {
            panic!("expected an e-mail, got {p:?}")
        };
        assert_eq!(to, "ada@example.com");
        assert!(email.html.contains("Ada"));
        assert!(!email.html.contains("<b>"), "{}", email.html);
        assert!(!email.text.contains("{{"), "{}", email.text);
    }

    #[test]
    fn suppression_consent_quiet_hours_and_delay_are_applied_in_order() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let t = Templates::default_catalog();
        let pol = DispatchPolicy::default();
        let c = customer("Europe/London");
        assert_eq!(
            plan(
                &intent(Purpose::Service),
                Some(&c),
                &Suppressed {
                    customer: true,
                    ..Default::default()
                },
                &t,
                &pol,
                now
            ),
            Plan::Skip(SkipReason::Suppressed)
        );
        let mut opted_out = c.clone();
        opted_out.consent = Consent {
            email: Some(false),
            ..Consent::default()
        };
        assert!(matches!(
            plan(
                &intent(Purpose::Service),
                Some(&opted_out),
                &Suppressed::default(),
                &t,
                &pol,
                now
            ),
            Plan::Skip(SkipReason::NoConsentedChannel { .. })
        ));
        // 12:00 UTC is 21:00 in Tokyo: quiet until 08:00 local = 23:00 UTC.
        assert_eq!(
            plan(
                &intent(Purpose::Service),
                Some(&customer("Asia/Tokyo")),
                &Suppressed::default(),
                &t,
                &pol,
                now
            ),
            Plan::Defer(Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap())
        );
        let mut later = intent(Purpose::Service);
        later.not_before = now + chrono::Duration::minutes(90);
        assert_eq!(
            plan(&later, Some(&c), &Suppressed::default(), &t, &pol, now),
            Plan::Defer(later.not_before)
        );
        let mut unknown = intent(Purpose::Service);
        unknown.template = "nope".into();
        assert!(
            matches!(plan(&unknown, Some(&c), &Suppressed::default(), &t, &pol, now), Plan::Fail(e) if e.contains("nope"))
        );
    }

    #[test]
    fn old_feedback_is_skipped_as_stale_however_long_the_queue_held_it() {
        // GIVEN an intent about feedback from 11:00 and the default 72-hour limit
        let t = Templates::default_catalog();
        let pol = DispatchPolicy::default();
        let c = customer("Europe/London");
        let at = |h: i64| {
            Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap() + chrono::Duration::hours(h)
        };

        // WHEN it is dispatched just inside the limit, it goes out
        assert!(matches!(
            plan(
                &intent(Purpose::Service),
                Some(&c),
                &Suppressed::default(),
                &t,
                &pol,
                at(72)
            ),
            Plan::Send(..)
        ));
        // AND a day later (a redrive from the DLQ) it is skipped with the reason
        let p = plan(
            &intent(Purpose::Service),
            Some(&c),
            &Suppressed::default(),
            &t,
            &pol,
            at(96),
        );
        assert_eq!(
            p,
            Plan::Skip(SkipReason::Stale {
                age_hours: 96,
                max_hours: 72
            })
        );
        let Plan::Skip(reason) = p else {
            unreachable!()
        };
        assert!(reason.to_string().starts_with("stale"), "{reason}");
        // AND an intent queued by an older version (no occurred_at) is judged by its delay
        let mut old = intent(Purpose::Service);
        old.occurred_at = None;
        assert!(matches!(
            plan(&old, Some(&c), &Suppressed::default(), &t, &pol, at(1 + 73)),
            Plan::Skip(SkipReason::Stale { .. })
        ));
    }

    #[test]
    fn without_a_customer_zone_quiet_hours_follow_the_business_zone_not_utc() {
        // GIVEN a customer with no time zone and a business in Los Angeles
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(); // 04:00 in LA
        let t = Templates::default_catalog();
        let pol = DispatchPolicy {
            default_timezone: "America/Los_Angeles".into(),
            ..DispatchPolicy::default()
        };
        let mut c = customer("Europe/London");
        c.timezone = None;

        // WHEN the follow-up falls due at noon UTC
        let p = plan(
            &intent(Purpose::Service),
            Some(&c),
            &Suppressed::default(),
            &t,
            &pol,
            now,
        );

        // THEN it waits for 08:00 in Los Angeles (16:00 UTC), where UTC would send now
        assert_eq!(
            p,
            Plan::Defer(Utc.with_ymd_and_hms(2026, 11, 24, 16, 0, 0).unwrap())
        );
        let (zones, note) = quiet_hours_zones(Some(&c), &pol);
        assert_eq!(zones, ["America/Los_Angeles"]);
        assert!(note.unwrap().contains("DefaultTimezone"));
        // and a customer's own zone needs no note
        assert_eq!(
            quiet_hours_zones(Some(&customer("Asia/Tokyo")), &pol),
            (vec!["Asia/Tokyo"], None)
        );
    }

    #[test]
    fn without_a_customer_zone_the_phone_numbers_country_decides_where_it_has_one_zone() {
        // GIVEN a business in Los Angeles and customers with no time zone
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 22, 30, 0).unwrap(); // 23:30 in Berlin
        let t = Templates::default_catalog();
        let pol = DispatchPolicy {
            default_timezone: "America/Los_Angeles".into(),
            ..DispatchPolicy::default()
        };
        let with_phone = |phone: &str| CustomerInfo {
            timezone: None,
            phone: Some(phone.into()),
            ..customer("UTC")
        };
        // WHEN one has a German mobile number
        let de = with_phone("+4915123456789");
        // THEN quiet hours are Berlin's: the 23:30 message waits for 08:00 there
        assert_eq!(
            plan(
                &intent(Purpose::Service),
                Some(&de),
                &Suppressed::default(),
                &t,
                &pol,
                now
            ),
            Plan::Defer(Utc.with_ymd_and_hms(2026, 11, 25, 7, 0, 0).unwrap())
        );
        let (zones, note) = quiet_hours_zones(Some(&de), &pol);
        assert_eq!(zones, ["Europe/Berlin"]);
        assert!(note.unwrap().contains("phone number's country (DE)"));
        // A British and an Indian number place theirs too.
        assert_eq!(
            quiet_hours_zones(Some(&with_phone("+447400123456")), &pol).0,
            ["Europe/London"]
        );
        assert_eq!(
            quiet_hours_zones(Some(&with_phone("+919876543210")), &pol).0,
            ["Asia/Kolkata"]
        );
        // A number libphonenumber cannot place: the business's zone.
        assert_eq!(
            quiet_hours_zones(Some(&with_phone("+999123")), &pol).0,
            ["America/Los_Angeles"]
        );
    }

    #[test]
    fn marketing_mail_carries_the_postal_address_and_service_replies_do_not_need_it() {
        let t = Templates::default_catalog();
        let pol = DispatchPolicy {
            postal_address: Some("Acme Bikes, 1 High Street, Leeds LS1 1AA".into()),
            ..DispatchPolicy::default()
        };
        let mut c = customer("Europe/London");
        c.consent.email = Some(true);
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let text_of = |purpose| match plan(
            &intent(purpose),
            Some(&c),
            &Suppressed::default(),
            &t,
            &pol,
            now,
        ) {
            Plan::Send(Message::Email { email, .. }, _) => (email.text, email.html),
            other => panic!("{other:?}"),
        };
        let (text, html) = text_of(Purpose::Marketing);
        assert!(
            text.contains("Acme Bikes, 1 High Street, Leeds LS1 1AA"),
            "{text}"
        );
        assert!(html.contains("1 High Street"), "{html}");
        let (text, _) = text_of(Purpose::Service);
        assert!(!text.contains("High Street"), "{text}");
    }

    #[test]
    fn quiet_hours_hold_in_every_zone_of_a_several_zone_country() {
        // GIVEN a New York business and a customer with only a US number (San Francisco)
        let t = Templates::default_catalog();
        let pol = DispatchPolicy {
            default_timezone: "America/New_York".into(),
            ..DispatchPolicy::default()
        };
        let ca = CustomerInfo {
            timezone: None,
            phone: Some("+14155550123".into()),
            ..customer("UTC")
        };
        let sms = |now| {
            plan(
                &intent(Purpose::Service),
                Some(&ca),
                &Suppressed::default(),
                &t,
                &pol,
                now,
            )
        };
        // WHEN the reply falls due at 08:00 in New York (05:00 in California)
        let ny_morning = Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap();
        // THEN it waits until 08:00 in the country's westernmost zone (Hawaii, 18:00
        // UTC), not the business's morning
        assert_eq!(
            sms(ny_morning),
            Plan::Defer(Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap())
        );
        // AND at 19:00 UTC (14:00 in New York, 09:00 in Hawaii) it goes, saying how
        // quiet hours were judged
        match sms(Utc.with_ymd_and_hms(2026, 11, 24, 19, 0, 0).unwrap()) {
            Plan::Send(_, Some(note)) => {
                assert!(
                    note.contains("all 8 zones of the phone number's country (US)"),
                    "{note}"
                )
            }
            other => panic!("{other:?}"),
        }
        // AND at 21:30 in New York (02:30 UTC) it waits again, though California is at 18:30
        assert!(matches!(
            sms(Utc.with_ymd_and_hms(2026, 11, 25, 2, 30, 0).unwrap()),
            Plan::Defer(_)
        ));
        // AND where the zones lie too far apart, the business's zone decides, and says so
        let long_nights = DispatchPolicy {
            quiet_hours: parse_quiet_hours("18:00-09:00").unwrap(),
            ..pol.clone()
        };
        let ru = CustomerInfo {
            phone: Some("+79123456789".into()),
            ..ca.clone()
        };
        let (_, note) = quiet_hours_release(ny_morning, Some(&ru), &long_nights);
        assert!(note.unwrap().contains("no hour is outside quiet hours"));
    }

    #[test]
    fn a_capped_service_reply_waits_for_the_cap_while_fresh_and_marketing_is_skipped() {
        // GIVEN feedback from 11:00 and the default 72-hour freshness
        let pol = DispatchPolicy::default();
        let occurred = Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap();
        let soon = occurred + chrono::Duration::hours(30);
        // WHEN the caps allow a service reply 30 hours later, it is deferred to then
        assert_eq!(
            after_cap(&intent(Purpose::Service), soon, &pol),
            Plan::Defer(soon)
        );
        // AND past the freshness limit it is skipped with when it would have been allowed
        let late = occurred + chrono::Duration::hours(80);
        let Plan::Skip(reason) = after_cap(&intent(Purpose::Service), late, &pol) else {
            panic!("a stale wait is skipped")
        };
        assert!(reason.to_string().contains("Service"), "{reason}");
        // AND a capped marketing message is skipped, however soon
        assert!(matches!(
            after_cap(&intent(Purpose::Marketing), soon, &pol),
            Plan::Skip(SkipReason::FrequencyCap {
                purpose: Purpose::Marketing,
                ..
            })
        ));
    }

    #[test]
    fn every_country_zone_is_a_zone_chrono_tz_knows() {
        for (country, zones) in super::super::country_zones::COUNTRY_ZONES {
            assert!(!zones.is_empty(), "{country}");
            for zone in zones {
                assert!(
                    crate::followup::guards::is_known_timezone(zone),
                    "{country}: {zone}"
                );
            }
        }
    }

    #[test]
    fn quiet_hours_parse() {
        assert_eq!(parse_quiet_hours("off"), Ok(None));
        assert_eq!(
            parse_quiet_hours("21:00-08:00").unwrap(),
            NaiveTime::from_hms_opt(21, 0, 0).zip(NaiveTime::from_hms_opt(8, 0, 0))
        );
        assert!(parse_quiet_hours("9pm-8am").is_err());
        assert!(parse_quiet_hours("08:00-08:00").is_err());
    }
}
