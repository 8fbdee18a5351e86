//! Shared helpers for the cross-crate integration tests.

pub mod compare;
pub mod faults;
pub mod harness;

use std::path::PathBuf;

/// Where the labelled eval sets live: `$FEEDLOOP_EVAL_DIR`, else `../shared/eval` next
/// to the workspace (the layout of the development machines and CI).
pub fn eval_dir() -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("FEEDLOOP_EVAL_DIR").map(PathBuf::from),
        Some(workspace.join("../shared/eval")),
        Some(PathBuf::from("/work/shared/eval")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("sentiment").is_dir())
}

pub fn load_records(path: &std::path::Path) -> Vec<feedloop_core::eval::Record> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("eval rows follow the documented shape"))
        .collect()
}

/// The tests' generator: the one the demo uses too.
pub use feedloop_kit::rng::Rng;

const TEXTS: &[&str] = &[
    "The parcel never arrived and nobody answered my emails.",
    "Lovely staff and really quick service!",
    "I was charged twice for the same order.",
    "The app keeps crashing at checkout.",
    "Great value, will come back.",
    "Refund still not processed after three weeks.",
    "Okay I guess.",
    "",
];

/// `n` valid envelopes for `customers` customers, deterministic for a seed. The
/// clock for validation is 2026-11-24; every `occurred_at` is before it.
pub fn envelopes(n: usize, customers: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let c = rng.below(customers as u64);
            let day = 1 + rng.below(28);
            let hour = rng.below(24);
            let text = TEXTS[rng.below(TEXTS.len() as u64) as usize];
            let base = format!(
                r#""feedback_id":"fb-{seed}-{i}","customer_id":"cust-{c:04}","occurred_at":"2026-10-{day:02}T{hour:02}:{:02}:00Z","text":"{text}""#,
                rng.below(60)
            );
            match rng.below(3) {
                0 => format!(r#"{{{base},"kind":"survey","nps_score":{}}}"#, rng.below(11)),
                1 => format!(r#"{{{base},"kind":"review","rating":{}}}"#, 1 + rng.below(5)),
                _ => format!(
                    r#"{{{base},"kind":"ticket","ticket_id":"T-{c}-{}","status":"{}","priority":"{}","subject":"Help"}}"#,
                    rng.below(3),
                    ["open", "pending", "solved", "closed"][rng.below(4) as usize],
                    ["low", "normal", "high", "urgent"][rng.below(4) as usize]
                ),
            }
        })
        .collect()
}

pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// The hybrid analyzer on the real encoder (`make test` fetches the model first; a
/// missing model fails with the instructions, it is not skipped).
pub fn hybrid_analyzer(
    taxonomy: feedloop_core::themes::Taxonomy,
) -> feedloop_core::analysis::Analyzer {
    use feedloop_core::analysis::Analyzer;
    use feedloop_core::sentiment::Mode;
    let dir = std::env::var_os("FEEDLOOP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2")
        });
    let model = feedloop_neural::BertEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    Analyzer::build(Mode::Hybrid, taxonomy, Some(std::sync::Arc::new(model)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A size or seed from the environment, `default` when unset or not a number.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The HTTP API as a client sees it, through the same handler the function runs.
pub mod http {
    use std::collections::HashMap;

    use feedloop_api::Api;
    use feedloop_kit::ports::query::QueryStore;
    use serde_json::Value;

    /// `GET path?q`: the status and the JSON body (`Null` when the body is not JSON).
    pub async fn get(api: &Api<impl QueryStore>, path: &str, q: &[(&str, &str)]) -> (u16, Value) {
        let q: HashMap<String, String> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = api.handle("GET", path, &q).await;
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    /// A cursor from one customer's feedback pages is refused for another customer's,
    /// and the cursor is handed back for more tampering.
    pub async fn assert_cursor_stays_with(
        api: &Api<impl QueryStore>,
        customer: &str,
        other: &str,
    ) -> String {
        let path = |c: &str| format!("/customers/{c}/feedback");
        let (_, page) = get(api, &path(customer), &[("limit", "2")]).await;
        let cursor = page["next_cursor"]
            .as_str()
            .expect("a second page")
            .to_owned();
        let (status, err) = get(api, &path(other), &[("cursor", &cursor)]).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_cursor"))
        );
        cursor
    }

    /// Every item of a paged list, `limit` a page, following `next_cursor` to the end;
    /// each page must answer 200.
    pub async fn all_pages(api: &Api<impl QueryStore>, path: &str, limit: &str) -> Vec<Value> {
        let (mut items, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let mut q = vec![("limit", limit)];
            if let Some(c) = &cursor {
                q.push(("cursor", c.as_str()));
            }
            let (status, page) = get(api, path, &q).await;
            assert_eq!(status, 200, "{path}: {page}");
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }
}

/// A fresh folder under the system's temporary directory for one test's files, named
/// after the test and this process so parallel runs do not meet.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedloop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}
