//! Guards between "a playbook wants to send" and "something is sent": consent per
//! channel, suppression, frequency caps, quiet hours. Pure decisions; the dispatcher
//! enforces the caps atomically in the store (two Lambdas must not both send).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{ContactChannel, FollowUpIntent, Purpose};
use crate::envelope::{Channel, CustomerInfo};

/// Why a follow-up was not sent. Recorded on the customer's follow-up history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    #[error("customer is on the suppression list")]
    Suppressed,
    /// The one channel the follow-up could use has its address on the list (a hard
    /// bounce, a complaint, an unsubscribe): the other channels stay open.
    #[error("address suppressed ({channel:?}): no other channel with an address and consent")]
    AddressSuppressed { channel: ContactChannel },
    #[error("no channel with both an address and consent for a {purpose:?} message")]
    NoConsentedChannel { purpose: Purpose },
    /// The only channel left was SMS and the business's SMS rules close it.
    #[error("SMS closed: {why}")]
    SmsClosed { why: String },
    /// The atomic claim found a recent follow-up. Service replies count only other
    /// service replies; marketing counts every message (no "leave us a review" right
    /// after an apology).
    #[error("frequency cap: a {purpose:?} follow-up cannot go to this customer before {allowed_at} (one per {global}, one per playbook per {playbook})")]
    FrequencyCap {
        purpose: Purpose,
        allowed_at: DateTime<Utc>,
        global: Window,
        playbook: Window,
    },
    #[error("already handled: one follow-up per feedback and playbook")]
    Duplicate,
    #[error(
        "stale: the feedback is {age_hours}h old and follow-ups go out within {max_hours}h of it"
    )]
    Stale { age_hours: i64, max_hours: i64 },
}

/// The consent policy, explicit and configurable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentPolicy {
    /// Marketing needs an explicit opt-in on the channel (GDPR / PECR / TCPA style).
    pub marketing_requires_opt_in: bool,
    /// A service reply may use the channel the customer wrote from, unless they opted
    /// out of it: answering a complaint where it was made is expected, not marketing.
    pub service_may_reply_on_inbound_channel: bool,
    /// Countries (ISO 3166 alpha-2) whose numbers may get an SMS; `None` is any. Every
    /// text costs money by destination, and a form that accepts any number invites
    /// SMS pumping.
    #[serde(default)]
    pub sms_countries: Option<Vec<String>>,
    /// Whether a number first seen in the very message being answered may get an SMS.
    /// Off, a web form cannot make the business text numbers it has never dealt with.
    #[serde(default = "yes")]
    pub sms_to_new_numbers: bool,
}

fn yes() -> bool {
    true
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        ConsentPolicy {
            marketing_requires_opt_in: true,
            service_may_reply_on_inbound_channel: true,
            sms_countries: None,
            sms_to_new_numbers: true,
        }
    }
}

fn consent_for(c: &CustomerInfo, ch: ContactChannel) -> Option<bool> {
    match ch {
        ContactChannel::Email => c.consent.email,
        ContactChannel::Sms => c.consent.sms,
    }
}

fn has_address(c: &CustomerInfo, ch: ContactChannel) -> bool {
    match ch {
        ContactChannel::Email => c.email.is_some(),
        ContactChannel::Sms => c.phone.is_some(),
    }
}

/// Why the business's SMS rules close SMS for this intent, if they do.
fn sms_closed(intent: &FollowUpIntent, c: &CustomerInfo, policy: &ConsentPolicy) -> Option<String> {
    if !policy.sms_to_new_numbers && intent.first_seen.contains(&ContactChannel::Sms) {
        return Some(
            "the number was first seen in this message and SMS to new numbers is off (SmsToNewNumbers)".into(),
        );
    }
    let allowed = policy.sms_countries.as_ref()?;
    let country = c
        .phone
        .as_deref()
        .and_then(|p| phonenumber::parse(None, p).ok())
        .and_then(|n| n.country().id())
        .map(|id| AsRef::<str>::as_ref(&id).to_owned());
    match country {
        Some(cc) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&cc)) => None,
        Some(cc) => Some(format!("{cc} numbers are not in SmsCountries")),
        None => Some("the number's country is unknown and SmsCountries is set".into()),
    }
}

fn inbound_matches(inbound: Option<Channel>, ch: ContactChannel) -> bool {
    matches!(
        (inbound, ch),
        (Some(Channel::Email), ContactChannel::Email) | (Some(Channel::Sms), ContactChannel::Sms)
    )
}

/// The first channel of the playbook's preference order (customer's preferred channel
/// first when the playbook allows it) that has an address and consent.
pub fn choose_channel(
    intent: &FollowUpIntent,
    customer: &CustomerInfo,
    inbound: Option<Channel>,
    policy: &ConsentPolicy,
    suppressed: &super::suppression::Suppressed,
) -> Result<ContactChannel, SkipReason> {
    let mut order = intent.channels.clone();
    let preferred = match customer.preferred_channel {
        Some(Channel::Email) => Some(ContactChannel::Email),
        Some(Channel::Sms) => Some(ContactChannel::Sms),
        _ => None,
    };
    if let Some(p) = preferred {
        if let Some(i) = order.iter().position(|c| *c == p) {
            order.remove(i);
            order.insert(0, p);
        }
    }
    let mut closed = None;
    let allowed: Vec<ContactChannel> = order
        .into_iter()
        .filter(|&ch| {
            if ch == ContactChannel::Sms && has_address(customer, ch) {
                if let Some(why) = sms_closed(intent, customer, policy) {
                    closed = Some(why);
                    return false;
                }
            }
            has_address(customer, ch)
                && match (consent_for(customer, ch), intent.purpose) {
                    (Some(false), _) => false,
                    (Some(true), _) => true,
                    (None, Purpose::Marketing) => !policy.marketing_requires_opt_in,
                    (None, Purpose::Service) => {
                        policy.service_may_reply_on_inbound_channel && inbound_matches(inbound, ch)
                    }
                }
        })
        .collect();
    match allowed.iter().find(|&&ch| !suppressed.channel(ch)) {
        Some(&ch) => Ok(ch),
        None => Err(match allowed.first() {
            Some(&channel) => SkipReason::AddressSuppressed { channel },
            None => match closed {
                Some(why) => SkipReason::SmsClosed { why },
                None => SkipReason::NoConsentedChannel {
                    purpose: intent.purpose,
                },
            },
        }),
    }
}

/// A cap window, shown the way it was configured ("7 days", "2 hours").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Window {
    pub hours: i64,
}

impl Window {
    pub fn days(days: i64) -> Window {
        Window { hours: days * 24 }
    }
    pub fn hours(hours: i64) -> Window {
        Window { hours }
    }
    pub fn duration(self) -> Duration {
        Duration::hours(self.hours)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hours {
            h if h % 24 == 0 && h != 24 => write!(f, "{} days", h / 24),
            24 => write!(f, "day"),
            1 => write!(f, "hour"),
            h => write!(f, "{h} hours"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapPolicy {
    /// Between two follow-ups of one purpose to a customer (default 7 days); marketing
    /// also waits this long after a service reply, never the other way round.
    pub global: Window,
    /// Between two follow-ups of one playbook to a customer (default 30 days).
    pub playbook: Window,
}

impl Default for CapPolicy {
    fn default() -> Self {
        CapPolicy {
            global: Window::days(7),
            playbook: Window::days(30),
        }
    }
}

/// The last sends a customer's cap item holds that bear on one claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastSent {
    pub service: Option<DateTime<Utc>>,
    /// Marketing sends, and every send made before caps were kept per purpose.
    pub marketing: Option<DateTime<Utc>>,
    /// This playbook's last send.
    pub playbook: Option<DateTime<Utc>>,
}

impl CapPolicy {
    /// The earliest time a `purpose` follow-up may go to a customer whose last sends
    /// are `last`: at or before `now` when it may go now. The store's atomic claim
    /// enforces the same rule; this says when to try again.
    pub fn allowed_at(
        &self,
        purpose: Purpose,
        last: &LastSent,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let after = |t: Option<DateTime<Utc>>, w: Window| t.map(|t| t + w.duration());
        let mut gates = vec![
            after(last.service, self.global),
            after(last.playbook, self.playbook),
        ];
        if purpose == Purpose::Marketing {
            gates.push(after(last.marketing, self.global));
        }
        gates.into_iter().flatten().fold(now, DateTime::max)
    }
}

/// Quiet hours in the customer's time zone (default 21:00-08:00). Returns when the
/// message may go out: `now` if outside quiet hours, else the next morning. Messages are
/// deferred, never dropped. `tz` is the zone to judge in: the caller passes the
/// customer's or, without one, the business's (`plan::quiet_hours_zones`).
pub fn not_before_quiet_hours(
    now: DateTime<Utc>,
    tz: Option<&str>,
    start: NaiveTime,
    end: NaiveTime,
) -> DateTime<Utc> {
    let tz: Tz = tz.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
    let local = now.with_timezone(&tz);
    let t = local.time();
    let quiet = if start > end {
        t >= start || t < end
    } else {
        t >= start && t < end
    };
    if !quiet {
        return now;
    }
    let day = if t >= end {
        local.date_naive() + Duration::days(1)
    } else {
        local.date_naive()
    };
    // A DST gap at `end` is skipped by taking the earliest valid instant after it.
    let mut candidate = day.and_time(end);
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&candidate).earliest() {
            return dt.with_timezone(&Utc);
        }
        candidate += Duration::minutes(30);
    }
    now + Duration::hours(12)
}

/// The earliest instant at or after `now` outside quiet hours in every one of `zones`;
/// `None` when there is none within two days (the zones span more than the hours
/// outside quiet hours).
pub fn not_before_quiet_hours_everywhere(
    now: DateTime<Utc>,
    zones: &[&str],
    start: NaiveTime,
    end: NaiveTime,
) -> Option<DateTime<Utc>> {
    let mut t = now;
    // Moving later for one zone can enter another's quiet hours: repeat until a whole
    // round moves nothing.
    while t < now + Duration::days(2) {
        let next = zones
            .iter()
            .fold(t, |t, z| not_before_quiet_hours(t, Some(z), start, end));
        if next == t {
            return Some(t);
        }
        t = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Consent;

    fn intent(purpose: Purpose, channels: Vec<ContactChannel>) -> FollowUpIntent {
        crate::followup::fixtures::intent(purpose, "p", channels, Utc::now())
    }

    fn customer(email: Option<bool>, sms: Option<bool>) -> CustomerInfo {
        CustomerInfo {
            email: Some("a@example.com".into()),
            phone: Some("+447700900123".into()),
            consent: Consent {
                email,
                sms,
                phone: None,
            },
            ..Default::default()
        }
    }

    use ContactChannel::*;

    /// `choose_channel` with nothing suppressed.
    fn open_channel(
        intent: &FollowUpIntent,
        customer: &CustomerInfo,
        inbound: Option<Channel>,
        policy: &ConsentPolicy,
    ) -> Result<ContactChannel, SkipReason> {
        choose_channel(intent, customer, inbound, policy, &Default::default())
    }

    #[test]
    fn marketing_needs_opt_in_service_may_answer_where_the_customer_wrote() {
        let p = ConsentPolicy::default();
        let mk = intent(Purpose::Marketing, vec![Email, Sms]);
        assert_eq!(
            open_channel(&mk, &customer(None, Some(true)), None, &p),
            Ok(Sms)
        );
        assert!(open_channel(&mk, &customer(None, None), Some(Channel::Email), &p).is_err());
        let sv = intent(Purpose::Service, vec![Email, Sms]);
        assert_eq!(
            open_channel(&sv, &customer(None, None), Some(Channel::Email), &p),
            Ok(Email)
        );
        assert!(open_channel(&sv, &customer(None, None), Some(Channel::Web), &p).is_err());
        assert!(
            open_channel(
                &sv,
                &customer(Some(false), Some(false)),
                Some(Channel::Email),
                &p
            )
            .is_err(),
            "opt-out always wins"
        );
        let strict = ConsentPolicy {
            service_may_reply_on_inbound_channel: false,
            ..p
        };
        assert!(open_channel(&sv, &customer(None, None), Some(Channel::Email), &strict).is_err());
    }

    #[test]
    fn a_suppressed_address_closes_its_channel_only() {
        // GIVEN a customer who consented to both channels and whose e-mail bounced
        let c = customer(Some(true), Some(true));
        let p = ConsentPolicy::default();
        let sv = intent(Purpose::Service, vec![Email, Sms]);
        let bounced = super::super::suppression::Suppressed {
            email: true,
            ..Default::default()
        };
        // THEN the apology goes by SMS
        assert_eq!(choose_channel(&sv, &c, None, &p, &bounced), Ok(Sms));
        // AND with the number suppressed too, the skip names the channel it would have used
        let both = super::super::suppression::Suppressed {
            email: true,
            sms: true,
            customer: false,
        };
        let skip = choose_channel(&sv, &c, None, &p, &both).unwrap_err();
        assert_eq!(skip, SkipReason::AddressSuppressed { channel: Email });
        assert!(
            skip.to_string().starts_with("address suppressed (Email)"),
            "{skip}"
        );
    }

    #[test]
    fn sms_goes_only_to_allowed_countries_and_to_known_numbers_unless_the_business_says_so() {
        // GIVEN a customer who wrote by SMS from a number first seen in that message
        let mut c = customer(None, None);
        c.email = None;
        c.phone = Some("+447400123456".into());
        let mut sv = intent(Purpose::Service, vec![Sms]);
        sv.first_seen = vec![Sms];
        let none = super::super::suppression::Suppressed::default();
        let inbound = Some(Channel::Sms);
        // WHEN the business texts only US numbers, THEN a British number is closed
        let us_only = ConsentPolicy {
            sms_countries: Some(vec!["US".into()]),
            ..ConsentPolicy::default()
        };
        let skip = choose_channel(&sv, &c, inbound, &us_only, &none).unwrap_err();
        assert_eq!(
            skip.to_string(),
            "SMS closed: GB numbers are not in SmsCountries"
        );
        // WHEN new numbers are off, THEN the reply waits for a number the business knows
        let known_only = ConsentPolicy {
            sms_countries: Some(vec!["GB".into()]),
            sms_to_new_numbers: false,
            ..ConsentPolicy::default()
        };
        let skip = choose_channel(&sv, &c, inbound, &known_only, &none).unwrap_err();
        assert!(
            skip.to_string().contains("first seen in this message"),
            "{skip}"
        );
        // AND a number the profile held before is answered
        sv.first_seen.clear();
        assert_eq!(
            choose_channel(&sv, &c, inbound, &known_only, &none),
            Ok(Sms)
        );
    }

    #[test]
    fn preferred_channel_goes_first_when_allowed() {
        let mut c = customer(Some(true), Some(true));
        c.preferred_channel = Some(Channel::Sms);
        assert_eq!(
            choose_channel(
                &intent(Purpose::Marketing, vec![Email, Sms]),
                &c,
                None,
                &ConsentPolicy::default(),
                &Default::default()
            ),
            Ok(Sms)
        );
        assert_eq!(
            choose_channel(
                &intent(Purpose::Marketing, vec![Email]),
                &c,
                None,
                &ConsentPolicy::default(),
                &Default::default()
            ),
            Ok(Email)
        );
    }

    #[test]
    fn a_service_reply_waits_only_for_service_replies_and_marketing_for_everything() {
        // GIVEN a customer sent a marketing message 1 day ago and a service reply 3 days ago
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let policy = CapPolicy::default();
        let last = LastSent {
            service: Some(now - Duration::days(3)),
            marketing: Some(now - Duration::days(1)),
            playbook: None,
        };
        // THEN a service reply waits for the service reply's window alone
        assert_eq!(
            policy.allowed_at(Purpose::Service, &last, now),
            now + Duration::days(4)
        );
        // AND a service reply with only a marketing send behind it goes now
        let only_marketing = LastSent {
            service: None,
            ..last
        };
        assert_eq!(
            policy.allowed_at(Purpose::Service, &only_marketing, now),
            now
        );
        // AND marketing waits for the later of both
        assert_eq!(
            policy.allowed_at(Purpose::Marketing, &last, now),
            now + Duration::days(6)
        );
        // AND the playbook's own window applies to either purpose
        let pb = LastSent {
            playbook: Some(now - Duration::days(10)),
            ..LastSent::default()
        };
        assert_eq!(
            policy.allowed_at(Purpose::Service, &pb, now),
            now + Duration::days(20)
        );
        assert_eq!(Window::days(7).to_string(), "7 days");
        assert_eq!(Window::hours(2).to_string(), "2 hours");
    }

    #[test]
    fn quiet_hours_defer_to_the_next_local_morning() {
        let (start, end) = (
            NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        );
        // 23:30 in Singapore (UTC+8) = 15:30 UTC -> 08:00 SGT next day = 00:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 15, 30, 0).unwrap();
        assert_eq!(
            not_before_quiet_hours(now, Some("Asia/Singapore"), start, end),
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
        );
        // 05:00 in New York (UTC-5) -> 08:00 the same day = 13:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        assert_eq!(
            not_before_quiet_hours(now, Some("America/New_York"), start, end),
            Utc.with_ymd_and_hms(2026, 11, 24, 13, 0, 0).unwrap()
        );
        // Midday in London: now.
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        assert_eq!(
            not_before_quiet_hours(now, Some("Europe/London"), start, end),
            now
        );
    }
}
