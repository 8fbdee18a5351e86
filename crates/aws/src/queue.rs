//! SQS as a [`MessageQueue`]: the consumer side the Lambda poller uses.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use feedloop_kit::ports::ingest::{MessageQueue, QueueMessage, StoreError};

use crate::store::classify;

/// What SQS did with each entry of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSent {
    pub sent: Vec<String>,
    pub failed: Vec<EntryFailure>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntryFailure {
    pub id: String,
    pub reason: String,
    /// The entry itself is wrong (too large, bad characters): resending will not help.
    pub sender_fault: bool,
}

/// A message looked at, not taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Peeked {
    pub message_id: String,
    pub receive_count: Option<u32>,
    pub body: String,
}

fn messages(ms: &[aws_sdk_sqs::types::Message]) -> Vec<QueueMessage> {
    ms.iter()
        .filter_map(|m| {
            Some(QueueMessage {
                message_id: m.message_id()?.to_owned(),
                receipt_handle: m.receipt_handle()?.to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    wait_secs: i32,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>, wait_secs: i32) -> SqsQueue {
        SqsQueue {
            client,
            url: url.into(),
            wait_secs,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send bodies in batches of 10 (the SQS maximum); returns how many were sent.
    pub async fn send_all(&self, bodies: &[String]) -> Result<usize, StoreError> {
        let mut sent = 0;
        for (b, chunk) in bodies.chunks(10).enumerate() {
            let entries: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| (format!("m{b}-{i}"), body.clone()))
                .collect();
            let out = self.send_batch(&entries).await?;
            if !out.failed.is_empty() {
                return Err(StoreError::Transient(format!(
                    "{} entries failed to send",
                    out.failed.len()
                )));
            }
            sent += out.sent.len();
        }
        Ok(sent)
    }

    /// Send one batch (at most 10 entries) of (entry id, body); SQS answers per entry.
    pub async fn send_batch(&self, entries: &[(String, String)]) -> Result<BatchSent, StoreError> {
        let entries = entries
            .iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .build()
                    .map_err(|e| StoreError::Permanent(format!("building send entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("send message batch", &e))?;
        Ok(BatchSent {
            sent: out.successful().iter().map(|s| s.id().to_owned()).collect(),
            failed: out
                .failed()
                .iter()
                .map(|f| EntryFailure {
                    id: f.id().to_owned(),
                    reason: format!("{}: {}", f.code(), f.message().unwrap_or("")),
                    sender_fault: f.sender_fault(),
                })
                .collect(),
        })
    }

    /// Look at up to 10 messages without taking them: received with a zero visibility
    /// timeout, so they stay visible to everyone else.
    pub async fn peek(&self, max: usize) -> Result<Vec<Peeked>, StoreError> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(0)
            .message_system_attribute_names(A::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| classify("receive messages", &e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Peeked {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&A::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok()),
                body: m.body().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// Take up to 10 messages for `visibility_secs` (the caller acks what it handled).
    pub async fn take(
        &self,
        max: usize,
        visibility_secs: i32,
    ) -> Result<Vec<QueueMessage>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(visibility_secs)
            .send()
            .await
            .map_err(|e| classify("receive messages", &e))?;
        Ok(messages(out.messages()))
    }

    /// Approximate number of visible + in-flight messages.
    pub async fn depth(&self) -> Result<(i64, i64), StoreError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| classify("get queue attributes", &e))?;
        let get = |a: A| {
            out.attributes()
                .and_then(|m| m.get(&a))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(A::ApproximateNumberOfMessages),
            get(A::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

impl MessageQueue for SqsQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(self.wait_secs)
            .send()
            .await
            .map_err(|e| classify("receive messages", &e))?;
        Ok(messages(out.messages()))
    }

    async fn ack(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("d{i}"))
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .map_err(|e| StoreError::Permanent(format!("building delete entry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("delete message batch", &e))?;
            if !out.failed().is_empty() {
                return Err(StoreError::Transient(format!(
                    "{} deletes failed",
                    out.failed().len()
                )));
            }
        }
        Ok(())
    }
}
