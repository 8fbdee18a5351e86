//! The one route table: the router dispatches on it, answers 405 for a known path
//! with another method from it, and the OpenAPI document is generated from it.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Value};

use crate::queries::*;
use feedloop_core::records::FeedbackRecord;
use feedloop_kit::ports::followup::AttemptRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Customer,
    Erase,
    Feedback,
    FollowUps,
    Consent,
    Segment,
    Nps,
    Drivers,
    FollowUpReport,
    Dashboard,
    UnsubscribePage,
    Unsubscribe,
    OpenApi,
}

/// A parameter: name, where (`path` or `query`), and what it is.
pub type Param = (&'static str, &'static str, &'static str);

/// What a route answers with on success.
#[derive(Clone, Copy)]
pub enum Answer {
    /// JSON of this schema.
    Json(fn(&mut SchemaGenerator) -> Value),
    /// Any JSON object (the OpenAPI document itself).
    Object,
    /// An HTML page.
    Html,
}

pub struct Route {
    pub endpoint: Endpoint,
    pub method: &'static str,
    /// `{name}` stands for one path segment.
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    pub answer: Answer,
}

impl Route {
    pub fn query_params(&self) -> Vec<&'static str> {
        self.params
            .iter()
            .filter(|p| p.1 == "query")
            .map(|p| p.0)
            .collect()
    }

    /// The path segments `{...}` stand for, or `None` if the path is not this one.
    fn captures<'a>(&self, parts: &[&'a str]) -> Option<Vec<&'a str>> {
        let pattern: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        if pattern.len() != parts.len() {
            return None;
        }
        let mut captured = Vec::new();
        for (want, got) in pattern.iter().zip(parts) {
            if want.starts_with('{') {
                captured.push(*got);
            } else if want != got {
                return None;
            }
        }
        Some(captured)
    }
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

const ID: &[Param] = &[("id", "path", "customer id (`/` as `%2F`)")];
const PAGE: &[Param] = &[
    ("id", "path", "customer id (`/` as `%2F`)"),
    ("limit", "query", "page size"),
    ("cursor", "query", "`next_cursor` of the previous page"),
];
const RANGE: &[Param] = &[
    ("from", "query", "first day (default: 29 days before `to`)"),
    (
        "to",
        "query",
        "last day (default: today, UTC); at most 366 days",
    ),
];
const NPS: &[Param] = &[RANGE[0], RANGE[1], ("granularity", "query", "day or week")];
const TOKEN: &[Param] = &[("token", "query", "signed opt-out token")];

#[rustfmt::skip] // one route per line reads as the table it is
pub const ROUTES: &[Route] = &[
    Route { endpoint: Endpoint::Customer, method: "GET", path: "/customers/{id}", summary: "A customer's profile and what is derived from it", params: ID, answer: Answer::Json(schema::<CustomerView>) },
    Route { endpoint: Endpoint::Erase, method: "DELETE", path: "/customers/{id}", summary: "GDPR erase: everything stored under the customer; salted hashes kept for suppression", params: ID, answer: Answer::Json(schema::<ErasureView>) },
    Route { endpoint: Endpoint::Feedback, method: "GET", path: "/customers/{id}/feedback", summary: "Feedback history, newest first", params: PAGE, answer: Answer::Json(schema::<HistoryPage<FeedbackRecord>>) },
    Route { endpoint: Endpoint::FollowUps, method: "GET", path: "/customers/{id}/followups", summary: "Follow-up attempts, newest first", params: PAGE, answer: Answer::Json(schema::<HistoryPage<AttemptRecord>>) },
    Route { endpoint: Endpoint::Consent, method: "PUT", path: "/customers/{id}/consent", summary: "Record a consent statement (staff)", params: &[("id", "path", "customer id"), ("email", "query", "e-mail consent"), ("sms", "query", "SMS consent"), ("phone", "query", "phone consent"), ("source", "query", "who or where (default staff)")], answer: Answer::Json(schema::<ConsentView>) },
    Route { endpoint: Endpoint::Segment, method: "GET", path: "/segments/{segment}", summary: "Customers in a segment, highest churn risk first", params: &[("segment", "path", "segment name"), ("limit", "query", "page size"), ("cursor", "query", "`next_cursor` of the previous page")], answer: Answer::Json(schema::<SegmentPage>) },
    Route { endpoint: Endpoint::Nps, method: "GET", path: "/reports/nps", summary: "NPS per day or ISO week from the day aggregates", params: NPS, answer: Answer::Json(schema::<NpsReport>) },
    Route { endpoint: Endpoint::Drivers, method: "GET", path: "/reports/drivers", summary: "Theme impact on NPS over the range", params: RANGE, answer: Answer::Json(schema::<DriversReport>) },
    Route { endpoint: Endpoint::FollowUpReport, method: "GET", path: "/reports/followups", summary: "A/B counters per playbook variant", params: &[], answer: Answer::Json(schema::<FollowUpReport>) },
    Route { endpoint: Endpoint::Dashboard, method: "GET", path: "/dashboard", summary: "The dashboard page (last 30 days)", params: &[], answer: Answer::Html },
    Route { endpoint: Endpoint::UnsubscribePage, method: "GET", path: "/unsubscribe", summary: "Public: the opt-out link's confirm page (changes nothing)", params: TOKEN, answer: Answer::Html },
    Route { endpoint: Endpoint::Unsubscribe, method: "POST", path: "/unsubscribe", summary: "Public: one-click opt-out (RFC 8058)", params: TOKEN, answer: Answer::Html },
    Route { endpoint: Endpoint::OpenApi, method: "GET", path: "/openapi.json", summary: "This document", params: &[], answer: Answer::Object },
];

/// Why no route answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The path is a route's, the method none of its.
    MethodNotAllowed,
    NotFound,
}

/// The route for `method` on the (decoded) path segments, and what its `{...}`
/// segments stand for.
pub fn resolve<'a>(
    method: &str,
    parts: &[&'a str],
) -> Result<(&'static Route, Vec<&'a str>), Miss> {
    let mut path_known = false;
    for route in ROUTES {
        if let Some(captured) = route.captures(parts) {
            if route.method == method {
                return Ok((route, captured));
            }
            path_known = true;
        }
    }
    Err(if path_known {
        Miss::MethodNotAllowed
    } else {
        Miss::NotFound
    })
}

/// The OpenAPI operation's 200 response.
pub fn ok_response(answer: Answer, g: &mut SchemaGenerator) -> Value {
    match answer {
        Answer::Html => {
            json!({"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
        Answer::Json(schema) => {
            json!({"description": "OK", "content": {"application/json": {"schema": schema(g)}}})
        }
        Answer::Object => {
            json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_their_route_or_say_why_not() {
        let (r, ids) = resolve("GET", &["customers", "c-1", "feedback"]).unwrap();
        assert_eq!((r.endpoint, ids), (Endpoint::Feedback, vec!["c-1"]));
        let (r, ids) = resolve("DELETE", &["customers", "c/2"]).unwrap();
        assert_eq!((r.endpoint, ids), (Endpoint::Erase, vec!["c/2"]));
        assert_eq!(
            resolve("POST", &["reports", "nps"]).err(),
            Some(Miss::MethodNotAllowed)
        );
        assert_eq!(
            resolve("GET", &["reports", "churn"]).err(),
            Some(Miss::NotFound)
        );
        assert_eq!(resolve("GET", &["customers"]).err(), Some(Miss::NotFound));
    }

    #[test]
    fn every_endpoint_has_exactly_one_route() {
        let endpoints: std::collections::HashSet<Endpoint> =
            ROUTES.iter().map(|r| r.endpoint).collect();
        assert_eq!(endpoints.len(), ROUTES.len());
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    (a.method, a.path) != (b.method, b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
