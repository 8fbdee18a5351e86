//! The shipped HTTP API sample events (events/api-*.json, payload 2.0 as API Gateway
//! sends them) through the Lambda adapter and the routes, on the in-memory store.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use feedloop_api::Api;
use feedloop_ingest::{Ingest, Settings};
use feedloop_memory::MemoryStore;
use lambda_http::Body;
use serde_json::Value;

fn event(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn call(api: &Api<MemoryStore>, raw: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(raw).expect("a valid HTTP API v2 event");
    let resp = feedloop_api_fn::respond(api, req).await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = match resp.into_body() {
        Body::Text(t) => t,
        other => panic!("text body expected, got {other:?}"),
    };
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn sample_events_run_through_the_adapter() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let store = MemoryStore::default();
    let ingest = Ingest::lexicon(store.clone(), Arc::new(move || now)).with_settings(Settings {
        aggregate_shards: 2,
        max_concurrency: 2,
        ..Settings::local(30.0)
    });
    for (i, score) in [3, 1, 2].iter().enumerate() {
        let body = format!(
            r#"{{"feedback_id":"f{i}","customer_id":"cust-042","kind":"survey","occurred_at":"2026-11-{:02}T10:00:00Z","nps_score":{score},"text":"Delivery is always late."}}"#,
            10 + i
        );
        ingest.process(&format!("m{i}"), &body).await.unwrap();
    }
    let api = Api {
        store,
        keys: feedloop_core::keys::StackKeys::derive("events-test-secret-0123456789abcdef")
            .unwrap(),
        clock: Arc::new(move || now),
    };

    let (status, v) = call(&api, &event("api-get-customer.json")).await;
    assert_eq!((status, v["customer_id"].as_str()), (200, Some("cust-042")));
    assert_eq!(v["profile"]["feedback_count"], 3);

    let (status, v) = call(&api, &event("api-get-feedback.json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        2,
        "limit=2 from the query string"
    );
    assert_eq!(v["items"][0]["feedback_id"], "f2", "newest first");
    assert!(v["next_cursor"].is_string());

    let (status, v) = call(&api, &event("api-get-segment.json")).await;
    assert_eq!((status, v["segment"].as_str()), (200, Some("at_risk")));

    let (status, v) = call(&api, &event("api-get-nps.json")).await;
    assert_eq!((status, v["granularity"].as_str()), (200, Some("week")));
    assert_eq!(v["responses"]["detractors"], 3);

    // An id with a slash arrives percent-encoded in rawPath.
    let encoded = event("api-get-customer.json").replace("/customers/cust-042", "/customers/a%2Fb");
    let (status, v) = call(&api, &encoded).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("customer_not_found"))
    );

    // The mail client's one-click POST (RFC 8058): public route, form body, signed token.
    // The sample holds a placeholder; a real link's token is issued by the dispatcher.
    let token = feedloop_core::followup::unsubscribe::issue(
        &api.keys.unsubscribe_key,
        &feedloop_core::followup::unsubscribe::OptOut {
            customer_id: "cust-042".into(),
            channel: feedloop_core::followup::ContactChannel::Email,
            expires: now + chrono::Duration::days(1),
        },
    );
    let raw = event("api-unsubscribe-post.json").replace("TOKEN", &token);
    let req = lambda_http::request::from_str(&raw).expect("a valid HTTP API v2 event");
    let resp = feedloop_api_fn::respond(&api, req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_html(&resp);
    let (_, v) = call(&api, &event("api-get-customer.json")).await;
    assert_eq!(v["profile"]["consent"]["email"]["value"], false, "{v}");
    assert_eq!(
        v["profile"]["consent"]["email"]["feedback_id"],
        "consent:unsubscribe-link"
    );

    let erase = lambda_http::request::from_str(&event("api-delete-customer.json")).unwrap();
    assert_eq!(
        feedloop_api_fn::caller(&erase),
        "arn:aws:iam::123456789012:user/analyst",
        "an erasure is logged with who asked for it"
    );
    let (status, v) = call(&api, &event("api-delete-customer.json")).await;
    assert_eq!((status, v["deleted"]["feedback"].as_u64()), (200, Some(3)));
    let (status, _) = call(&api, &event("api-get-customer.json")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_unsubscribe_function_answers_its_route_and_nothing_else() {
    let api = Api {
        store: MemoryStore::default(),
        keys: feedloop_core::keys::StackKeys::derive("events-test-secret-0123456789abcdef")
            .unwrap(),
        clock: Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()),
    };
    for name in ["api-get-customer.json", "api-delete-customer.json"] {
        let req = lambda_http::request::from_str(&event(name)).unwrap();
        let resp = feedloop_api_fn::respond_public(&api, req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{name}");
    }
    let req = lambda_http::request::from_str(&event("api-unsubscribe-post.json")).unwrap();
    let resp = feedloop_api_fn::respond_public(&api, req).await.unwrap();
    assert_ne!(resp.status().as_u16(), 404);
    assert_html(&resp);
}

fn assert_html<B>(resp: &lambda_http::http::Response<B>) {
    let kind = resp.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/html"), "{kind}");
}
