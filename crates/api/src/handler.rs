//! The router over the route table (`routes.rs`). Everything a client sends is
//! validated (ids, segment names, limits, dates, cursors, parameter names) and every
//! failure is a JSON error with a stable code; store errors are logged in full and
//! answered with a generic message. The customer-facing unsubscribe pages are in
//! `unsubscribe.rs`.

use std::collections::HashMap;

use chrono::NaiveDate;
use feedloop_core::envelope::{Consent, CustomerId};
use feedloop_core::profile::Segment;
use feedloop_core::reports::Granularity;
use serde::Serialize;
use serde_json::{json, Value};

use crate::dashboard;
use crate::queries::{self, QueryError, Range};
pub use crate::queries::{
    Queries as Api, DEFAULT_LIMIT, DEFAULT_REPORT_DAYS, MAX_LIMIT, MAX_REPORT_DAYS,
    OUTSIDE_ERASE_REACH,
};
use crate::routes::{self, Endpoint, Miss};
use crate::unsubscribe::page_error;
use feedloop_kit::ports::query::*;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl ApiResponse {
    fn json(status: u16, v: Value) -> ApiResponse {
        ApiResponse {
            status,
            content_type: "application/json",
            body: v.to_string(),
        }
    }

    fn ok<T: Serialize>(view: &T) -> ApiResponse {
        match serde_json::to_value(view) {
            Ok(v) => Self::json(200, v),
            Err(e) => Self::from(&QueryError::from(StoreError::Permanent(format!(
                "serialising the answer: {e}"
            )))),
        }
    }

    fn error(status: u16, code: &str, message: impl Into<String>) -> ApiResponse {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

impl From<&QueryError> for ApiResponse {
    fn from(e: &QueryError) -> ApiResponse {
        ApiResponse::error(e.status(), e.code(), e.to_string())
    }
}

/// A rejected request: a JSON error with the query service's code, or (on the
/// customer-facing routes) a page.
#[derive(Debug)]
pub(crate) enum Reject {
    Query(QueryError),
    NoRoute { path: String },
    MethodNotAllowed { method: String, path: String },
    Page(ApiResponse),
}

impl From<QueryError> for Reject {
    fn from(e: QueryError) -> Reject {
        Reject::Query(e)
    }
}

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Reject {
        Reject::Query(QueryError::from(e))
    }
}

impl From<Reject> for ApiResponse {
    fn from(r: Reject) -> ApiResponse {
        match r {
            Reject::Query(e) => ApiResponse::from(&e),
            Reject::NoRoute { path } => {
                ApiResponse::error(404, "not_found", format!("no route for {path}"))
            }
            Reject::MethodNotAllowed { method, path } => ApiResponse::error(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on {path}"),
            ),
            Reject::Page(page) => page,
        }
    }
}

pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Reject {
    Reject::from(QueryError::invalid(code, message))
}

fn customer_id(raw: &str) -> Result<CustomerId, Reject> {
    CustomerId::parse(raw).map_err(|e| bad("invalid_customer_id", format!("customer id: {e}")))
}

fn segment(raw: &str) -> Result<Segment, Reject> {
    Segment::ALL
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| {
            let all: Vec<&str> = Segment::ALL.iter().map(|s| s.as_str()).collect();
            bad(
                "invalid_segment",
                format!("segment must be one of {}", all.join(", ")),
            )
        })
}

fn limit(q: &HashMap<String, String>) -> Result<usize, Reject> {
    // Not a number is out of range too: one message for both.
    let n = q.get("limit").map(|v| v.parse::<usize>().unwrap_or(0));
    Ok(queries::limit(n)?)
}

fn date(q: &HashMap<String, String>, k: &str) -> Result<Option<NaiveDate>, Reject> {
    q.get(k)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| bad("invalid_date", format!("{k} must be a date YYYY-MM-DD")))
        })
        .transpose()
}

fn unknown_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), Reject> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(
            "unknown_parameter",
            format!("unknown parameter {k:?} (allowed: {})", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn cursor(q: &HashMap<String, String>) -> Option<&str> {
    q.get("cursor").map(String::as_str)
}

/// Decode %XX escapes; invalid escapes and non-UTF-8 results are kept verbatim (the id
/// check then rejects them with a clear message).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

impl<S: QueryStore> Api<S> {
    /// Route one request. `path` is without the query string; `query` is decoded.
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> ApiResponse {
        self.route(method, path, query)
            .await
            .unwrap_or_else(ApiResponse::from)
    }

    /// The public unsubscribe function's routes only (GET and POST `/unsubscribe`):
    /// everything else is not found there, whatever the IAM routes would answer.
    pub async fn handle_public(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
    ) -> ApiResponse {
        if path.trim_matches('/') != "unsubscribe" {
            return Reject::NoRoute {
                path: path.to_owned(),
            }
            .into();
        }
        self.handle(method, path, query).await
    }

    async fn route(
        &self,
        method: &str,
        path: &str,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        // Segments are percent-decoded after splitting: an id may contain '/' (%2F).
        let decoded: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let (route, captured) = routes::resolve(method, &parts).map_err(|miss| match miss {
            Miss::MethodNotAllowed => Reject::MethodNotAllowed {
                method: method.to_owned(),
                path: path.to_owned(),
            },
            Miss::NotFound => Reject::NoRoute {
                path: path.to_owned(),
            },
        })?;
        let params = unknown_params(q, &route.query_params());
        let id = captured.first().copied().unwrap_or_default();
        match route.endpoint {
            // The public routes (no IAM): what a customer's e-mail links to.
            Endpoint::UnsubscribePage => {
                params.map_err(page_error)?;
                self.unsubscribe_page(q)
            }
            Endpoint::Unsubscribe => {
                params.map_err(page_error)?;
                self.unsubscribe_by_link(q).await
            }
            endpoint => {
                params?;
                self.answer(endpoint, id, q).await
            }
        }
    }

    /// A JSON route (and the dashboard page) over the query service.
    async fn answer(
        &self,
        endpoint: Endpoint,
        id: &str,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        Ok(match endpoint {
            Endpoint::Customer => ApiResponse::ok(&self.customer(&customer_id(id)?).await?),
            Endpoint::Feedback => {
                let id = customer_id(id)?;
                ApiResponse::ok(&self.feedback(&id, limit(q)?, cursor(q)).await?)
            }
            Endpoint::FollowUps => {
                let id = customer_id(id)?;
                ApiResponse::ok(&self.followups(&id, limit(q)?, cursor(q)).await?)
            }
            Endpoint::Erase => ApiResponse::ok(&self.erase(&customer_id(id)?).await?),
            Endpoint::Consent => {
                let id = customer_id(id)?;
                ApiResponse::ok(&self.consent(&id, consent(q)?, source(q)).await?)
            }
            Endpoint::Segment => {
                ApiResponse::ok(&self.segment(segment(id)?, limit(q)?, cursor(q)).await?)
            }
            Endpoint::Nps => {
                let g: Granularity = q
                    .get("granularity")
                    .map(|g| g.parse().map_err(|e: String| bad("invalid_granularity", e)))
                    .transpose()?
                    .unwrap_or(Granularity::Day);
                ApiResponse::ok(&self.nps(self.range(q)?, g).await?)
            }
            Endpoint::Drivers => ApiResponse::ok(&self.drivers(self.range(q)?).await?),
            Endpoint::FollowUpReport => ApiResponse::ok(&self.followup_report().await?),
            Endpoint::OpenApi => ApiResponse::json(200, crate::openapi::document()),
            Endpoint::Dashboard => {
                let range = Range::new(None, None, self.today())?;
                ApiResponse {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: dashboard::render(&self.dashboard(range, Granularity::Day).await?),
                }
            }
            Endpoint::UnsubscribePage | Endpoint::Unsubscribe => {
                unreachable!("the public routes are answered as pages")
            }
        })
    }

    fn range(&self, q: &HashMap<String, String>) -> Result<Range, Reject> {
        Ok(Range::new(date(q, "from")?, date(q, "to")?, self.today())?)
    }
}

/// `?email=on|off&sms=on|off&phone=on|off`, at least one (checked by the service).
fn consent(q: &HashMap<String, String>) -> Result<Consent, Reject> {
    let switch = |k: &str| -> Result<Option<bool>, Reject> {
        match q.get(k).map(String::as_str) {
            None => Ok(None),
            Some("on") => Ok(Some(true)),
            Some("off") => Ok(Some(false)),
            Some(_) => Err(bad("invalid_consent", format!("{k} must be on or off"))),
        }
    };
    Ok(Consent {
        email: switch("email")?,
        sms: switch("sms")?,
        phone: switch("phone")?,
    })
}

/// Who or where the consent statement came from, default `staff`.
fn source(q: &HashMap<String, String>) -> &str {
    q.get("source").map_or("staff", String::as_str)
}
