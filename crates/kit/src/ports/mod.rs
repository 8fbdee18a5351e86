//! Every port a service needs, with the records that cross between services. They
//! live here, not in the service that happened to need them first, so the services
//! stay peers: ingest, the dispatcher and the query side each depend on the kit and
//! never on one another. The in-memory adapters are in `feedloop-memory`, the AWS
//! ones in `feedloop-aws`.

pub mod followup;
pub mod ingest;
pub mod query;

/// Feedback items double as dedupe records: they must outlive a message kept in the
/// DLQ (14 days, the template's retention), or a redrive applies it twice. Every
/// service that writes with a TTL checks its `RETENTION_DAYS` against this.
pub const MIN_RETENTION_DAYS: u32 = 15;
