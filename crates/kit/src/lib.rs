//! The service kit: the few things the ingest service, the follow-up dispatcher, the
//! API and the CLI all need, in one place so they cannot drift apart. No AWS SDK.

pub mod batch;
pub mod env;
pub mod ports;
pub mod rng;

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The one clock type: the Lambdas pass `Utc::now`, tests and the replay a fixed or
/// simulated time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How a failed store (or queue) call is classified: it decides between a batch-item
/// failure (retry) and a recorded, acknowledged failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The store asked us to slow down; retrying later will work.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Network, timeout, 5xx: retrying will probably work.
    #[error("transient store failure: {0}")]
    Transient(String),
    /// The request itself is wrong (item too large, bad schema); retrying will not help.
    #[error("store rejected the request: {0}")]
    Permanent(String),
}

/// A report of `u32` counters, each declared with the CloudWatch metric it is emitted
/// as (`field => "Metric"`; a counter without one is reported but not emitted), so a
/// counter and its metric cannot drift apart. Generates the struct and `metrics()`.
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* $field:ident $(=> $metric:literal)?),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: u32),+
        }

        impl $name {
            /// Every emitted counter with its metric name, in declaration order.
            pub fn metrics(&self) -> Vec<(&'static str, u32)> {
                vec![$($(($metric, self.$field),)?)+]
            }
        }
    };
}

/// One CloudWatch Embedded Metric Format line (namespace `feedloop`, dimension
/// `Function`): CloudWatch turns it into metrics without an API call.
pub fn emf_line(function: &str, metrics: &[(&str, u32)], now: DateTime<Utc>) -> String {
    let mut v = serde_json::json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "feedloop",
                "Dimensions": [["Function"]],
                "Metrics": metrics.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "Function": function,
    });
    for (name, value) in metrics {
        v[*name] = serde_json::json!(value);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::counters! {
        #[derive(Default)]
        pub struct Example {
            seen => "Seen",
            /// Kept for the report only.
            ignored,
            failed => "Failed",
        }
    }

    #[test]
    fn counters_emit_the_declared_metrics_in_order_and_skip_the_unmetered() {
        let e = Example {
            seen: 3,
            ignored: 7,
            failed: 1,
        };
        assert_eq!(e.metrics(), [("Seen", 3), ("Failed", 1)]);
        assert_eq!(e.ignored, 7);
    }

    #[test]
    fn emf_names_every_metric_and_carries_its_value() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&emf_line(
            "ingest",
            &[("Processed", 3), ("Rejected", 0)],
            now,
        ))
        .unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "Rejected"
        );
        assert_eq!(
            (v["Processed"].as_u64(), v["Function"].as_str()),
            (Some(3), Some("ingest"))
        );
    }
}
