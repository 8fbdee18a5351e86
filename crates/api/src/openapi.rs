//! The OpenAPI 3.1 document of the HTTP API, generated from the query service's view
//! types (their JSON Schemas, 2020-12, as OpenAPI 3.1 uses) and the route list below.
//! Served at `GET /openapi.json` and committed as `docs/openapi.json`; a test fails
//! when the two disagree.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::queries::*;
use feedloop_core::records::FeedbackRecord;
use feedloop_kit::ports::followup::AttemptRecord;

/// The error body every route answers with on failure.
#[derive(serde::Serialize, JsonSchema)]
#[allow(dead_code)] // only its schema is used: the router builds the body
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, JsonSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Stable, for programs: `invalid_limit`, `customer_not_found`, `unavailable`, ...
    code: String,
    /// For people; never an internal error's text.
    message: String,
}

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    params: &'static [(&'static str, &'static str, &'static str)],
    answer: Option<Value>,
    html: bool,
}

fn param(name: &str, place: &str, description: &str) -> Value {
    let schema = match name {
        "limit" => {
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
        }
        "from" | "to" => json!({"type": "string", "format": "date"}),
        "granularity" => json!({"type": "string", "enum": ["day", "week"], "default": "day"}),
        "segment" => {
            json!({"type": "string", "enum": feedloop_core::profile::Segment::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
        }
        "email" | "sms" | "phone" => json!({"type": "string", "enum": ["on", "off"]}),
        _ => json!({"type": "string"}),
    };
    json!({"name": name, "in": place, "required": place == "path", "description": description, "schema": schema})
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Option<Value> {
    Some(g.subschema_for::<T>().to_value())
}

const PAGE: &[(&str, &str, &str)] = &[
    ("id", "path", "customer id (`/` as `%2F`)"),
    ("limit", "query", "page size"),
    ("cursor", "query", "`next_cursor` of the previous page"),
];
const RANGE: &[(&str, &str, &str)] = &[
    ("from", "query", "first day (default: 29 days before `to`)"),
    (
        "to",
        "query",
        "last day (default: today, UTC); at most 366 days",
    ),
];

const NPS: &[(&str, &str, &str)] = &[RANGE[0], RANGE[1], ("granularity", "query", "day or week")];

/// The whole document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .for_serialize()
        .into_generator();
    let id = &[("id", "path", "customer id (`/` as `%2F`)")];
    let routes = [
        Route { method: "get", path: "/customers/{id}", summary: "A customer's profile and what is derived from it", params: id, answer: schema::<CustomerView>(&mut g), html: false },
        Route { method: "delete", path: "/customers/{id}", summary: "GDPR erase: everything stored under the customer; salted hashes kept for suppression", params: id, answer: schema::<ErasureView>(&mut g), html: false },
        Route { method: "get", path: "/customers/{id}/feedback", summary: "Feedback history, newest first", params: PAGE, answer: schema::<HistoryPage<FeedbackRecord>>(&mut g), html: false },
        Route { method: "get", path: "/customers/{id}/followups", summary: "Follow-up attempts, newest first", params: PAGE, answer: schema::<HistoryPage<AttemptRecord>>(&mut g), html: false },
        Route { method: "put", path: "/customers/{id}/consent", summary: "Record a consent statement (staff)", params: &[("id", "path", "customer id"), ("email", "query", "e-mail consent"), ("sms", "query", "SMS consent"), ("phone", "query", "phone consent"), ("source", "query", "who or where (default staff)")], answer: schema::<ConsentView>(&mut g), html: false },
        Route { method: "get", path: "/segments/{segment}", summary: "Customers in a segment, highest churn risk first", params: &[("segment", "path", "segment name"), ("limit", "query", "page size"), ("cursor", "query", "`next_cursor` of the previous page")], answer: schema::<SegmentPage>(&mut g), html: false },
        Route { method: "get", path: "/reports/nps", summary: "NPS per day or ISO week from the day aggregates", params: NPS, answer: schema::<NpsReport>(&mut g), html: false },
        Route { method: "get", path: "/reports/drivers", summary: "Theme impact on NPS over the range", params: RANGE, answer: schema::<DriversReport>(&mut g), html: false },
        Route { method: "get", path: "/reports/followups", summary: "A/B counters per playbook variant", params: &[], answer: schema::<FollowUpReport>(&mut g), html: false },
        Route { method: "get", path: "/dashboard", summary: "The dashboard page (last 30 days)", params: &[], answer: None, html: true },
        Route { method: "get", path: "/unsubscribe", summary: "Public: the opt-out link's confirm page (changes nothing)", params: &[("token", "query", "signed opt-out token")], answer: None, html: true },
        Route { method: "post", path: "/unsubscribe", summary: "Public: one-click opt-out (RFC 8058)", params: &[("token", "query", "signed opt-out token")], answer: None, html: true },
        Route { method: "get", path: "/openapi.json", summary: "This document", params: &[], answer: Some(json!({"type": "object"})), html: false },
    ];
    let error = g.subschema_for::<ErrorBody>().to_value();
    let mut paths = Map::new();
    for r in routes {
        let ok = match (&r.answer, r.html) {
            (_, true) => {
                json!({"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}})
            }
            (Some(s), _) => {
                json!({"description": "OK", "content": {"application/json": {"schema": s}}})
            }
            (None, _) => json!({"description": "OK"}),
        };
        let err = json!({"description": "error with a stable code", "content": {"application/json": {"schema": error}}});
        let op = json!({
            "summary": r.summary,
            "parameters": r.params.iter().map(|(n, p, d)| param(n, p, d)).collect::<Vec<_>>(),
            "responses": {"200": ok, "400": err.clone(), "404": err.clone(), "500": err.clone(), "503": err},
        });
        paths
            .entry(r.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(r.method.to_owned(), op));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "feedloop API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Profiles, histories, segments, NPS and driver reports, erase and consent. Every route but /unsubscribe needs IAM authorization (SigV4).",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": g.take_definitions(true)},
    })
}
