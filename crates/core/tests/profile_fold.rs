//! The profile fold: order independence and the meaning of its derived fields.

use chrono::{Duration, TimeZone, Utc};
use feedloop_core::analysis::{AnalyzedFeedback, Analyzer};
use feedloop_core::envelope::{parse_envelope, CustomerId};
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use proptest::prelude::*;
use serde_json::{json, Value};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn analyzed(analyzer: &Analyzer, v: Value) -> AnalyzedFeedback {
    let parsed = parse_envelope(v.to_string().as_bytes(), now()).expect("valid fixture");
    analyzer
        .analyze(parsed.feedback)
        .expect("lexicon analysis cannot fail")
}

const TEXTS: &[&str] = &[
    "Delivery was late again and nobody called me back.",
    "Lovely staff, really quick service!",
    "I was charged twice for the same order.",
    "The app keeps crashing at checkout.",
    "Great value, will come back.",
    "Refund still not processed after three weeks.",
    "",
    "Okay I guess.",
];

/// One feedback as the property tests draw it.
#[derive(Debug, Clone)]
struct Drawn {
    hours_ago: i64,
    /// Several feedbacks share a timestamp, so tie-breaking by id is exercised.
    shared_time: bool,
    text: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Survey {
        nps: u8,
        csat: Option<u8>,
    },
    Review {
        rating: u8,
    },
    Ticket {
        id: u8,
        status: usize,
        priority: usize,
    },
}

fn drawn() -> impl Strategy<Value = Drawn> {
    let kind = prop_oneof![
        (0u8..=10, proptest::option::of(1u8..=5))
            .prop_map(|(nps, csat)| Kind::Survey { nps, csat }),
        (1u8..=5).prop_map(|rating| Kind::Review { rating }),
        (0u8..6, 0usize..4, 0usize..4).prop_map(|(id, status, priority)| Kind::Ticket {
            id,
            status,
            priority
        }),
    ];
    (
        0i64..24 * 120,
        proptest::bool::weighted(0.1),
        0..TEXTS.len(),
        kind,
    )
        .prop_map(|(hours_ago, shared_time, text, kind)| Drawn {
            hours_ago,
            shared_time,
            text,
            kind,
        })
}

fn envelope(i: usize, d: &Drawn) -> Value {
    let at = if d.shared_time {
        now() - Duration::days(3)
    } else {
        now() - Duration::hours(d.hours_ago)
    };
    let text = TEXTS[d.text];
    let mut v = json!({"feedback_id": format!("fb-{i:03}"), "customer_id": "c-1",
                       "occurred_at": at.to_rfc3339(), "text": text,
                       "customer": {"name": format!("Name {}", i % 3), "email": "c1@example.com"}});
    let fields = match d.kind {
        Kind::Survey { nps, csat } => json!({"kind": "survey", "nps_score": nps, "csat": csat}),
        Kind::Review { rating } => json!({"kind": "review", "rating": rating}),
        Kind::Ticket {
            id,
            status,
            priority,
        } => {
            let status = ["open", "pending", "solved", "closed"][status];
            let priority = ["low", "normal", "high", "urgent"][priority];
            json!({"kind": "ticket", "ticket_id": format!("T-{id}"), "status": status,
                   "priority": priority, "subject": "Problem"})
        }
    };
    let obj = v.as_object_mut().expect("object literal");
    for (k, x) in fields.as_object().expect("object literal") {
        if !x.is_null() {
            obj.insert(k.clone(), x.clone());
        }
    }
    v
}

/// Up to 50 feedbacks and an order to apply them in.
fn feedback_and_order() -> impl Strategy<Value = (Vec<Drawn>, Vec<usize>)> {
    proptest::collection::vec(drawn(), 1..50).prop_flat_map(|items| {
        let order = Just((0..items.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(items), order)
    })
}

fn approx_eq(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs())) {
                Ok(())
            } else {
                Err(format!("{path}: {x} != {y}"))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Err(format!("{path}: keys differ"));
            }
            for (k, v) in x {
                approx_eq(
                    v,
                    y.get(k).ok_or(format!("{path}.{k} missing"))?,
                    &format!("{path}.{k}"),
                )?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (p, q))| approx_eq(p, q, &format!("{path}[{i}]"))),
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} != {b}")),
    }
}

fn fold(items: &[&AnalyzedFeedback]) -> Profile {
    let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
    for f in items {
        p.apply(f);
    }
    p
}

fn view(p: &Profile) -> Value {
    json!({"profile": p, "decayed": p.decayed_sentiment(), "segment": p.segment(),
           "churn": p.churn_risk(), "urgent": p.most_urgent_ticket().map(|(k, _)| k.clone())})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_same_feedback_in_any_order_gives_the_same_profile((drawn, order) in feedback_and_order()) {
        let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
        let items: Vec<AnalyzedFeedback> = drawn
            .iter()
            .enumerate()
            .map(|(i, d)| analyzed(&analyzer, envelope(i, d)))
            .collect();
        let reference = view(&fold(&items.iter().collect::<Vec<_>>()));
        prop_assert_eq!(&reference["profile"]["feedback_count"], &json!(items.len()));
        let shuffled: Vec<&AnalyzedFeedback> = order.iter().map(|&i| &items[i]).collect();
        let got = view(&fold(&shuffled));
        if let Err(e) = approx_eq(&reference, &got, "$") {
            prop_assert!(false, "{}", e);
        }
    }
}

fn survey(id: &str, at: chrono::DateTime<Utc>, score: u8, text: &str) -> Value {
    json!({"feedback_id": id, "customer_id": "c-1", "kind": "survey", "occurred_at": at.to_rfc3339(),
           "nps_score": score, "text": text})
}

#[test]
fn decay_follows_occurred_at_not_arrival() {
    let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let old = analyzed(
        &a,
        survey(
            "a",
            now() - Duration::days(90),
            2,
            "Terrible, awful service.",
        ),
    );
    let new = analyzed(&a, survey("b", now(), 10, "Wonderful, great service!"));
    for order in [[&old, &new], [&new, &old]] {
        let p = fold(&order);
        let d = p.decayed_sentiment().unwrap();
        // 90 days = 3 half-lives: the old score weighs 1/8 of the new one.
        let (co, cn) = (old.compound().unwrap(), new.compound().unwrap());
        assert!((d - (co / 8.0 + cn) / (1.0 / 8.0 + 1.0)).abs() < 1e-9);
        assert_eq!(p.nps.last.as_ref().unwrap().value, 10);
        assert_eq!(p.nps.previous.as_ref().unwrap().value, 2);
        assert_eq!(p.sentiment.last.as_ref().unwrap().feedback_id, "b");
        assert!((p.sentiment.min.unwrap() - co).abs() < 1e-12);
    }
}

#[test]
fn segments_and_churn_risk_follow_their_definitions() {
    let a = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let t = now();
    let one = fold(&[&analyzed(
        &a,
        json!({"feedback_id": "r", "customer_id": "c-1", "kind": "review",
        "occurred_at": t.to_rfc3339(), "text": "Fine."}),
    )]);
    assert_eq!(one.segment(), Segment::New);

    let champion = [
        analyzed(&a, survey("p1", t - Duration::days(10), 9, "Great service")),
        analyzed(&a, survey("p2", t, 10, "Love it, excellent staff")),
    ];
    let p = fold(&champion.iter().collect::<Vec<_>>());
    assert_eq!(p.segment(), Segment::Champion);
    assert!(p.churn_risk().score < 0.1);

    let falling = [
        analyzed(&a, survey("d1", t - Duration::days(10), 9, "")),
        analyzed(
            &a,
            survey(
                "d2",
                t,
                1,
                "Delivery never arrived and support never replied. Awful.",
            ),
        ),
        analyzed(
            &a,
            json!({"feedback_id": "t1", "customer_id": "c-1", "kind": "ticket",
                       "occurred_at": t.to_rfc3339(), "text": "Where is my parcel?", "ticket_id": "T-7",
                       "status": "open", "priority": "urgent"}),
        ),
    ];
    let p = fold(&falling.iter().collect::<Vec<_>>());
    let risk = p.churn_risk();
    assert_eq!(p.segment(), Segment::AtRisk, "{risk:?}");
    assert!(risk.score >= 0.6 && risk.score <= 1.0);
    assert_eq!(risk.reasons[0], "detractor (NPS 1)");
    assert!(
        risk.reasons.iter().any(|r| r == "urgent ticket T-7 open"),
        "{risk:?}"
    );
    assert_eq!(p.most_urgent_ticket().unwrap().0, "T-7");
    assert_eq!(p.open_tickets().count(), 1);

    let solved = analyzed(
        &a,
        json!({"feedback_id": "t2", "customer_id": "c-1", "kind": "ticket",
        "occurred_at": (t + Duration::hours(1)).to_rfc3339(), "text": "Thanks, found it", "ticket_id": "T-7",
        "status": "solved"}),
    );
    let mut all: Vec<&AnalyzedFeedback> = falling.iter().collect();
    all.insert(0, &solved);
    let p = fold(&all);
    assert_eq!(
        p.open_tickets().count(),
        0,
        "a later solved event closes the ticket whatever the arrival order"
    );
    assert!(p.churn_risk().score < risk.score);
}

#[test]
fn an_opt_out_stands_until_a_later_explicit_opt_in_in_any_order() {
    // GIVEN an opt-out by e-mail, a later block that says nothing about consent, and
    // (separately) a still later explicit opt-in
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let fb = |id: &str, days_ago: i64, consent: Option<Value>| {
        let mut customer = json!({"name": "Ada", "email": "ada@example.com"});
        if let Some(c) = consent {
            customer["consent"] = c;
        }
        analyzed(
            &analyzer,
            json!({"feedback_id": id, "customer_id": "c-1", "kind": "review", "rating": 4,
                   "occurred_at": (now() - Duration::days(days_ago)).to_rfc3339(),
                   "text": "Fine.", "customer": customer}),
        )
    };
    let opt_out = fb("a", 3, Some(json!({"email": false, "sms": true})));
    let silent = fb("b", 2, None);
    let opt_in = fb("c", 1, Some(json!({"email": true})));
    let fold = |items: &[&AnalyzedFeedback]| {
        let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
        for af in items {
            p.apply(af);
        }
        p
    };

    // WHEN the silent block comes after the opt-out, in either arrival order
    for order in [[&opt_out, &silent], [&silent, &opt_out]] {
        let p = fold(&order);
        let consent = &p.contact.as_ref().unwrap().value.consent;
        // THEN the opt-out stands (and the sms opt-in it carried too)
        assert_eq!((consent.email, consent.sms), (Some(false), Some(true)));
        assert_eq!(p.consent.email.as_ref().unwrap().feedback_id, "a");
    }
    // AND only a later explicit opt-in lifts it, whatever the order of arrival
    for order in [
        [&opt_out, &silent, &opt_in],
        [&opt_in, &opt_out, &silent],
        [&silent, &opt_in, &opt_out],
    ] {
        let consent = fold(&order).contact.unwrap().value.consent;
        assert_eq!((consent.email, consent.sms), (Some(true), Some(true)));
    }
}

#[test]
fn a_ticket_subject_is_kept_redacted_like_an_excerpt() {
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let af = analyzed(
        &analyzer,
        json!({"feedback_id": "t1", "customer_id": "c-1", "kind": "ticket", "ticket_id": "T-1",
               "occurred_at": now().to_rfc3339(), "status": "open", "priority": "high",
               "subject": "Refund to ada@example.com, call +44 20 7946 0958", "text": "Please help."}),
    );
    let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
    p.apply(&af);
    let subject = p.tickets["T-1"].value.subject.clone().unwrap();
    assert_eq!(subject, "Refund to [email], call [phone]");
}

#[test]
fn the_profile_keeps_the_language_of_the_latest_feedback_that_named_one() {
    // GIVEN a German review, a later French one and a still later "ok" (too short to tell)
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let review = |id: &str, days: i64, text: &str| {
        analyzed(
            &analyzer,
            json!({"feedback_id": id, "customer_id": "c-1", "kind": "review",
                   "occurred_at": (now() - Duration::days(days)).to_rfc3339(), "text": text}),
        )
    };
    let all = [
        review(
            "fb-1",
            9,
            "Die Lieferung hat drei Wochen gedauert und niemand hat geantwortet.",
        ),
        review(
            "fb-2",
            5,
            "Le colis est arrivé en retard et personne n'a répondu à mes courriels.",
        ),
        review("fb-3", 1, "ok"),
    ];
    // WHEN they are folded in any order
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
        for i in order {
            p.apply(&all[i]);
        }
        // THEN the profile names French, from the French review
        let lang = p.language.expect("a language was told");
        assert_eq!(
            (lang.value.as_str(), lang.feedback_id.as_str()),
            ("fr", "fb-2")
        );
    }
}

#[test]
fn the_contact_block_is_merged_field_by_field_and_an_explicit_null_clears() {
    // GIVEN a full block, a later block naming only the customer, and a still later
    // one clearing the phone
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let fb = |id: &str, days_ago: i64, customer: Value| {
        analyzed(
            &analyzer,
            json!({"feedback_id": id, "customer_id": "c-1", "kind": "review", "rating": 4,
                   "occurred_at": (now() - Duration::days(days_ago)).to_rfc3339(),
                   "text": "Fine.", "customer": customer}),
        )
    };
    let full = fb(
        "a",
        3,
        json!({"name": "Ada", "email": "ada@example.com", "phone": "+447700900123",
               "timezone": "Europe/London"}),
    );
    let name_only = fb("b", 2, json!({"name": "Ada Lovelace"}));
    let no_phone = fb("c", 1, json!({"phone": null, "email": "ada@new.example"}));

    for order in [
        [&full, &name_only, &no_phone],
        [&no_phone, &name_only, &full],
        [&name_only, &no_phone, &full],
    ] {
        let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
        for af in order {
            p.apply(af);
        }
        // WHEN the blocks are folded in any order
        let c = p.contact.as_ref().unwrap();
        // THEN each field is its latest statement: the name-only block kept the rest
        assert_eq!(c.value.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(c.value.email.as_deref(), Some("ada@new.example"));
        assert_eq!(
            c.value.timezone.as_ref().map(|t| t.as_str()),
            Some("Europe/London")
        );
        // AND the explicit null cleared the phone
        assert_eq!(c.value.phone, None);
        assert_eq!(c.feedback_id, "c");
        // AND every address it ever held is remembered for an erasure
        assert_eq!(
            p.past_addresses,
            ["+447700900123", "ada@example.com", "ada@new.example"]
        );
    }
}

#[test]
fn consent_is_ordered_by_when_it_arrived_not_by_the_producers_clock() {
    // GIVEN feedback stamped 20 hours ahead by its producer, opting in to e-mail
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let ahead = analyzed(
        &analyzer,
        json!({"feedback_id": "f", "customer_id": "c-1", "kind": "review", "rating": 4,
               "occurred_at": (now() + Duration::hours(20)).to_rfc3339(), "text": "Fine.",
               "customer": {"email": "ada@example.com", "consent": {"email": true}}}),
    );
    let mut p = Profile::new(CustomerId::parse("c-1").unwrap(), 30.0);
    p.apply(&ahead);
    // WHEN the customer unsubscribes an hour after it arrived
    let unsubscribe = feedloop_core::envelope::Consent {
        email: Some(false),
        ..Default::default()
    };
    p.set_consent(now() + Duration::hours(1), "unsubscribe", &unsubscribe);
    // THEN the unsubscribe stands: the feedback's statement counts from its arrival
    assert_eq!(p.contact.unwrap().value.consent.email, Some(false));
}
