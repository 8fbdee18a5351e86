//! Routes. Everything a client sends is validated (ids, segment names, limits, dates,
//! cursors) and every failure is a JSON error with a stable code; store errors are
//! logged in full and answered with a generic message.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use feedloop_core::envelope::{CustomerId, CustomerInfo};
use feedloop_core::followup::templates::html_escape;
use feedloop_core::followup::{suppression, unsubscribe, ContactChannel};
use feedloop_core::keys::StackKeys;
use feedloop_core::profile::Segment;
use feedloop_core::reports::{self, Counters, Granularity};
use serde_json::{json, Value};
use tracing::{error, info};

use crate::cursor;
use crate::dashboard::{self, AtRisk, DashboardData};
use crate::ports::*;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// Longest date range of a report: one read per day and shard.
pub const MAX_REPORT_DAYS: i64 = 366;
pub const DEFAULT_REPORT_DAYS: i64 = 30;

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

    fn error(status: u16, code: &str, message: impl Into<String>) -> ApiResponse {
        Self::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

/// A rejected request: becomes a 4xx/5xx JSON error.
#[derive(Debug)]
struct Reject(ApiResponse);

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Reject {
        // The detail goes to the log, never to the client.
        error!(error = %e, "store error");
        Reject(match e {
            StoreError::Throttled(_) | StoreError::Transient(_) => {
                ApiResponse::error(503, "unavailable", "the service is busy, retry shortly")
            }
            StoreError::Permanent(_) => ApiResponse::error(500, "internal", "internal error"),
        })
    }
}

fn bad(code: &str, message: impl Into<String>) -> Reject {
    Reject(ApiResponse::error(400, code, message))
}

pub struct Api<S> {
    pub store: S,
    /// Sign cursors and unsubscribe links, salt the suppression list.
    pub keys: StackKeys,
    pub clock: feedloop_ingest::Clock,
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
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad("invalid_limit", format!("limit must be 1..={MAX_LIMIT}"))),
    }
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
                self.customer(&customer_id(id)?).await
            }
            ("GET", ["customers", id, "feedback"]) => {
                unknown_params(q, &["limit", "cursor"])?;
                self.feedback(&customer_id(id)?, q).await
            }
            ("GET", ["customers", id, "followups"]) => {
                unknown_params(q, &["limit", "cursor"])?;
                self.followups(&customer_id(id)?, q).await
            }
            ("DELETE", ["customers", id]) => {
                unknown_params(q, &[])?;
                self.erase(&customer_id(id)?).await
            }
            ("PUT", ["customers", id, "consent"]) => {
                unknown_params(q, &["email", "sms", "phone", "source"])?;
                self.consent(&customer_id(id)?, q).await
            }
            ("GET", ["segments", name]) => {
                unknown_params(q, &["limit", "cursor"])?;
                self.segment(segment(name)?, q).await
            }
            ("GET", ["reports", "nps"]) => {
                unknown_params(q, &["from", "to", "granularity"])?;
                self.nps(q).await
            }
            ("GET", ["reports", "drivers"]) => {
                unknown_params(q, &["from", "to"])?;
                self.drivers(q).await
            }
            // The one public route (no IAM): what a customer's e-mail links to.
            ("GET", ["unsubscribe"]) => {
                unknown_params(q, &["token"]).map_err(page_error)?;
                self.unsubscribe_page(q)
            }
            ("POST", ["unsubscribe"]) => {
                unknown_params(q, &["token"]).map_err(page_error)?;
                self.unsubscribe(q).await
            }
            ("GET", ["dashboard"]) => {
                let html = dashboard::render(&self.dashboard_data().await?);
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
            | (_, ["reports", "nps" | "drivers"] | ["dashboard"] | ["unsubscribe"]) => {
                Err(Reject(ApiResponse::error(
                    405,
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}"),
                )))
            }
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
    async fn unsubscribe(&self, q: &HashMap<String, String>) -> Result<ApiResponse, Reject> {
        let o = self.opt_out(q)?;
        let consent = match o.channel {
            ContactChannel::Email => Consent {
                email: Some(false),
                ..Consent::default()
            },
            ContactChannel::Sms => Consent {
                sms: Some(false),
                ..Consent::default()
            },
        };
        let found = self
            .store
            .set_consent(
                &o.customer_id,
                &consent,
                "consent:unsubscribe-link",
                (self.clock)(),
            )
            .await
            .map_err(|e| page_error(Reject::from(e)))?;
        // An erased customer has nothing left to opt out of; the answer is the same,
        // so the link tells nobody whether a record exists.
        info!(channel = ?o.channel, on_file = found.is_some(), "unsubscribed by link");
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

    /// Staff record an explicit consent statement: `?email=on|off&sms=on|off&phone=on|off`
    /// (at least one) and an optional `source` (who or where, default `staff`).
    async fn consent(
        &self,
        id: &CustomerId,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let switch = |k: &str| -> Result<Option<bool>, Reject> {
            match q.get(k).map(String::as_str) {
                None => Ok(None),
                Some("on") => Ok(Some(true)),
                Some("off") => Ok(Some(false)),
                Some(_) => Err(bad("invalid_consent", format!("{k} must be on or off"))),
            }
        };
        let consent = Consent {
            email: switch("email")?,
            sms: switch("sms")?,
            phone: switch("phone")?,
        };
        if consent == Consent::default() {
            return Err(bad(
                "invalid_consent",
                "say at least one of email, sms, phone (on or off)",
            ));
        }
        let source = q.get("source").map_or("staff", String::as_str);
        if source.is_empty()
            || source.len() > 64
            || !source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(bad(
                "invalid_source",
                "source is 1 to 64 characters of letters, digits and -_.:",
            ));
        }
        let now = (self.clock)();
        let Some(p) = self
            .store
            .set_consent(id.as_str(), &consent, &format!("consent:{source}"), now)
            .await?
        else {
            return Err(Reject(ApiResponse::error(
                404,
                "customer_not_found",
                "no such customer",
            )));
        };
        info!(email = ?consent.email, sms = ?consent.sms, phone = ?consent.phone, "consent recorded");
        Ok(ApiResponse::json(
            200,
            json!({"customer_id": id.as_str(), "consent": p.consent, "in_force": p.consent.current()}),
        ))
    }

    async fn customer(&self, id: &CustomerId) -> Result<ApiResponse, Reject> {
        let Some(p) = self.store.profile(id.as_str()).await? else {
            return Err(Reject(ApiResponse::error(
                404,
                "customer_not_found",
                "no such customer",
            )));
        };
        Ok(ApiResponse::json(
            200,
            json!({
                "customer_id": id.as_str(),
                "segment": p.segment().as_str(),
                "churn_risk": p.churn_risk(),
                "nps_category": p.nps_category(),
                "decayed_sentiment": p.decayed_sentiment(),
                "profile": p,
            }),
        ))
    }

    fn position(&self, scope: &str, q: &HashMap<String, String>) -> Result<Option<String>, Reject> {
        q.get("cursor")
            .map(|c| {
                cursor::verify(&self.keys.cursor_key, scope, c)
                    .map_err(|e| bad("invalid_cursor", e.to_string()))
            })
            .transpose()
    }

    async fn feedback(
        &self,
        id: &CustomerId,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let scope = format!("feedback:{id}");
        let after = self.position(&scope, q)?;
        let page = self
            .store
            .feedback_page(id.as_str(), limit(q)?, after)
            .await?;
        Ok(self.listed(&scope, ("customer_id", id.as_str()), page))
    }

    /// One page of a list and, when there is more, the cursor signed for its scope.
    fn listed<T: serde::Serialize>(
        &self,
        scope: &str,
        (owner, name): (&str, &str),
        page: Page<T>,
    ) -> ApiResponse {
        let next = page
            .next
            .map(|p| cursor::issue(&self.keys.cursor_key, scope, &p));
        let mut body = json!({"items": page.items, "next_cursor": next});
        body[owner] = json!(name);
        ApiResponse::json(200, body)
    }

    /// A customer's follow-up attempts, newest first like the feedback history, a page
    /// at a time behind the same signed cursor (position: time, feedback id, playbook).
    async fn followups(
        &self,
        id: &CustomerId,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let scope = format!("followups:{id}");
        let after = self.position(&scope, q)?;
        let limit = limit(q)?;
        let mut items = self.store.followups(id.as_str()).await?;
        let key = |a: &feedloop_followup::ports::AttemptRecord| {
            format!(
                "{}#{}#{}",
                a.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                a.feedback_id,
                a.playbook
            )
        };
        items.sort_by(|a, b| {
            (b.at, &b.feedback_id, &b.playbook).cmp(&(a.at, &a.feedback_id, &a.playbook))
        });
        let rest: Vec<_> = items
            .into_iter()
            .filter(|a| after.as_ref().is_none_or(|p| key(a).as_str() < p.as_str()))
            .collect();
        let more = rest.len() > limit;
        let items: Vec<_> = rest.into_iter().take(limit).collect();
        let next = items.last().filter(|_| more).map(key);
        Ok(self.listed(&scope, ("customer_id", id.as_str()), Page { items, next }))
    }

    async fn segment(
        &self,
        seg: Segment,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let scope = format!("segment:{}", seg.as_str());
        let after = self.position(&scope, q)?;
        let page = self
            .store
            .segment_page(seg.as_str(), limit(q)?, after)
            .await?;
        Ok(self.listed(&scope, ("segment", seg.as_str()), page))
    }

    fn range(&self, q: &HashMap<String, String>) -> Result<(NaiveDate, NaiveDate), Reject> {
        let today = (self.clock)().date_naive();
        let to = date(q, "to")?.unwrap_or(today);
        let from = date(q, "from")?.unwrap_or(to - Duration::days(DEFAULT_REPORT_DAYS - 1));
        if from > to {
            return Err(bad("invalid_range", "from must not be after to"));
        }
        if (to - from).num_days() >= MAX_REPORT_DAYS {
            return Err(bad(
                "invalid_range",
                format!("at most {MAX_REPORT_DAYS} days per report"),
            ));
        }
        Ok((from, to))
    }

    /// The day items of a range (read by key, no scan) and their sum.
    async fn counters(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(BTreeMap<NaiveDate, Counters>, Counters), StoreError> {
        let mut by_day = self.store.day_counters(from, to).await?;
        let mut total = Counters::new();
        for day in reports::days(from, to) {
            reports::add_into(&mut total, by_day.entry(day).or_default());
        }
        Ok((by_day, total))
    }

    async fn nps(&self, q: &HashMap<String, String>) -> Result<ApiResponse, Reject> {
        let (from, to) = self.range(q)?;
        let g: Granularity = q
            .get("granularity")
            .map(|g| g.parse().map_err(|e: String| bad("invalid_granularity", e)))
            .transpose()?
            .unwrap_or(Granularity::Day);
        let (by_day, total) = self.counters(from, to).await?;
        let all = reports::nps_counts(&total);
        Ok(ApiResponse::json(
            200,
            json!({"from": from, "to": to, "granularity": g, "nps": all.nps(), "responses": all,
                   "points": reports::nps_series(&by_day, g)}),
        ))
    }

    async fn drivers(&self, q: &HashMap<String, String>) -> Result<ApiResponse, Reject> {
        let (from, to) = self.range(q)?;
        let (_, total) = self.counters(from, to).await?;
        let mut v = serde_json::to_value(reports::drivers(&total)).unwrap_or(Value::Null);
        v["from"] = json!(from);
        v["to"] = json!(to);
        Ok(ApiResponse::json(200, v))
    }

    async fn erase(&self, id: &CustomerId) -> Result<ApiResponse, Reject> {
        let contact: Option<CustomerInfo> = self
            .store
            .profile(id.as_str())
            .await?
            .and_then(|p| p.contact.map(|c| c.value));
        let keys = suppression::keys(&self.keys.suppression_salt, id.as_str(), contact.as_ref());
        let erased = self.store.erase(id.as_str(), &keys, (self.clock)()).await?;
        info!(
            profile = erased.profile,
            feedback = erased.feedback,
            followups = erased.followups,
            "customer erased"
        );
        let outside: Vec<Value> = OUTSIDE_ERASE_REACH
            .iter()
            .map(|(place, lasts)| json!({"where": place, "until": lasts}))
            .collect();
        Ok(ApiResponse::json(
            200,
            json!({"customer_id": id.as_str(), "deleted": erased,
                   "kept": "salted hashes of the id and contact addresses on the suppression list; anonymous daily counters",
                   "outside_reach": outside}),
        ))
    }

    /// What the dashboard shows: the last 30 days.
    pub async fn dashboard_data(&self) -> Result<DashboardData, StoreError> {
        let now = (self.clock)();
        let to = now.date_naive();
        let from = to - Duration::days(DEFAULT_REPORT_DAYS - 1);
        let (by_day, total) = self.counters(from, to).await?;
        let counts = self.store.segment_counts().await?;
        let segments: Vec<(String, u64)> = Segment::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), counts.get(s).copied().unwrap_or(0)))
            .collect();
        let mut at_risk = Vec::new();
        for m in self
            .store
            .segment_page(Segment::AtRisk.as_str(), 10, None)
            .await?
            .items
        {
            if let Some(p) = self.store.profile(&m.customer_id).await? {
                let r = p.churn_risk();
                at_risk.push(AtRisk {
                    customer_id: m.customer_id,
                    churn_risk: r.score,
                    reasons: r.reasons,
                    last_feedback_at: p.last_feedback_at,
                });
            }
        }
        Ok(DashboardData {
            generated_at: now,
            from,
            to,
            nps: reports::nps_series(&by_day, Granularity::Day),
            granularity: Granularity::Day,
            drivers: reports::drivers(&total),
            segments,
            at_risk,
        })
    }
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

/// What an erasure cannot reach and how long it lingers there (the template's
/// settings: `samplesam.yaml` queues, table and log groups). Said in every erase
/// response, so nobody mistakes "erased" for "gone from every copy".
pub const OUTSIDE_ERASE_REACH: &[(&str, &str)] = &[
    (
        "messages still in the ingest or follow-up dead-letter queue",
        "14 days after they arrived (queue retention)",
    ),
    (
        "DynamoDB point-in-time recovery",
        "35 days (restorable snapshots of the table)",
    ),
    (
        "CloudWatch Logs of the functions",
        "30 days (log group retention)",
    ),
];
