//! The OpenAPI 3.1 document of the HTTP API, generated from the query service's view
//! types (their JSON Schemas, 2020-12, as OpenAPI 3.1 uses) and the route table
//! (`routes::ROUTES`), the one the router dispatches on.
//! Served at `GET /openapi.json` and committed as `docs/openapi.json`; a test fails
//! when the two disagree.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::queries::*;
use crate::routes::{ok_response, ROUTES};

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

/// The whole document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .for_serialize()
        .into_generator();
    let error = g.subschema_for::<ErrorBody>().to_value();
    let mut paths = Map::new();
    for r in ROUTES {
        let ok = ok_response(r.answer, &mut g);
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
            .map(|m| m.insert(r.method.to_lowercase(), op));
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
