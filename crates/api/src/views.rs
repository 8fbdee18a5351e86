//! The query service's answers: one serialisable view per route, the checked inputs
//! (`Range`, `limit`) and `QueryError`. The OpenAPI document is generated from these.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use feedloop_core::envelope::Consent;
use feedloop_core::followup::{PlaybookId, VariantId};
use feedloop_core::nps::{DriverReport, NpsCategory, NpsCounts};
use feedloop_core::profile::{ChurnRisk, ConsentFacts, Profile, Segment};
use feedloop_core::reports::{Granularity, NpsPoint};
use serde::{Deserialize, Serialize};
use tracing::error;

use feedloop_kit::ports::query::{Erased, Member, StoreError};

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// Longest date range of a report: one read per day and shard.
pub const MAX_REPORT_DAYS: i64 = 366;
pub const DEFAULT_REPORT_DAYS: i64 = 30;

/// Why a query has no answer. Each variant has a stable code and an HTTP status; the
/// message is safe to show (a store failure's detail goes to the log, never out).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("no such customer")]
    CustomerNotFound,
    #[error("the service is busy, retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl QueryError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> QueryError {
        QueryError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Invalid { code, .. } => code,
            QueryError::CustomerNotFound => "customer_not_found",
            QueryError::Unavailable => "unavailable",
            QueryError::Internal => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            QueryError::Invalid { .. } => 400,
            QueryError::CustomerNotFound => 404,
            QueryError::Unavailable => 503,
            QueryError::Internal => 500,
        }
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> QueryError {
        error!(error = %e, "store error");
        match e {
            StoreError::Throttled(_) | StoreError::Transient(_) => QueryError::Unavailable,
            StoreError::Permanent(_) => QueryError::Internal,
        }
    }
}

/// `GET /customers/{id}`: the profile and what is derived from it on read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CustomerView {
    pub customer_id: String,
    pub segment: Segment,
    pub churn_risk: ChurnRisk,
    pub nps_category: Option<NpsCategory>,
    pub decayed_sentiment: Option<f64>,
    pub profile: Profile,
}

/// One page of a customer's feedback or follow-up history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "HistoryPage_of_{T}")]
pub struct HistoryPage<T> {
    pub customer_id: String,
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// One page of a segment, highest churn risk first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentPage {
    pub segment: Segment,
    pub items: Vec<Member>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NpsReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub nps: Option<f64>,
    pub responses: NpsCounts,
    pub points: Vec<NpsPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriversReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(flatten)]
    pub report: DriverReport,
}

/// Segment sizes (kept at write time) and the customers most at risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SegmentsOverview {
    pub customers: u64,
    pub sizes: Vec<(Segment, u64)>,
    pub most_at_risk: Vec<RiskView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RiskView {
    pub customer_id: String,
    pub segment: Segment,
    pub churn_risk: ChurnRisk,
    pub last_feedback_at: Option<DateTime<Utc>>,
    /// The name on file, for people reading the list (the CLI, the demo); never logged.
    pub name: Option<String>,
}

/// One playbook variant's A/B counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VariantRow {
    pub playbook: PlaybookId,
    pub variant: VariantId,
    pub sent: u64,
    pub responded: u64,
    pub response_rate: Option<f64>,
    pub mean_nps_change: Option<f64>,
    pub mean_sentiment_change: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FollowUpReport {
    pub variants: Vec<VariantRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutsideReach {
    #[serde(rename = "where")]
    pub place: String,
    pub until: String,
}

/// What an erasure did: counts only, the answer must not echo personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErasureView {
    pub customer_id: String,
    pub deleted: Erased,
    pub kept: String,
    pub outside_reach: Vec<OutsideReach>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentView {
    pub customer_id: String,
    pub consent: ConsentFacts,
    pub in_force: Consent,
    /// Unsubscribe and complaint suppressions this opt-in took off the customer's
    /// current addresses (bounces stay).
    pub suppressions_lifted: u32,
}

/// A report's days, checked: `from <= to`, at most [`MAX_REPORT_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Range {
    /// Either end may be left out: `to` defaults to today, `from` to 30 days before it.
    pub fn new(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> Result<Range, QueryError> {
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(DEFAULT_REPORT_DAYS - 1));
        if from > to {
            return Err(QueryError::invalid(
                "invalid_range",
                "from must not be after to",
            ));
        }
        if (to - from).num_days() >= MAX_REPORT_DAYS {
            return Err(QueryError::invalid(
                "invalid_range",
                format!("at most {MAX_REPORT_DAYS} days per report"),
            ));
        }
        Ok(Range { from, to })
    }
}

/// A page size, checked against [`MAX_LIMIT`].
pub fn limit(n: Option<usize>) -> Result<usize, QueryError> {
    match n {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(QueryError::invalid(
            "invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        )),
    }
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
