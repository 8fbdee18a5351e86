//! The embedded demo: a deterministic small business (an online shop with a café
//! counter) with 40 customers and ~250 pieces of feedback over 90 days.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// The business the demo's follow-ups speak for.
pub const COMPANY: &str = "Bean There Coffee";

/// The demo's clock. Fixed so every run prints the same report.
pub fn demo_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .expect("valid date")
}

/// The envelopes as named messages, the way the replay takes them.
pub fn messages(envelopes: &[Value]) -> Vec<(String, String)> {
    envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("demo message {}", i + 1), e.to_string()))
        .collect()
}

use feedloop_kit::rng::Rng;

#[derive(Clone, Copy, PartialEq)]
enum Persona {
    Delighted,
    DeliveryPain,
    BillingPain,
    AppPain,
    Lukewarm,
    Mixed,
    Newcomer,
}

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Arun", "Bea", "Carlos", "Dana", "Emil", "Fatima", "Gus",
    "Hana", "Ivan", "Jade", "Kofi", "Lena", "Marco", "Nora",
];
const LAST: &[&str] = &[
    "Okafor", "Smith", "Nguyen", "Garcia", "Kowalski", "Haddad", "Brown", "Rossi", "Tanaka",
    "Murphy",
];

fn texts(p: Persona) -> (&'static [&'static str], &'static [&'static str]) {
    // (review/survey texts, ticket texts)
    match p {
        Persona::Delighted => (
            &[
                "Lovely staff and really quick service, thank you!",
                "Great value for money, the quality is excellent.",
                "Absolutely love the new blend, the quality is superb.",
                "The team went above and beyond to help me. Highly recommend!",
                "Always friendly, always fresh. Best coffee in town!",
                "Easy to order online, simple and perfect.",
            ],
            &["Quick question about changing my delivery address, no rush."],
        ),
        Persona::DeliveryPain => (
            &[
                "My parcel never arrived and nobody called me back.",
                "Delivery was late again. Third time this month.",
                "The package was damaged and the courier just left it at the door.",
                "Still waiting for my order, the tracking number doesn't work.",
                "Coffee is good but the shipping is painfully slow.",
                "Delivery took forever, I'm thinking of going elsewhere.",
                // Plain factual complaints: no sentiment word for a lexicon to find.
                "Delivery is always late.",
                "The parcel never arrived and nobody answered my emails. The staff in the shop were lovely though.",
            ],
            &[
                "Where is my parcel? It has been 10 days.",
                "Order arrived damaged, I need a replacement.",
                "Tracking shows delivered but nothing arrived.",
            ],
        ),
        Persona::BillingPain => (
            &[
                "I was charged twice for the same order and still no refund.",
                "The subscription renewed without warning. Not happy.",
                "Refund took three weeks, unacceptable.",
                "Billing is a mess, the invoice was wrong again.",
                "Products are nice but I was overcharged on my card.",
            ],
            &[
                "Charged twice for order 5521, please refund.",
                "Cancel my subscription and refund the last payment.",
                "Invoice shows the wrong amount.",
            ],
        ),
        Persona::AppPain => (
            &[
                "The app keeps crashing at checkout.",
                "I still can't log in after the password reset.",
                "Website is confusing and the coupon didn't work.",
                "Ordering on the app is slow and buggy, but the coffee is great.",
                "The new update is terrible, I can't find my past orders.",
                "Checkout took three attempts before the order went through.",
            ],
            &[
                "I can't log in to my account.",
                "App crashes when I try to pay.",
                "Coupon code is not working at checkout.",
            ],
        ),
        Persona::Lukewarm => (
            &[
                "It's fine. A bit expensive for what it is.",
                "Okay coffee, nothing special.",
                "Decent selection but the size I wanted was out of stock.",
                "Good enough, prices went up recently though.",
                "Service was okay, the shop was a little crowded.",
            ],
            &["Is the large size back in stock soon?"],
        ),
        Persona::Mixed => (
            &[
                "Staff were friendly but the wait was way too long.",
                "Great pastries, but the queue was ridiculous.",
                "Lovely atmosphere, although we waited 30 minutes for a table.",
                "Nice people, slow service.",
            ],
            &["Booked a table but had to wait 40 minutes, please look into it."],
        ),
        Persona::Newcomer => (
            &[
                "First visit, really nice place and friendly team!",
                "Tried you for the first time, good coffee.",
            ],
            &[],
        ),
    }
}

fn nps_for(p: Persona, rng: &mut Rng) -> u8 {
    match p {
        Persona::Delighted => rng.between(9, 10),
        Persona::DeliveryPain | Persona::BillingPain => rng.between(0, 6),
        Persona::AppPain => rng.between(3, 8),
        Persona::Lukewarm => rng.between(6, 8),
        Persona::Mixed => rng.between(6, 9),
        Persona::Newcomer => rng.between(8, 10),
    }
}

fn rating_for(p: Persona, rng: &mut Rng) -> u8 {
    match p {
        Persona::Delighted | Persona::Newcomer => rng.between(4, 5),
        Persona::DeliveryPain | Persona::BillingPain => rng.between(1, 2),
        Persona::AppPain | Persona::Mixed => rng.between(2, 4),
        Persona::Lukewarm => 3,
    }
}

/// Customers of the shop's European stores, writing in their own languages: the
/// multilingual encoder scores them and their themes count among the NPS drivers.
const EUROPEAN: &[(&str, &str, &str, i64)] = &[
    (
        "cust-041",
        "de",
        "Die Lieferung hat drei Wochen gedauert und der Kundenservice hat nie geantwortet.",
        2,
    ),
    (
        "cust-041",
        "de",
        "Das Paket kam beschädigt an und auf meine Beschwerde reagiert niemand. Sehr enttäuschend.",
        1,
    ),
    (
        "cust-042",
        "fr",
        "Service impeccable, livraison rapide et un personnel très aimable. Je recommande !",
        10,
    ),
    (
        "cust-043",
        "fr",
        "Les prix ont beaucoup augmenté et l'application plante sans arrêt.",
        4,
    ),
    (
        "cust-044",
        "es",
        "Me encantó la atención, el pedido llegó antes de lo previsto.",
        9,
    ),
    (
        "cust-045",
        "es",
        "El producto está bien, pero el envío fue muy lento y nadie me avisó.",
        6,
    ),
];

fn european(now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    EUROPEAN
        .iter()
        .enumerate()
        .map(|(i, (customer_id, lang, text, nps))| {
            json!({"schema": "feedloop.feedback/v1", "feedback_id": format!("{customer_id}-{lang}-{i}"),
                   "customer_id": customer_id, "kind": "survey", "channel": "email", "source": "demo",
                   "occurred_at": (now - Duration::days(3 + i as i64)).to_rfc3339(),
                   "nps_score": nps, "question": "How likely are you to recommend us to a friend?",
                   "text": text})
        })
        .collect()
}

/// The demo envelopes, one JSON value each, in arrival order.
pub fn envelopes() -> Vec<Value> {
    let mut rng = Rng(0xfeed_100b);
    let now = demo_now();
    let personas = [
        (Persona::Delighted, 12),
        (Persona::DeliveryPain, 7),
        (Persona::BillingPain, 4),
        (Persona::AppPain, 4),
        (Persona::Lukewarm, 6),
        (Persona::Mixed, 4),
        (Persona::Newcomer, 3),
    ];
    let mut out = Vec::new();
    let mut n = 0usize;
    let mut ticket_no = 1000;
    for (persona, count) in personas {
        for _ in 0..count {
            let who = Contact::nth(n);
            n += 1;
            let feedbacks = if persona == Persona::Newcomer {
                1
            } else {
                5 + rng.index(4)
            };
            for k in 0..feedbacks {
                out.push(feedback(&mut rng, persona, &who, k, now, &mut ticket_no));
            }
        }
    }
    // Real queues also carry these: a re-delivery, non-English feedback, and two bad
    // messages that must be rejected with a reason rather than dropped.
    let redelivered = out[3].clone();
    out.push(redelivered);
    out.push(
        json!({"feedback_id": "cust-007-de", "customer_id": "cust-007", "kind": "review",
        "occurred_at": (now - Duration::days(2)).to_rfc3339(), "rating": 2, "channel": "web",
        "text": "Die Lieferung kam zu spät und niemand hat auf meine E-Mails geantwortet."}),
    );
    out.extend(european(now));
    out.push(
        json!({"feedback_id": "bad-1", "customer_id": "cust-002", "kind": "survey",
        "occurred_at": (now - Duration::days(1)).to_rfc3339(), "nps_score": 11}),
    );
    out.push(json!({"feedback_id": "bad-2", "customer_id": "cust-003", "kind": "tweet", "occurred_at": "last tuesday"}));
    out
}

/// The n-th demo customer.
struct Contact {
    customer_id: String,
    name: String,
    email: String,
    tz: &'static str,
}

impl Contact {
    fn nth(n: usize) -> Contact {
        let (first, last) = (FIRST[n % FIRST.len()], LAST[n % LAST.len()]);
        Contact {
            customer_id: format!("cust-{:03}", n + 1),
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            tz: [
                "Europe/London",
                "Europe/Berlin",
                "America/New_York",
                "Asia/Singapore",
            ][n % 4],
        }
    }
}

/// One of a customer's feedbacks: a review, a survey answer or a ticket.
fn feedback(
    rng: &mut Rng,
    persona: Persona,
    who: &Contact,
    k: usize,
    now: DateTime<Utc>,
    ticket_no: &mut u32,
) -> Value {
    let (words, tickets) = texts(persona);
    let days_ago = rng.index(90) as i64;
    let at = now - Duration::days(days_ago) - Duration::minutes(rng.index(600) as i64);
    let customer = json!({"name": who.name, "email": who.email, "timezone": who.tz, "preferred_channel": "email",
                          "consent": {"email": persona != Persona::BillingPain, "sms": false}});
    let mut e = json!({"schema": "feedloop.feedback/v1", "feedback_id": format!("{}-{k}", who.customer_id),
                       "customer_id": who.customer_id, "occurred_at": at.to_rfc3339(), "source": "demo",
                       "customer": customer});
    let roll = rng.index(10);
    let obj = e.as_object_mut().expect("object literal");
    if persona == Persona::Newcomer || roll < 3 {
        review(obj, rng, persona, words);
    } else if roll < 8 || tickets.is_empty() {
        survey(obj, rng, persona, words);
    } else {
        *ticket_no += 1;
        ticket(obj, rng, persona, tickets, *ticket_no, days_ago);
    }
    e
}

fn review(obj: &mut Map<String, Value>, rng: &mut Rng, persona: Persona, words: &[&str]) {
    obj.insert("kind".into(), json!("review"));
    obj.insert("channel".into(), json!("web"));
    obj.insert("text".into(), json!(rng.pick(words)));
    obj.insert("rating".into(), json!(rating_for(persona, rng)));
    obj.insert(
        "product_id".into(),
        json!(format!("sku-{}", 100 + rng.index(8))),
    );
}

fn survey(obj: &mut Map<String, Value>, rng: &mut Rng, persona: Persona, words: &[&str]) {
    obj.insert("kind".into(), json!("survey"));
    obj.insert("channel".into(), json!("email"));
    obj.insert("nps_score".into(), json!(nps_for(persona, rng)));
    obj.insert(
        "question".into(),
        json!("How likely are you to recommend us to a friend?"),
    );
    // A fifth of respondents leave the comment box empty.
    if rng.index(5) > 0 {
        obj.insert("text".into(), json!(rng.pick(words)));
    }
    if rng.index(3) == 0 {
        let csat = match persona {
            Persona::Delighted | Persona::Newcomer => rng.between(4, 5),
            Persona::DeliveryPain | Persona::BillingPain => rng.between(1, 2),
            _ => rng.between(2, 4),
        };
        obj.insert("csat".into(), json!(csat));
    }
}

fn ticket(
    obj: &mut Map<String, Value>,
    rng: &mut Rng,
    persona: Persona,
    tickets: &[&str],
    ticket_no: u32,
    days_ago: i64,
) {
    let urgent = matches!(persona, Persona::BillingPain | Persona::DeliveryPain);
    obj.insert("kind".into(), json!("ticket"));
    obj.insert("channel".into(), json!("email"));
    obj.insert("text".into(), json!(rng.pick(tickets)));
    obj.insert("ticket_id".into(), json!(format!("T-{ticket_no}")));
    let status = if days_ago > 20 {
        "solved"
    } else {
        ["open", "pending"][rng.index(2)]
    };
    obj.insert("status".into(), json!(status));
    let priority = if urgent {
        ["high", "urgent"][rng.index(2)]
    } else {
        ["low", "normal"][rng.index(2)]
    };
    obj.insert("priority".into(), json!(priority));
    obj.insert("subject".into(), json!("Customer request"));
    let category = match persona {
        Persona::BillingPain => "billing",
        Persona::DeliveryPain => "delivery",
        Persona::AppPain => "app",
        _ => "general",
    };
    obj.insert("category".into(), json!(category));
}
