use super::*;
use crate::envelope::{Channel, Consent};
use crate::followup::Purpose;
use chrono::TimeZone;

fn intent(purpose: Purpose) -> FollowUpIntent {
    let at = |h| Utc.with_ymd_and_hms(2026, 11, 24, h, 0, 0).unwrap();
    let channels = vec![ContactChannel::Email, ContactChannel::Sms];
    FollowUpIntent {
        occurred_at: Some(at(11)),
        top_negative_theme: Some("delivery".into()),
        nps_score: Some(2),
        theme_label: Some("Delivery & shipping".into()),
        inbound: Some(Channel::Email),
        sentiment: Some(-0.7),
        ..crate::followup::fixtures::intent(purpose, "detractor_recovery", channels, at(12))
    }
}

/// `plan` with nothing suppressed and the default catalogue, as most cases want.
fn planned(
    intent: &FollowUpIntent,
    customer: &CustomerInfo,
    policy: &DispatchPolicy,
    now: DateTime<Utc>,
) -> Plan {
    plan(
        intent,
        Some(customer),
        &Suppressed::default(),
        &Templates::default_catalog(),
        policy,
        now,
    )
}

fn business_in_los_angeles() -> DispatchPolicy {
    DispatchPolicy {
        default_timezone: Tz::parse("America/Los_Angeles").unwrap(),
        ..DispatchPolicy::default()
    }
}

fn customer(tz: &str) -> CustomerInfo {
    CustomerInfo {
        name: Some("Ada <b>Lovelace</b>".into()),
        email: Some("ada@example.com".into()),
        timezone: Some(Tz::parse(tz).unwrap()),
        ..Default::default()
    }
}

#[test]
fn a_service_reply_renders_on_the_inbound_channel_with_escaped_html() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let p = planned(
        &intent(Purpose::Service),
        &customer("Europe/London"),
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
            &Templates::default_catalog(),
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
        planned(&intent(Purpose::Service), &opted_out, &pol, now),
        Plan::Skip(SkipReason::NoConsentedChannel { .. })
    ));
    // 12:00 UTC is 21:00 in Tokyo: quiet until 08:00 local = 23:00 UTC.
    assert_eq!(
        planned(
            &intent(Purpose::Service),
            &customer("Asia/Tokyo"),
            &pol,
            now
        ),
        Plan::Defer(Utc.with_ymd_and_hms(2026, 11, 24, 23, 0, 0).unwrap())
    );
    let mut later = intent(Purpose::Service);
    later.not_before = now + chrono::Duration::minutes(90);
    assert_eq!(
        planned(&later, &c, &pol, now),
        Plan::Defer(later.not_before)
    );
    let mut unknown = intent(Purpose::Service);
    unknown.template = "nope".into();
    assert!(matches!(planned(&unknown, &c, &pol, now), Plan::Fail(e) if e.contains("nope")));
}

#[test]
fn old_feedback_is_skipped_as_stale_however_long_the_queue_held_it() {
    // GIVEN an intent about feedback from 11:00 and the default 72-hour limit
    let pol = DispatchPolicy::default();
    let c = customer("Europe/London");
    let at =
        |h: i64| Utc.with_ymd_and_hms(2026, 11, 24, 11, 0, 0).unwrap() + chrono::Duration::hours(h);

    // WHEN it is dispatched just inside the limit, it goes out
    assert!(matches!(
        planned(&intent(Purpose::Service), &c, &pol, at(72)),
        Plan::Send(..)
    ));
    // AND a day later (a redrive from the DLQ) it is skipped with the reason
    let p = planned(&intent(Purpose::Service), &c, &pol, at(96));
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
        planned(&old, &c, &pol, at(1 + 73)),
        Plan::Skip(SkipReason::Stale { .. })
    ));
}

#[test]
fn without_a_customer_zone_quiet_hours_follow_the_business_zone_not_utc() {
    // GIVEN a customer with no time zone and a business in Los Angeles
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(); // 04:00 in LA
    let pol = business_in_los_angeles();
    let mut c = customer("Europe/London");
    c.timezone = None;

    // WHEN the follow-up falls due at noon UTC
    let p = planned(&intent(Purpose::Service), &c, &pol, now);

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
    let pol = business_in_los_angeles();
    let with_phone = |phone: &str| CustomerInfo {
        timezone: None,
        phone: Some(phone.into()),
        ..customer("UTC")
    };
    // WHEN one has a German mobile number
    let de = with_phone("+4915123456789");
    // THEN quiet hours are Berlin's: the 23:30 message waits for 08:00 there
    assert_eq!(
        planned(&intent(Purpose::Service), &de, &pol, now),
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
    let pol = DispatchPolicy {
        postal_address: Some("Acme Bikes, 1 High Street, Leeds LS1 1AA".into()),
        ..DispatchPolicy::default()
    };
    let mut c = customer("Europe/London");
    c.consent.email = Some(true);
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let text_of = |purpose| match planned(&intent(purpose), &c, &pol, now) {
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
    let pol = DispatchPolicy {
        default_timezone: Tz::parse("America/New_York").unwrap(),
        ..DispatchPolicy::default()
    };
    let ca = CustomerInfo {
        timezone: None,
        phone: Some("+14155550123".into()),
        ..customer("UTC")
    };
    let sms = |now| planned(&intent(Purpose::Service), &ca, &pol, now);
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
            assert!(Tz::parse(zone).is_ok(), "{country}: {zone}");
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
