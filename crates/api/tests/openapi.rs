//! The committed `docs/openapi.json` is what the code generates, and it describes the
//! routes the router answers. Regenerate with
//! `FEEDLOOP_UPDATE_OPENAPI=1 cargo test -p feedloop-api --test openapi`.

use std::collections::HashMap;
use std::sync::Arc;

use feedloop_api::{openapi, Api};
use feedloop_memory::MemoryStore;
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&openapi::document()).unwrap() + "\n";
    if std::env::var_os("FEEDLOOP_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run FEEDLOOP_UPDATE_OPENAPI=1 cargo test -p feedloop-api --test openapi"
    );
}

#[tokio::test]
async fn every_documented_route_is_routed_and_every_view_is_described() {
    let doc = openapi::document();
    let api = Api {
        store: MemoryStore::default(),
        keys: feedloop_core::keys::StackKeys::derive(&"k".repeat(40)).unwrap(),
        clock: Arc::new(chrono::Utc::now),
    };
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "c1").replace("{segment}", "at_risk");
            let r = api
                .handle(&method.to_uppercase(), &concrete, &HashMap::new())
                .await;
            assert!(
                r.status != 404 || r.body.contains("customer_not_found"),
                "{method} {path} is documented but not routed: {}",
                r.body
            );
            assert_ne!(r.status, 405, "{method} {path}");
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for view in [
        "CustomerView",
        "SegmentPage",
        "NpsReport",
        "DriversReport",
        "FollowUpReport",
        "ErasureView",
        "ConsentView",
        "FeedbackRecord",
        "AttemptRecord",
        "Profile",
    ] {
        assert!(schemas.contains_key(view), "{view} missing from components");
    }
    // The customer view's required fields are the ones the struct always serialises.
    let required: Vec<&str> = schemas["CustomerView"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["customer_id", "segment", "churn_risk", "profile"] {
        assert!(required.contains(&f), "{required:?}");
    }

    let served = api.handle("GET", "/openapi.json", &HashMap::new()).await;
    assert_eq!(served.status, 200);
    assert_eq!(serde_json::from_str::<Value>(&served.body).unwrap(), doc);
}
