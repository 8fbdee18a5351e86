//! What the Lambda service does between SQS and the function: receive a batch, invoke,
//! delete what succeeded. Used by the local runner and the integration tests so they
//! exercise the same partial-batch contract as production.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::handler::{BatchReport, HandlerError, Ingest};
use feedloop_kit::ports::ingest::{
    FollowUpSink, MessageQueue, ProfileStore, QueueMessage, RejectStore, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("queue: {0}")]
    Queue(#[from] StoreError),
    #[error("handler: {0}")]
    Handler(#[from] HandlerError),
}

/// The event Lambda would hand the function for these received messages.
pub fn to_event(messages: &[QueueMessage]) -> SqsEvent {
    let records = messages
        .iter()
        .map(|m| (Some(m.message_id.clone()), m.body.clone()));
    let mut event = feedloop_kit::batch::event(records);
    for (r, m) in event.records.iter_mut().zip(messages) {
        r.receipt_handle = Some(m.receipt_handle.clone());
        r.event_source = Some("aws:sqs".into());
    }
    event
}

/// Messages of the batch that the response does not list as failed.
pub fn succeeded(messages: &[QueueMessage], response: &SqsBatchResponse) -> Vec<QueueMessage> {
    messages
        .iter()
        .filter(|m| {
            !response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == m.message_id)
        })
        .cloned()
        .collect()
}

/// One receive-invoke-delete round. Returns how many messages were received.
pub async fn poll_once<S, F, Q>(
    queue: &Q,
    ingest: &Ingest<S, F>,
    batch_size: usize,
) -> Result<(usize, BatchReport), PollError>
where
    S: ProfileStore + RejectStore,
    F: FollowUpSink,
    Q: MessageQueue,
{
    let messages = queue.receive(batch_size).await?;
    if messages.is_empty() {
        return Ok((0, BatchReport::default()));
    }
    let (response, report) = ingest.handle(to_event(&messages)).await?;
    let done = succeeded(&messages, &response);
    if !done.is_empty() {
        queue.ack(&done).await?;
    }
    Ok((messages.len(), report))
}
