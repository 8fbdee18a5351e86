//! The one SQS batch driver both consumers (ingest and the follow-up dispatcher) run:
//! the same rule for a record without a message id, the same way of running records
//! (a span per message id, failures logged and named in the partial-failure response),
//! and the same length of a rejected body kept for inspection.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use tracing::{warn, Instrument};

/// How much of a poison message's body its reject record keeps: enough to see what was
/// wrong, far below DynamoDB's 400 KB item limit.
pub const REJECT_BODY_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Without a message id no partial failure can be reported for the record (a
    /// transient failure would be acknowledged and lost); failing the whole invocation
    /// makes SQS retry the batch, which the dedupe makes safe.
    #[error("SQS record {index} has no messageId")]
    MissingMessageId { index: usize },
}

/// An event of `(message id, body)` records, as Lambda hands one over: what tests,
/// benchmarks and local runs invoke the consumers with.
pub fn event(records: impl IntoIterator<Item = (Option<String>, String)>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records
        .into_iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = id;
            m.body = Some(body);
            m
        })
        .collect();
    event
}

/// The batch's (message id, body) pairs, or the first record without an id.
pub fn records(event: SqsEvent) -> Result<Vec<(String, String)>, BatchError> {
    event
        .records
        .into_iter()
        .enumerate()
        .map(
            |(index, r)| match r.message_id.filter(|id| !id.is_empty()) {
                Some(id) => Ok((id, r.body.unwrap_or_default())),
                None => Err(BatchError::MissingMessageId { index }),
            },
        )
        .collect()
}

/// The response that asks SQS to redeliver exactly these messages.
pub fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in ids {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        response.batch_item_failures.push(f);
    }
    response
}

/// What a batch came to: the outcome of every record that was handled, and the ids of
/// those that failed and must be redelivered.
#[derive(Debug)]
pub struct Driven<O> {
    pub done: Vec<O>,
    pub retry: Vec<String>,
}

impl<O> Driven<O> {
    /// The response that asks SQS to redeliver exactly the failed records.
    pub fn response(&self) -> SqsBatchResponse {
        failures(self.retry.iter().cloned())
    }
}

/// Time kept back from a Lambda's deadline for the response and the metrics line.
pub const DEADLINE_RESERVE: std::time::Duration = std::time::Duration::from_secs(3);

/// The instant a batch must be done by: the invocation's deadline (`Context::deadline`,
/// milliseconds since the epoch) less [`DEADLINE_RESERVE`]. Work not finished by then
/// goes back to SQS as batch-item failures instead of timing out the whole batch.
pub fn budget_until(deadline_ms: u64) -> tokio::time::Instant {
    let deadline = std::time::UNIX_EPOCH + std::time::Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(DEADLINE_RESERVE);
    tokio::time::Instant::now() + left
}

/// The error text of a record the batch's time budget did not reach or finish.
pub const OUT_OF_TIME: &str = "the batch's time budget ran out before this record finished";

/// Run a batch's records: `units` concurrently (at most `concurrency` at a time), the
/// records of one unit in order, each inside a span with its message id. A record
/// whose `run` fails is logged with its id and the error's text, and retried by SQS;
/// so is one not started, or not finished, by `deadline` (abandoning a record midway is
/// a crash at an await point, which every store protocol here survives).
///
/// Ingest makes one unit per customer (a burst from one customer costs no version
/// conflicts inside the batch); the dispatcher one unit for the batch (two intents for
/// one customer meet the caps in order instead of racing).
pub async fn drive<T, O, E, F, Fut>(
    units: Vec<Vec<(String, T)>>,
    concurrency: usize,
    deadline: Option<tokio::time::Instant>,
    run: F,
) -> Driven<O>
where
    F: Fn(String, T) -> Fut,
    Fut: std::future::Future<Output = Result<O, E>>,
    E: std::fmt::Display,
{
    let run = &run;
    let results: Vec<(String, Result<O, String>)> = stream::iter(units)
        .map(|unit| async move {
            let mut out = Vec::with_capacity(unit.len());
            for (id, item) in unit {
                let span = tracing::info_span!("record", message_id = %id);
                let result: Result<O, String> = match deadline {
                    Some(d) if tokio::time::Instant::now() >= d => Err(OUT_OF_TIME.to_owned()),
                    Some(d) => {
                        match tokio::time::timeout_at(d, run(id.clone(), item).instrument(span))
                            .await
                        {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(_) => Err(OUT_OF_TIME.to_owned()),
                        }
                    }
                    None => run(id.clone(), item)
                        .instrument(span)
                        .await
                        .map_err(|e| e.to_string()),
                };
                out.push((id, result));
            }
            out
        })
        .buffer_unordered(concurrency.max(1))
        .flat_map(stream::iter)
        .collect()
        .await;
    let mut driven = Driven {
        done: Vec::with_capacity(results.len()),
        retry: Vec::new(),
    };
    for (id, result) in results {
        match result {
            Ok(outcome) => driven.done.push(outcome),
            Err(e) => {
                warn!(message_id = %id, error = %e, "record will be retried");
                driven.retry.push(id);
            }
        }
    }
    driven
}

/// The start of `body`, at most `REJECT_BODY_BYTES`, cut on a character boundary.
pub fn reject_body(body: &str) -> String {
    let mut end = body.len().min(REJECT_BODY_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_id_is_named_and_bodies_are_cut_on_a_char_boundary() {
        let e = event(["a", "", "c"].map(|id| (Some(id.to_owned()), "{}".to_owned())));
        assert!(matches!(
            records(e),
            Err(BatchError::MissingMessageId { index: 1 })
        ));
        let e = event([(Some("a".to_owned()), "{}".to_owned())]);
        assert_eq!(records(e).unwrap(), [("a".to_owned(), "{}".to_owned())]);

        let body = "é".repeat(REJECT_BODY_BYTES);
        let cut = reject_body(&body);
        assert!(cut.len() <= REJECT_BODY_BYTES && cut.len() >= REJECT_BODY_BYTES - 1);
        assert_eq!(reject_body("short"), "short");
        let r = failures(["x".to_owned()]);
        assert_eq!(r.batch_item_failures[0].item_identifier, "x");
    }

    #[test]
    fn units_keep_their_order_and_failures_are_named_for_redelivery() {
        use std::sync::Mutex;
        let seen = Mutex::new(Vec::new());
        let units = vec![
            vec![
                ("a1".to_owned(), 1),
                ("a2".to_owned(), 2),
                ("a3".to_owned(), 3),
            ],
            vec![("b1".to_owned(), 10)],
            vec![("c1".to_owned(), 20), ("c2".to_owned(), 21)],
        ];
        let driven = futures::executor::block_on(drive(units, 2, None, |id: String, n: i32| {
            seen.lock().unwrap().push(id.clone());
            async move {
                if n % 2 == 0 {
                    Ok(n * 100)
                } else {
                    Err(format!("odd {n}"))
                }
            }
        }));
        let mut done = driven.done.clone();
        done.sort();
        assert_eq!(done, [200, 1000, 2000]);
        let mut retry = driven.retry.clone();
        retry.sort();
        assert_eq!(retry, ["a1", "a3", "c2"]);
        let ids: Vec<_> = driven
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids.len(), 3);
        let seen = seen.into_inner().unwrap();
        let pos = |id: &str| seen.iter().position(|s| s == id).unwrap();
        assert!(
            pos("a1") < pos("a2") && pos("a2") < pos("a3"),
            "a unit runs in order: {seen:?}"
        );
        assert!(pos("c1") < pos("c2"));
    }

    #[tokio::test]
    async fn records_the_time_budget_does_not_reach_or_finish_are_retried_not_lost() {
        // GIVEN a budget of 200 ms and three records in one unit: quick, slow, quick
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        let started = std::sync::Mutex::new(Vec::new());
        let units = vec![vec![
            ("quick".to_owned(), 0u64),
            ("slow".to_owned(), 60_000),
            ("after".to_owned(), 0),
        ]];
        // WHEN the batch runs
        let driven = drive(units, 1, Some(deadline), |id: String, ms: u64| {
            started.lock().unwrap().push(id);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Ok::<_, String>(ms)
            }
        })
        .await;
        // THEN the quick one is done, the slow one was cut at the deadline, the last
        // never started; both go back to SQS
        assert_eq!(driven.done, [0]);
        assert_eq!(driven.retry, ["slow", "after"]);
        assert_eq!(*started.lock().unwrap(), ["quick", "slow"]);
    }
}
