//! The single source of truth for resource shapes: key names, the index, TTL and queue
//! settings. `samplesam.yaml` must agree (a test compares them), and the local stack
//! and tests create resources from here, so the three cannot drift.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// SQS redelivers a failing message this many times before moving it to the DLQ.
pub const MAX_RECEIVE_COUNT: i32 = 5;
pub const INGEST_TIMEOUT_SECS: i32 = 30;
/// AWS asks for at least 6x the function timeout so a batch still being retried by
/// Lambda is not redelivered to a second poller.
pub const INGEST_VISIBILITY_TIMEOUT_SECS: i32 = 6 * INGEST_TIMEOUT_SECS;
pub const FOLLOWUP_TIMEOUT_SECS: i32 = 30;
pub const FOLLOWUP_VISIBILITY_TIMEOUT_SECS: i32 = 6 * FOLLOWUP_TIMEOUT_SECS;
pub const DLQ_RETENTION_SECS: i32 = 14 * 24 * 3600;

/// Item keys. Profiles, feedback history and follow-ups share the customer partition so
/// one Query reads a customer's history; aggregates are sharded by key so no single
/// partition takes every write.
pub mod keys {
    use feedloop_core::envelope::FeedbackId;
    use feedloop_core::followup::{PlaybookId, VariantId};

    pub fn customer(id: &str) -> String {
        format!("CUST#{id}")
    }
    pub const PROFILE: &str = "PROFILE";
    pub fn feedback(history_key: &str) -> String {
        format!("FB#{history_key}")
    }
    pub const FEEDBACK_PREFIX: &str = "FB#";
    pub fn aggregate(day: chrono::NaiveDate, shard: u16) -> String {
        format!("AGG#{day}#{shard:02}")
    }
    pub const AGGREGATE: &str = "AGG";
    /// Every shard count a writer has used (a number set), so readers sum every shard
    /// whatever `AggregateShards` says today.
    pub const AGGREGATE_SHARDS_PK: &str = "CONFIG#aggregate-shards";
    pub const AGGREGATE_SHARDS_SK: &str = "CONFIG";
    /// Segment sizes, kept at write time in this many items so a burst of new
    /// customers spreads over partitions (a customer always counts in the same one).
    pub const SEGMENT_COUNT_SHARDS: u16 = 16;
    pub fn segment_count(shard: u16) -> String {
        format!("SEGCOUNT#{shard:02}")
    }
    pub const SEGMENT_COUNT: &str = "SEGCOUNT";
    /// `AGG#<day>#<shard>` back to the day.
    pub fn aggregate_day(pk: &str) -> Option<chrono::NaiveDate> {
        let rest = pk.strip_prefix("AGG#")?;
        rest.split('#').next()?.parse().ok()
    }
    pub fn reject_day(day: chrono::NaiveDate) -> String {
        format!("REJECT#{day}")
    }
    pub fn reject(message_id: &str) -> String {
        format!("MSG#{message_id}")
    }
    /// One follow-up attempt per (feedback, playbook): the key is the dedupe.
    pub fn followup(feedback_id: &FeedbackId, playbook: &PlaybookId) -> String {
        format!("FU#{feedback_id}#{playbook}")
    }
    pub const FOLLOWUP_PREFIX: &str = "FU#";
    /// Per customer: last send times (the caps) and the follow-up awaiting a response.
    pub const FOLLOWUP_CAP: &str = "FUCAP";
    /// Per (playbook, variant) A/B counters, one partition: follow-ups are rare
    /// (at most one per customer per week), so it never runs hot.
    pub const FOLLOWUP_STATS: &str = "FUSTATS";
    pub fn followup_stats(playbook: &PlaybookId, variant: &VariantId) -> String {
        format!("{playbook}#{variant}")
    }
    /// Suppression entries hold a salted hash only (no personal data).
    pub fn suppression(hash: &str) -> String {
        format!("SUPP#{hash}")
    }
    pub const SUPPRESSION: &str = "SUPP";
    /// Beside a suppression key: the soft bounces counted towards suppressing it.
    pub const SOFT_BOUNCES: &str = "SOFTBOUNCE";
    /// In the customer's partition: where their reject records are (for erasure).
    pub fn reject_pointer(day: chrono::NaiveDate, message_id: &str) -> String {
        format!("REJ#{day}#{message_id}")
    }
    pub fn segment(segment: &str) -> String {
        format!("SEG#{segment}")
    }
    /// Sorts by churn risk descending (bucketed to 0.05 so most updates leave the index
    /// key, and hence the index, untouched), then customer id.
    pub fn segment_order(churn_risk: f64, customer: &str) -> String {
        let bucket = (churn_risk.clamp(0.0, 1.0) * 20.0).floor() as u32;
        format!("R{:02}#{customer}", 20 - bucket)
    }
}

/// Resource names for one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub table: String,
    pub ingest_queue: String,
    pub ingest_dlq: String,
    pub followup_queue: String,
    pub followup_dlq: String,
    /// The stack secret (Secrets Manager) the keys derive from.
    pub secret: String,
}

impl Names {
    pub fn with_prefix(prefix: &str) -> Names {
        Names {
            table: format!("{prefix}-table"),
            ingest_queue: format!("{prefix}-ingest"),
            ingest_dlq: format!("{prefix}-ingest-dlq"),
            followup_queue: format!("{prefix}-followup"),
            followup_dlq: format!("{prefix}-followup-dlq"),
            secret: format!("{prefix}-keys"),
        }
    }
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("static schema")
}

pub fn key_schema() -> Vec<KeySchemaElement> {
    vec![key(PK, KeyType::Hash), key(SK, KeyType::Range)]
}

pub fn attribute_definitions() -> Vec<AttributeDefinition> {
    [PK, SK, GSI1PK, GSI1SK]
        .iter()
        .map(|n| {
            AttributeDefinition::builder()
                .attribute_name(*n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("static schema")
        })
        .collect()
}

/// The segment index. KEYS_ONLY: the reader fetches profiles by key, and an update
/// that leaves the index keys alone then costs no index write at all.
pub fn gsi1() -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash))
        .key_schema(key(GSI1SK, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .expect("static schema")
}

pub const BILLING_MODE: BillingMode = BillingMode::PayPerRequest;

pub fn ttl() -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .expect("static schema")
}
