//! GIVEN an envelope with one specific defect
//! WHEN it is parsed
//! THEN it is rejected with that specific error (path and reason), and nothing else
//! about it is accepted silently.

use chrono::{TimeZone, Utc};
use feedloop_core::envelope::{parse_envelope, EnvelopeError, Kind, Wrapper};
use serde_json::{json, Value};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn review() -> Value {
    json!({
        "feedback_id": "fb-1", "customer_id": "cust-1", "kind": "review",
        "occurred_at": "2026-11-20T09:30:00Z", "text": "Lovely staff, slow delivery.",
        "rating": 4, "product_id": "sku-9", "channel": "web", "source": "google", "locale": "en-GB",
        "customer": {"name": "Ada", "email": "ada@example.com", "phone": "+44 20 7946 0958",
                     "timezone": "Europe/London", "preferred_channel": "email",
                     "consent": {"email": true, "sms": false}},
        "metadata": {"store": "leeds", "visit": 3, "coupon": ""}
    })
}

fn survey() -> Value {
    json!({"feedback_id": "fb-2", "customer_id": "cust-1", "kind": "survey",
           "occurred_at": "2026-11-20T09:30:00+01:00", "nps_score": 9, "csat": 5, "question": "How likely...?"})
}

fn ticket() -> Value {
    json!({"feedback_id": "fb-3", "customer_id": "cust-1", "kind": "ticket",
           "occurred_at": "2026-11-20T09:30:00Z", "text": "I was charged twice", "ticket_id": "T-1",
           "status": "open", "priority": "urgent", "category": "billing", "subject": "Double charge"})
}

fn with(mut base: Value, key: &str, value: Value) -> Vec<u8> {
    let obj = base.as_object_mut().unwrap();
    let mut path = key.split('.').peekable();
    let mut cur = obj;
    while let Some(k) = path.next() {
        if path.peek().is_none() {
            if value == json!("<remove>") {
                cur.remove(k);
            } else {
                cur.insert(k.to_owned(), value.clone());
            }
            break;
        }
        cur = cur.get_mut(k).and_then(Value::as_object_mut).unwrap();
    }
    serde_json::to_vec(&base).unwrap()
}

fn remove(base: Value, key: &str) -> Vec<u8> {
    with(base, key, json!("<remove>"))
}

#[test]
fn valid_envelopes_of_every_kind_and_wrapper_parse() {
    for (input, kind) in [
        (review(), Kind::Review),
        (survey(), Kind::Survey),
        (ticket(), Kind::Ticket),
    ] {
        let bytes = serde_json::to_vec(&input).unwrap();
        let parsed = parse_envelope(&bytes, now()).unwrap();
        assert_eq!(parsed.feedback.kind(), kind);
        assert_eq!(parsed.wrapper, Wrapper::None);

        let sns = json!({"Type": "Notification", "MessageId": "m", "Message": input.to_string()});
        let parsed = parse_envelope(sns.to_string().as_bytes(), now()).unwrap();
        assert_eq!(
            (parsed.wrapper, parsed.feedback.kind()),
            (Wrapper::Sns, kind)
        );

        let eb = json!({"version": "0", "id": "e", "detail-type": "feedback", "source": "shop", "detail": input});
        let parsed = parse_envelope(eb.to_string().as_bytes(), now()).unwrap();
        assert_eq!(
            (parsed.wrapper, parsed.feedback.kind()),
            (Wrapper::EventBridge, kind)
        );
    }
    let parsed = parse_envelope(&serde_json::to_vec(&review()).unwrap(), now())
        .unwrap()
        .feedback;
    let customer = parsed.customer.unwrap();
    assert_eq!(customer.phone.as_deref(), Some("+442079460958"));
    assert_eq!(customer.consent.sms, Some(false));
    assert_eq!(parsed.metadata["visit"], "3");
    assert_eq!(parsed.metadata["coupon"], "");
}

#[test]
fn a_bare_nps_score_needs_no_text() {
    let bytes = remove(survey(), "csat");
    let f = parse_envelope(&bytes, now()).unwrap().feedback;
    assert_eq!((f.text.as_str(), f.details.nps_score()), ("", Some(9)));
}

#[test]
fn every_problem_is_listed_at_once() {
    let bad = json!({"feedback_id": "", "kind": "survey", "occurred_at": "yesterday",
                     "nps_score": 11, "csat": 0, "rating": 5});
    let err = parse_envelope(bad.to_string().as_bytes(), now()).unwrap_err();
    let listed: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    for want in [
        "feedback_id: must not be empty",
        "customer_id: required",
        "occurred_at: not RFC 3339",
        "nps_score: 11 is outside 0..=10",
        "csat: 0 is outside 1..=5",
        "rating: only allowed when kind is review",
    ] {
        assert!(
            listed.iter().any(|p| p.starts_with(want)),
            "missing {want:?} in {listed:?}"
        );
    }
    assert_eq!(listed.len(), 6, "{listed:?}");
}

#[test]
fn each_bad_input_gets_its_specific_error() {
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty body",
            b"".to_vec(),
            "envelope is not valid JSON: EOF while parsing",
        ),
        (
            "not json",
            b"hello".to_vec(),
            "envelope is not valid JSON: expected value",
        ),
        (
            "truncated json",
            br#"{"feedback_id": "a""#.to_vec(),
            "envelope is not valid JSON: EOF while parsing an object",
        ),
        (
            "array",
            b"[1,2]".to_vec(),
            "$: expected a JSON object, got array",
        ),
        (
            "string",
            br#""review""#.to_vec(),
            "$: expected a JSON object, got string",
        ),
        (
            "invalid utf-8",
            b"{\"text\": \"caf\xe9\"}".to_vec(),
            "not valid UTF-8: invalid byte sequence at byte 13",
        ),
        (
            "overlong utf-8",
            b"{\"text\": \"\xc0\xaf\"}".to_vec(),
            "not valid UTF-8: invalid byte sequence at byte 10",
        ),
        (
            "lone surrogate",
            br#"{"text": "\ud800"}"#.to_vec(),
            "not valid JSON: unexpected end of hex escape at line 1 column 17",
        ),
        (
            "too large",
            vec![b' '; 70_000],
            "envelope is 70000 bytes, over the 65536-byte limit",
        ),
        (
            "missing feedback_id",
            remove(review(), "feedback_id"),
            "feedback_id: required",
        ),
        (
            "null feedback_id",
            with(review(), "feedback_id", Value::Null),
            "feedback_id: required, got null",
        ),
        (
            "numeric feedback_id",
            with(review(), "feedback_id", json!(42)),
            "feedback_id: expected a string, got number",
        ),
        (
            "empty feedback_id",
            with(review(), "feedback_id", json!("")),
            "feedback_id: must not be empty",
        ),
        (
            "long feedback_id",
            with(review(), "feedback_id", long(129)),
            "feedback_id: 129 characters, over the 128 limit",
        ),
        (
            "feedback_id with #",
            with(review(), "feedback_id", json!("a#b")),
            "feedback_id: contains '#'",
        ),
        (
            "feedback_id with space",
            with(review(), "feedback_id", json!("a b")),
            "feedback_id: contains U+0020",
        ),
        (
            "missing customer_id",
            remove(review(), "customer_id"),
            "customer_id: required",
        ),
        (
            "customer_id with newline",
            with(review(), "customer_id", json!("c\n1")),
            "customer_id: contains U+000A",
        ),
        ("missing kind", remove(review(), "kind"), "kind: required"),
        (
            "unknown kind",
            with(review(), "kind", json!("tweet")),
            "kind: unknown value \"tweet\" (expected one of: review, survey, ticket)",
        ),
        (
            "kind wrong type",
            with(review(), "kind", json!(["review"])),
            "kind: expected a string, got array",
        ),
        (
            "missing occurred_at",
            remove(review(), "occurred_at"),
            "occurred_at: required",
        ),
        (
            "occurred_at not rfc3339",
            with(review(), "occurred_at", json!("2026-11-20 09:30")),
            "occurred_at: not RFC 3339",
        ),
        (
            "occurred_at epoch number",
            with(review(), "occurred_at", json!(1700000000)),
            "occurred_at: expected a string, got number",
        ),
        (
            "occurred_at far future",
            with(review(), "occurred_at", json!("2099-01-01T00:00:00Z")),
            "occurred_at: 2099-01-01T00:00:00Z is more than 24h in the future",
        ),
        (
            "occurred_at ancient",
            with(review(), "occurred_at", json!("1970-01-01T00:00:00Z")),
            "occurred_at: 1970-01-01T00:00:00Z is before 2000-01-01",
        ),
        (
            "text wrong type",
            with(review(), "text", json!(5)),
            "text: expected a string, got number",
        ),
        (
            "text too long",
            with(review(), "text", long(10_001)),
            "text: 10001 characters, over the 10000 limit",
        ),
        (
            "text with NUL",
            with(review(), "text", json!("bad\u{0}text")),
            "text: contains control character U+0000 at character 3",
        ),
        (
            "text with ESC",
            with(review(), "text", json!("\u{1b}[31mred")),
            "text: contains control character U+001B at character 0",
        ),
        (
            "text with C1 control",
            with(review(), "text", json!("a\u{85}b")),
            "text: contains control character U+0085 at character 1",
        ),
        (
            "review without text or rating",
            with(remove_v(review(), "rating"), "text", json!("")),
            "text: a review needs text or a rating",
        ),
        (
            "rating too high",
            with(review(), "rating", json!(6)),
            "rating: 6 is outside 1..=5",
        ),
        (
            "rating zero",
            with(review(), "rating", json!(0)),
            "rating: 0 is outside 1..=5",
        ),
        (
            "rating fractional",
            with(review(), "rating", json!(4.5)),
            "rating: expected an integer, got 4.5",
        ),
        (
            "rating as string",
            with(review(), "rating", json!("5")),
            "rating: expected an integer, got string",
        ),
        (
            "nps on a review",
            with(review(), "nps_score", json!(9)),
            "nps_score: only allowed when kind is survey",
        ),
        (
            "nps too high",
            with(survey(), "nps_score", json!(11)),
            "nps_score: 11 is outside 0..=10",
        ),
        (
            "nps negative",
            with(survey(), "nps_score", json!(-1)),
            "nps_score: -1 is outside 0..=10",
        ),
        (
            "csat too high",
            with(survey(), "csat", json!(6)),
            "csat: 6 is outside 1..=5",
        ),
        (
            "survey without scores",
            remove(remove_v(survey(), "csat"), "nps_score"),
            "nps_score: a survey needs nps_score and/or csat",
        ),
        (
            "ticket_id on a survey",
            with(survey(), "ticket_id", json!("T")),
            "ticket_id: only allowed when kind is ticket",
        ),
        (
            "ticket without ticket_id",
            remove(ticket(), "ticket_id"),
            "ticket_id: required",
        ),
        (
            "ticket without status",
            remove(ticket(), "status"),
            "status: required",
        ),
        (
            "ticket bad status",
            with(ticket(), "status", json!("done")),
            "status: unknown value \"done\" (expected one of: open, pending, solved, closed)",
        ),
        (
            "ticket bad priority",
            with(ticket(), "priority", json!("p1")),
            "priority: unknown value \"p1\"",
        ),
        (
            "ticket without text or subject",
            with(remove_v(ticket(), "subject"), "text", json!("")),
            "text: a ticket needs text or a subject",
        ),
        (
            "unknown top-level field",
            with(review(), "nps", json!(9)),
            "nps: unknown field",
        ),
        (
            "unsupported schema",
            with(review(), "schema", json!("feedloop.feedback/v2")),
            "schema: unsupported schema \"feedloop.feedback/v2\"",
        ),
        (
            "unknown channel",
            with(review(), "channel", json!("pigeon")),
            "channel: unknown value \"pigeon\"",
        ),
        (
            "empty source",
            with(review(), "source", json!("")),
            "source: must not be empty",
        ),
        (
            "bad locale",
            with(review(), "locale", json!("english")),
            "locale: \"english\" is not a BCP 47 language tag",
        ),
        (
            "customer not object",
            with(review(), "customer", json!("ada")),
            "customer: expected an object, got string",
        ),
        (
            "customer unknown field",
            with(review(), "customer.age", json!(40)),
            "customer.age: unknown field",
        ),
        (
            "bad email",
            with(review(), "customer.email", json!("ada.example.com")),
            "customer.email: is not an e-mail address",
        ),
        (
            "bad phone",
            with(review(), "customer.phone", json!("0800 123")),
            "customer.phone: is not an E.164 number",
        ),
        (
            "bad timezone",
            with(review(), "customer.timezone", json!("Mars/Olympus")),
            "customer.timezone: unknown time zone \"Mars/Olympus\"",
        ),
        (
            "bad preferred channel",
            with(review(), "customer.preferred_channel", json!("fax")),
            "customer.preferred_channel: unknown value \"fax\"",
        ),
        (
            "consent not boolean",
            with(review(), "customer.consent.email", json!("yes")),
            "customer.consent.email: expected a boolean, got string",
        ),
        (
            "consent unknown channel",
            with(review(), "customer.consent.fax", json!(true)),
            "customer.consent.fax: unknown channel",
        ),
        (
            "metadata not object",
            with(review(), "metadata", json!([1])),
            "metadata: expected an object, got array",
        ),
        (
            "metadata nested",
            with(review(), "metadata.deep", json!({"a": 1})),
            "metadata.deep: expected a string, number or boolean, got object",
        ),
        (
            "metadata bad key",
            with(review(), "metadata.bad key", json!("v")),
            "metadata.bad key: key must be 1..=64 characters",
        ),
        (
            "metadata long value",
            with(review(), "metadata.note", long(257)),
            "metadata.note: 257 characters, over the 256 limit",
        ),
        (
            "metadata too many",
            with(
                review(),
                "metadata",
                Value::Object((0..33).map(|i| (format!("k{i}"), json!(i))).collect()),
            ),
            "metadata: 33 entries, over the 32 limit",
        ),
        (
            "sns without message",
            br#"{"Type": "Notification", "MessageId": "m"}"#.to_vec(),
            "SNS notification has no string Message",
        ),
        (
            "sns message not json",
            br#"{"Type": "Notification", "Message": "hi there"}"#.to_vec(),
            "not valid JSON: SNS Message: expected value",
        ),
        (
            "eventbridge detail invalid",
            json!({"detail-type": "x", "detail": {"kind": "review"}})
                .to_string()
                .into_bytes(),
            "feedback_id: required",
        ),
    ];
    assert!(cases.len() >= 40);
    let mut names = std::collections::HashSet::new();
    for (name, input, want) in &cases {
        assert!(names.insert(*name), "duplicate case name {name}");
        match parse_envelope(input, now()) {
            Ok(p) => panic!("case {name:?}: accepted {:?}", p.feedback),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(want),
                    "case {name:?}: expected {want:?} in {text:?}"
                );
                if let EnvelopeError::Invalid(problems) = &e {
                    assert!(
                        !problems.is_empty(),
                        "case {name:?}: invalid without problems"
                    );
                }
            }
        }
    }
}

fn remove_v(base: Value, key: &str) -> Value {
    serde_json::from_slice(&remove(base, key)).unwrap()
}

#[test]
fn a_rejected_address_or_number_is_named_by_its_field_never_quoted() {
    // GIVEN a customer block with a malformed e-mail and phone number
    let mut v = review();
    v["customer"]["email"] = json!("ada.lovelace-at-example.com");
    v["customer"]["phone"] = json!("call 0207 ask for Ada");

    // WHEN it is parsed
    let err = parse_envelope(v.to_string().as_bytes(), now()).unwrap_err();

    // THEN the reason names the fields and the rules, and holds neither value
    let reason = err.to_string();
    assert!(
        reason.contains("customer.email: is not an e-mail address"),
        "{reason}"
    );
    assert!(
        reason.contains("customer.phone: is not an E.164 number"),
        "{reason}"
    );
    assert!(
        !reason.contains("ada.lovelace") && !reason.contains("0207"),
        "{reason}"
    );
}

#[test]
fn a_flood_of_problems_makes_a_bounded_reason() {
    // GIVEN an envelope (within the size limit) with 2,000 unknown keys and a 5,000-character one
    let mut v = review();
    let obj = v.as_object_mut().unwrap();
    for i in 0..2000 {
        obj.insert(format!("unexpected_key_{i:05}"), json!(i));
    }
    obj.insert("k".repeat(5000), json!(1));

    // WHEN it is parsed
    let err = parse_envelope(v.to_string().as_bytes(), now()).unwrap_err();

    // THEN every problem is kept for the caller but the reason stays within 1 KiB
    assert_eq!(err.problems().len(), 2001, "{err}");
    let reason = err.to_string();
    assert!(
        reason.len() <= 1024 + "envelope is invalid: ".len(),
        "{}",
        reason.len()
    );
    assert!(reason.ends_with("more problems"), "{reason}");
    assert!(err.problems().iter().all(|p| p.path.chars().count() <= 101));
}

#[test]
fn a_rejected_wrapped_envelope_still_names_its_customer_for_erasure() {
    use feedloop_core::envelope::customer_hint;
    // GIVEN invalid envelopes (NPS 42) bare, in an SNS notification and in an EventBridge event
    let bad = json!({"feedback_id": "fb-9", "customer_id": "cust-7", "kind": "survey",
                     "occurred_at": "2026-11-20T09:30:00Z", "nps_score": 42});
    let sns = json!({"Type": "Notification", "MessageId": "m", "Message": bad.to_string()});
    let eb = json!({"version": "0", "detail-type": "feedback", "source": "shop", "detail": bad});
    for body in [bad.to_string(), sns.to_string(), eb.to_string()] {
        // WHEN parsing fails
        assert!(parse_envelope(body.as_bytes(), now()).is_err());
        // THEN the customer pointer is still found
        assert_eq!(
            customer_hint(body.as_bytes())
                .map(|c| c.to_string())
                .as_deref(),
            Some("cust-7"),
            "{body}"
        );
    }
    // AND a body without a usable id gives none
    assert_eq!(customer_hint(b"{\"customer_id\": \"\"}"), None);
    assert_eq!(customer_hint(b"not json"), None);
}
