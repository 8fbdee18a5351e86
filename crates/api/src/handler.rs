//! Routes. Everything a client sends is validated (ids, segment names, limits, dates,
//! cursors) and every failure is a JSON error with a stable code; store errors are
//! logged in full and answered with a generic message.
//!
//! Long because the customer-facing unsubscribe pages live beside the routes they answer;
//! every JSON route is a few lines over the query service.

use std::collections::HashMap;

use chrono::NaiveDate;
use feedloop_core::envelope::{Consent, CustomerId};
use feedloop_core::followup::templates::html_escape;
use feedloop_core::followup::{unsubscribe, ContactChannel};
use feedloop_core::profile::Segment;
use feedloop_core::reports::Granularity;
use serde::Serialize;
use serde_json::{json, Value};
use tracing::info;

use crate::dashboard;
use crate::queries::{self, QueryError, Range};
pub use crate::queries::{
    Queries as Api, DEFAULT_LIMIT, DEFAULT_REPORT_DAYS, MAX_LIMIT, MAX_REPORT_DAYS,
    OUTSIDE_ERASE_REACH,
};
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

/// A rejected request: becomes a 4xx/5xx JSON error.
#[derive(Debug)]
struct Reject(ApiResponse);

impl From<QueryError> for Reject {
    fn from(e: QueryError) -> Reject {
        Reject(ApiResponse::from(&e))
    }
}

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Reject {
        Reject::from(QueryError::from(e))
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> Reject {
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
        match self.route(method, path, query).await {
            Ok(r) => r,
            Err(Reject(r)) => r,
        }
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
            return ApiResponse::error(404, "not_found", format!("no route for {path}"));
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
        match (method, parts.as_slice()) {
            ("GET", ["customers", id]) => {
                unknown_params(q, &[])?;
                Ok(ApiResponse::ok(&self.customer(&customer_id(id)?).await?))
            }
            ("GET", ["customers", id, "feedback"]) => {
                unknown_params(q, &["limit", "cursor"])?;
                let page = self
                    .feedback(&customer_id(id)?, limit(q)?, cursor(q))
                    .await?;
                Ok(ApiResponse::ok(&page))
            }
            ("GET", ["customers", id, "followups"]) => {
                unknown_params(q, &["limit", "cursor"])?;
                let page = self
                    .followups(&customer_id(id)?, limit(q)?, cursor(q))
                    .await?;
                Ok(ApiResponse::ok(&page))
            }
            ("DELETE", ["customers", id]) => {
                unknown_params(q, &[])?;
                Ok(ApiResponse::ok(&self.erase(&customer_id(id)?).await?))
            }
            ("PUT", ["customers", id, "consent"]) => {
                unknown_params(q, &["email", "sms", "phone", "source"])?;
                let id = customer_id(id)?;
                let view = self.consent(&id, consent(q)?, source(q)).await?;
                Ok(ApiResponse::ok(&view))
            }
            ("GET", ["segments", name]) => {
                unknown_params(q, &["limit", "cursor"])?;
                let page = self.segment(segment(name)?, limit(q)?, cursor(q)).await?;
                Ok(ApiResponse::ok(&page))
            }
            ("GET", ["reports", "nps"]) => {
                unknown_params(q, &["from", "to", "granularity"])?;
                let g: Granularity = q
                    .get("granularity")
                    .map(|g| g.parse().map_err(|e: String| bad("invalid_granularity", e)))
                    .transpose()?
                    .unwrap_or(Granularity::Day);
                Ok(ApiResponse::ok(&self.nps(self.range(q)?, g).await?))
            }
            ("GET", ["reports", "drivers"]) => {
                unknown_params(q, &["from", "to"])?;
                Ok(ApiResponse::ok(&self.drivers(self.range(q)?).await?))
            }
            ("GET", ["reports", "followups"]) => {
                unknown_params(q, &[])?;
                Ok(ApiResponse::ok(&self.followup_report().await?))
            }
            // The one public route (no IAM): what a customer's e-mail links to.
            ("GET", ["unsubscribe"]) => {
                unknown_params(q, &["token"]).map_err(page_error)?;
                self.unsubscribe_page(q)
            }
            ("POST", ["unsubscribe"]) => {
                unknown_params(q, &["token"]).map_err(page_error)?;
                self.unsubscribe_by_link(q).await
            }
            ("GET", ["openapi.json"]) => {
                unknown_params(q, &[])?;
                Ok(ApiResponse::json(200, crate::openapi::document()))
            }
            ("GET", ["dashboard"]) => {
                let range = Range::new(None, None, self.today())?;
                let html = dashboard::render(&self.dashboard(range, Granularity::Day).await?);
                Ok(ApiResponse {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: html,
                })
            }
            (
                _,
                ["customers", _] | ["customers", _, "feedback" | "followups"] | ["segments", _],
            )
            | (
                _,
                ["reports", "nps" | "drivers" | "followups"]
                | ["dashboard"]
                | ["unsubscribe"]
                | ["openapi.json"],
            ) => Err(Reject(ApiResponse::error(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on {path}"),
            ))),
            _ => Err(Reject(ApiResponse::error(
                404,
                "not_found",
                format!("no route for {path}"),
            ))),
        }
    }

    fn opt_out(&self, q: &HashMap<String, String>) -> Result<unsubscribe::OptOut, Reject> {
        let token = q
            .get("token")
            .ok_or_else(|| page_error(bad("invalid_token", "the link has no token")))?;
        unsubscribe::verify(&self.keys.unsubscribe_key, token, (self.clock)()).map_err(|e| {
            let (status, code) = match e {
                unsubscribe::TokenError::Expired => (410, "expired_token"),
                _ => (400, "invalid_token"),
            };
            info!(code, "unsubscribe link refused");
            Reject(page(
                status,
                "This link does not work",
                &format!(
                    "{}. To stop hearing from us, reply to any of our messages and we will take you off the list.",
                    capitalise(&e.to_string())
                ),
                None,
            ))
        })
    }

    /// The confirm page. It changes nothing: mail scanners open links, and an
    /// unsubscribe must be the customer's act (a POST, RFC 8058).
    fn unsubscribe_page(&self, q: &HashMap<String, String>) -> Result<ApiResponse, Reject> {
        let o = self.opt_out(q)?;
        let token = q.get("token").map(String::as_str).unwrap_or_default();
        Ok(page(
            200,
            &format!("Unsubscribe from {}?", channel_words(o.channel)),
            &format!(
                "You will get no more {} from us about your feedback.",
                channel_words(o.channel)
            ),
            Some(token),
        ))
    }

    /// One click: a mail client's `List-Unsubscribe-Post` or the confirm page's button.
    async fn unsubscribe_by_link(
        &self,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let o = self.opt_out(q)?;
        // Signed by this stack, so it was a valid id when issued.
        let customer = CustomerId::parse(&o.customer_id)
            .map_err(|_| page_error(bad("invalid_token", "the link names no customer")))?;
        let found = self
            .unsubscribe(&customer, o.channel)
            .await
            .map_err(|e| page_error(Reject::from(e)))?;
        // An erased customer has nothing left to opt out of; the answer is the same,
        // so the link tells nobody whether a record exists.
        info!(channel = ?o.channel, on_file = found, "unsubscribed by link");
        Ok(page(
            200,
            "You are unsubscribed",
            &format!(
                "You will get no more {} from us. If this was a mistake, tell us when you next write and we will switch them back on.",
                channel_words(o.channel)
            ),
            None,
        ))
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

fn channel_words(c: ContactChannel) -> &'static str {
    match c {
        ContactChannel::Email => "e-mails",
        ContactChannel::Sms => "text messages",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A customer-facing page: plain HTML, no script; text is escaped, and the token is
/// echoed only when it is URL-safe characters.
fn page(status: u16, title: &str, text: &str, confirm_token: Option<&str>) -> ApiResponse {
    let (title, text) = (html_escape(title), html_escape(text));
    let form = confirm_token
        .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(|t| {
            format!(
                r#"<form method="post" action="?token={t}"><button type="submit">Unsubscribe</button></form>"#
            )
        })
        .unwrap_or_default();
    ApiResponse {
        status,
        content_type: "text/html; charset=utf-8",
        body: format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>{title}</h1><p>{text}</p>{form}</body></html>"
        ),
    }
}

/// The unsubscribe route answers people, not programs: its errors are pages too.
fn page_error(r: Reject) -> Reject {
    let Reject(r) = r;
    if r.content_type.starts_with("text/html") {
        return Reject(r);
    }
    let message = serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "something went wrong".into());
    Reject(page(
        r.status,
        "This link does not work",
        &capitalise(&message),
        None,
    ))
}
