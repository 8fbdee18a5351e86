//! What both SQS consumers (ingest and the follow-up dispatcher) share about a batch:
//! the same rule for a record without a message id, the same partial-failure response,
//! and the same length of a rejected body kept for inspection.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

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
    use aws_lambda_events::event::sqs::SqsMessage;

    #[test]
    fn a_record_without_id_is_named_and_bodies_are_cut_on_a_char_boundary() {
        let msg = |id: Option<&str>| {
            let mut m = SqsMessage::default();
            m.message_id = id.map(str::to_owned);
            m.body = Some("{}".into());
            m
        };
        let mut e = SqsEvent::default();
        e.records = vec![msg(Some("a")), msg(Some("")), msg(Some("c"))];
        assert!(matches!(
            records(e),
            Err(BatchError::MissingMessageId { index: 1 })
        ));
        let mut e = SqsEvent::default();
        e.records = vec![msg(Some("a"))];
        assert_eq!(records(e).unwrap(), [("a".to_owned(), "{}".to_owned())]);

        let body = "é".repeat(REJECT_BODY_BYTES);
        let cut = reject_body(&body);
        assert!(cut.len() <= REJECT_BODY_BYTES && cut.len() >= REJECT_BODY_BYTES - 1);
        assert_eq!(reject_body("short"), "short");
        let r = failures(["x".to_owned()]);
        assert_eq!(r.batch_item_failures[0].item_identifier, "x");
    }
}
