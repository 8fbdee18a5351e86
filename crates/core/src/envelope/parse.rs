//! Strict, exhaustive validation: every problem is reported at once with its JSON path,
//! because the sender usually fixes a producer in one go and a one-error-at-a-time
//! loop through a queue and a reject table is painful.
//!
//! Long because every field's validation and its specific error message sit together:
//! the envelope's contract in one reviewable place.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value};

use super::*;

mod customer;
mod feedback;

/// Size and time limits. The defaults keep one envelope far below the SQS message
/// (256 KiB) and DynamoDB item (400 KB) limits even after analysis is attached.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_envelope_bytes: usize,
    pub max_text_chars: usize,
    pub max_id_chars: usize,
    pub max_short_chars: usize,
    pub max_long_chars: usize,
    pub max_metadata_entries: usize,
    pub max_metadata_key_chars: usize,
    pub max_metadata_value_chars: usize,
    /// Clock skew tolerated for `occurred_at` in the future.
    pub max_future: Duration,
    pub earliest: DateTime<Utc>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_bytes: 64 * 1024,
            max_text_chars: 10_000,
            max_id_chars: 128,
            max_short_chars: 128,
            max_long_chars: 500,
            max_metadata_entries: 32,
            max_metadata_key_chars: 64,
            max_metadata_value_chars: 256,
            max_future: Duration::hours(24),
            earliest: Utc
                .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

/// How the envelope arrived; kept for logs and reject records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wrapper {
    None,
    Sns,
    EventBridge,
}

/// One validation problem: where (a JSON path relative to the envelope) and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("envelope is not valid UTF-8: invalid byte sequence at byte {offset}")]
    NotUtf8 { offset: usize },
    #[error("envelope is not valid JSON: {0}")]
    NotJson(String),
    #[error("envelope is invalid: {}", join(.0))]
    Invalid(Vec<Problem>),
}

/// A reject reason is at most this long: an envelope of 64 KiB of bad keys must not
/// make a reject record that DynamoDB refuses (400 KB items) or a log line that floods.
pub const MAX_REASON_BYTES: usize = 1024;
/// Room kept for the "… and N more problems" tail.
const TAIL_BYTES: usize = 40;

fn join(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        let item = p.to_string();
        let sep = if i == 0 { "" } else { "; " };
        if out.len() + sep.len() + item.len() > MAX_REASON_BYTES - TAIL_BYTES {
            let more = problems.len() - i;
            let noun = if more == 1 { "problem" } else { "problems" };
            out.push_str(&format!("{sep}… and {more} more {noun}"));
            return out;
        }
        out.push_str(sep);
        out.push_str(&item);
    }
    out
}

impl EnvelopeError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            EnvelopeError::Invalid(p) => p,
            _ => &[],
        }
    }
}

/// A parsed envelope together with how it was wrapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub feedback: Feedback,
    pub wrapper: Wrapper,
}

/// Parse and validate one envelope (bare, in an SNS notification, or as an EventBridge
/// event's `detail`). `now` bounds `occurred_at`; it is a parameter so this stays pure.
pub fn parse_envelope(bytes: &[u8], now: DateTime<Utc>) -> Result<Parsed, EnvelopeError> {
    parse_envelope_with(bytes, now, &Limits::default())
}

pub fn parse_envelope_with(
    bytes: &[u8],
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Parsed, EnvelopeError> {
    if bytes.len() > limits.max_envelope_bytes {
        return Err(EnvelopeError::TooLarge {
            size: bytes.len(),
            max: limits.max_envelope_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| EnvelopeError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    let (value, wrapper) = unwrap(value)?;
    let Value::Object(obj) = value else {
        return Err(EnvelopeError::Invalid(vec![Problem {
            path: "$".into(),
            message: format!("expected a JSON object, got {}", type_name(&value)),
        }]));
    };
    let mut c = Checker {
        limits,
        now,
        problems: Vec::new(),
    };
    let feedback = c.envelope(&obj);
    match feedback {
        Some(feedback) if c.problems.is_empty() => Ok(Parsed { feedback, wrapper }),
        _ => Err(EnvelopeError::Invalid(c.problems)),
    }
}

/// The customer id of a body that failed validation, when it names a usable one —
/// bare, in an SNS notification or in an EventBridge event, like any envelope — so an
/// erasure finds the customer's reject records too.
pub fn customer_hint(bytes: &[u8]) -> Option<CustomerId> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let (inner, _) = unwrap(value).ok()?;
    CustomerId::parse(inner.get("customer_id")?.as_str()?).ok()
}

fn unwrap(value: Value) -> Result<(Value, Wrapper), EnvelopeError> {
    let Value::Object(ref obj) = value else {
        return Ok((value, Wrapper::None));
    };
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") {
        let Some(message) = obj.get("Message").and_then(Value::as_str) else {
            return Err(EnvelopeError::NotJson(
                "SNS notification has no string Message".into(),
            ));
        };
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| EnvelopeError::NotJson(format!("SNS Message: {e}")))?;
        return Ok((inner, Wrapper::Sns));
    }
    if obj.contains_key("detail-type") {
        if let Some(detail) = obj.get("detail") {
            return Ok((detail.clone(), Wrapper::EventBridge));
        }
    }
    Ok((value, Wrapper::None))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const COMMON_FIELDS: &[&str] = &[
    "schema",
    "feedback_id",
    "customer_id",
    "kind",
    "occurred_at",
    "text",
    "channel",
    "source",
    "locale",
    "customer",
    "metadata",
];
const REVIEW_FIELDS: &[&str] = &["rating", "product_id"];
const SURVEY_FIELDS: &[&str] = &["nps_score", "csat", "question"];
const TICKET_FIELDS: &[&str] = &["ticket_id", "status", "priority", "category", "subject"];

pub(crate) fn check_id(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 {
        return Err("must not be empty".into());
    }
    if n > 128 {
        return Err(format!("{n} characters, over the 128 limit"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:@/+=-".contains(*c)))
    {
        return Err(format!(
            "contains {} (allowed: letters, digits and . _ : @ / + = -)",
            describe_char(bad)
        ));
    }
    Ok(())
}

/// A rejected value, quoted only when it is a short token that cannot be contact data
/// or a name (an enum value, a zone, a tag): reasons are logged, and a customer's
/// details pasted into the wrong field must not follow them there. The reject record
/// keeps the body, where an erasure reaches it.
fn shown(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let token = s.chars().count() <= 24
        && digits < 7
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:+".contains(c));
    if token {
        format!("{s:?}")
    } else {
        format!("(a {}-character value, not shown)", s.chars().count())
    }
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Control characters other than tab and line breaks corrupt logs and CSV exports and
/// are never part of real feedback.
fn bad_control(s: &str, allow_newlines: bool) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| {
        let allowed_ws = allow_newlines && matches!(c, '\n' | '\r' | '\t');
        c.is_control() && !allowed_ws
    })
}

struct Checker<'a> {
    limits: &'a Limits,
    now: DateTime<Utc>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        // A path is the sender's key: a long one is cut so one problem stays short.
        let mut path: String = path.into();
        if let Some((cut, _)) = path.char_indices().nth(100) {
            path.truncate(cut);
            path.push('…');
        }
        self.problems.push(Problem {
            path,
            message: message.into(),
        });
    }

    /// Present and not null.
    fn field<'v>(&mut self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        obj.get(key).filter(|v| !v.is_null())
    }

    fn required<'v>(&mut self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        let v = self.field(obj, key);
        if v.is_none() {
            let msg = if obj.contains_key(key) {
                "required, got null"
            } else {
                "required"
            };
            self.problem(key, msg);
        }
        v
    }

    fn string<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.problem(path, format!("expected a string, got {}", type_name(other)));
                None
            }
        }
    }

    fn id(&mut self, obj: &Map<String, Value>, key: &str) -> Option<String> {
        let s = self.required(obj, key).and_then(|v| self.string(key, v))?;
        match check_id(s) {
            Ok(()) => Some(s.to_owned()),
            Err(e) => {
                self.problem(key, e);
                None
            }
        }
    }

    /// A short string that must also pass `check`; its error becomes the problem.
    fn short_checked<T>(
        &mut self,
        path: &str,
        v: &Value,
        max: usize,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.short(path, v, max)?;
        check(&s).map_err(|rule| self.problem(path, rule)).ok()
    }

    /// A bounded single-line string. `None` when absent; problems recorded otherwise.
    fn short(&mut self, path: &str, v: &Value, max: usize) -> Option<String> {
        let s = self.string(path, v)?;
        let n = s.chars().count();
        if n == 0 {
            self.problem(path, "must not be empty (omit the field instead)");
            return None;
        }
        if n > max {
            self.problem(path, format!("{n} characters, over the {max} limit"));
            return None;
        }
        if let Some((at, c)) = bad_control(s, false) {
            self.problem(
                path,
                format!(
                    "contains control character {} at character {at}",
                    describe_char(c)
                ),
            );
            return None;
        }
        Some(s.to_owned())
    }

    fn opt_short(&mut self, obj: &Map<String, Value>, key: &str, max: usize) -> Option<String> {
        let v = self.field(obj, key)?;
        self.short(key, v, max)
    }

    fn text(&mut self, obj: &Map<String, Value>) -> String {
        let Some(v) = self.field(obj, "text") else {
            return String::new();
        };
        let Some(s) = self.string("text", v) else {
            return String::new();
        };
        let n = s.chars().count();
        let max = self.limits.max_text_chars;
        if n > max {
            self.problem("text", format!("{n} characters, over the {max} limit"));
        } else if let Some((at, c)) = bad_control(s, true) {
            self.problem(
                "text",
                format!(
                    "contains control character {} at character {at}",
                    describe_char(c)
                ),
            );
        }
        s.to_owned()
    }

    fn int_in(&mut self, obj: &Map<String, Value>, key: &str, lo: i64, hi: i64) -> Option<u8> {
        let v = self.field(obj, key)?;
        let n = match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => i,
                None => {
                    self.problem(key, format!("expected an integer, got {n}"));
                    return None;
                }
            },
            other => {
                self.problem(
                    key,
                    format!("expected an integer, got {}", type_name(other)),
                );
                return None;
            }
        };
        if n < lo || n > hi {
            self.problem(key, format!("{n} is outside {lo}..={hi}"));
            return None;
        }
        u8::try_from(n).ok()
    }

    fn choice<T>(
        &mut self,
        path: &str,
        v: &Value,
        names: &[&str],
        from: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let s = self.string(path, v)?;
        let parsed = from(s);
        if parsed.is_none() {
            self.problem(
                path,
                format!(
                    "unknown value {} (expected one of: {})",
                    shown(s),
                    names.join(", ")
                ),
            );
        }
        parsed
    }

    fn timestamp(&mut self, obj: &Map<String, Value>) -> Option<DateTime<Utc>> {
        let v = self.required(obj, "occurred_at")?;
        let s = self.string("occurred_at", v)?;
        let Ok(t) = DateTime::parse_from_rfc3339(s) else {
            self.problem(
                "occurred_at",
                format!("not RFC 3339 ({}; e.g. 2026-11-24T10:00:00Z)", shown(s)),
            );
            return None;
        };
        let t = t.with_timezone(&Utc);
        if t > self.now + self.limits.max_future {
            self.problem(
                "occurred_at",
                format!(
                    "{s} is more than {}h in the future",
                    self.limits.max_future.num_hours()
                ),
            );
            return None;
        }
        if t < self.limits.earliest {
            self.problem(
                "occurred_at",
                format!(
                    "{s} is before {}; check the clock or the unit",
                    self.limits.earliest.date_naive()
                ),
            );
            return None;
        }
        Some(t)
    }

    fn locale(&mut self, obj: &Map<String, Value>) -> Option<String> {
        let s = self.opt_short(obj, "locale", 35)?;
        let mut parts = s.split(['-', '_']);
        let lang_ok = parts.next().is_some_and(|l| {
            (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
        });
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if lang_ok && rest_ok {
            Some(s)
        } else {
            self.problem(
                "locale",
                format!(
                    "{} is not a BCP 47 language tag (e.g. en, en-GB)",
                    shown(&s)
                ),
            );
            None
        }
    }

    fn metadata(&mut self, obj: &Map<String, Value>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = self.field(obj, "metadata") else {
            return out;
        };
        let Value::Object(map) = v else {
            self.problem(
                "metadata",
                format!("expected an object, got {}", type_name(v)),
            );
            return out;
        };
        let l = self.limits;
        if map.len() > l.max_metadata_entries {
            self.problem(
                "metadata",
                format!(
                    "{} entries, over the {} limit",
                    map.len(),
                    l.max_metadata_entries
                ),
            );
            return out;
        }
        for (k, v) in map {
            let path = format!("metadata.{k}");
            let key_ok = !k.is_empty()
                && k.chars().count() <= l.max_metadata_key_chars
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !key_ok {
                self.problem(
                    &path,
                    format!(
                        "key must be 1..={} characters of letters, digits and _ . -",
                        l.max_metadata_key_chars
                    ),
                );
                continue;
            }
            let value = match v {
                // Unlike a named field, an empty metadata value carries meaning ("no coupon").
                Value::String(s) if s.is_empty() => Some(String::new()),
                Value::String(_) => self.short(&path, v, l.max_metadata_value_chars),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    self.problem(
                        &path,
                        format!(
                            "expected a string, number or boolean, got {}",
                            type_name(other)
                        ),
                    );
                    None
                }
            };
            if let Some(value) = value {
                out.insert(k.clone(), value);
            }
        }
        out
    }
}
