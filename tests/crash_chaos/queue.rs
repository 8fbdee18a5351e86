//! SQS with its delivery semantics, in memory, on tokio's paused clock.

use super::*;

pub(super) struct Stored {
    id: String,
    body: String,
    receives: u32,
}

#[derive(Default)]
pub(super) struct QueueState {
    ready: VecDeque<Stored>,
    /// By message id: the message, when it becomes visible again, its receipt.
    in_flight: BTreeMap<String, (Stored, tokio::time::Instant, String)>,
    dlq: Vec<Stored>,
    next: u64,
}

/// SQS as the Lambda poller sees it: a received message is invisible for
/// `VISIBILITY`, then visible again unless deleted with its latest receipt; the
/// fifth receive that is not deleted moves it to the dead-letter queue.
/// Clones are handles to the same queue.
#[derive(Default, Clone)]
pub(super) struct SimQueue(Arc<SimQueueState>);

impl std::ops::Deref for SimQueue {
    type Target = SimQueueState;
    fn deref(&self) -> &SimQueueState {
        &self.0
    }
}

#[derive(Default)]
pub(super) struct SimQueueState {
    state: Mutex<QueueState>,
    pub(super) received: AtomicU64,
    pub(super) redelivered: AtomicU64,
}

impl SimQueue {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn send(&self, body: String) {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("m-{}", s.next);
        s.ready.push_back(Stored {
            id,
            body,
            receives: 0,
        });
    }

    /// A message that becomes visible after `delay` (SQS `DelaySeconds`).
    pub(super) fn send_delayed(&self, body: String, delay: Duration) {
        let mut s = self.lock();
        s.next += 1;
        let id = format!("m-{}", s.next);
        let until = tokio::time::Instant::now() + delay;
        let m = Stored {
            id: id.clone(),
            body,
            receives: 0,
        };
        // No receipt was handed out: nobody can delete it before it is received.
        s.in_flight.insert(id, (m, until, String::new()));
    }

    /// How long until the next in-flight message becomes visible again.
    pub(super) fn next_due(&self) -> Duration {
        let s = self.lock();
        let now = tokio::time::Instant::now();
        s.in_flight
            .values()
            .map(|(_, until, _)| until.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(100))
    }

    /// Messages visible or in flight (the dead-letter queue aside).
    pub(super) fn outstanding(&self) -> usize {
        let s = self.lock();
        s.ready.len() + s.in_flight.len()
    }

    pub(super) fn take_dlq(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().dlq)
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    pub(super) fn expire(&self, s: &mut QueueState) {
        let now = tokio::time::Instant::now();
        let due: Vec<String> = s
            .in_flight
            .iter()
            .filter(|(_, (_, until, _))| *until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let (m, _, _) = s.in_flight.remove(&id).expect("listed above");
            if m.receives >= MAX_RECEIVES {
                s.dlq.push(m);
            } else {
                self.redelivered.fetch_add(1, Ordering::Relaxed);
                s.ready.push_back(m);
            }
        }
    }
}

impl MessageQueue for SimQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, StoreError> {
        let mut s = self.lock();
        self.expire(&mut s);
        let until = tokio::time::Instant::now() + VISIBILITY;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut m) = s.ready.pop_front() else {
                break;
            };
            m.receives += 1;
            s.next += 1;
            let receipt = format!("r-{}", s.next);
            out.push(QueueMessage {
                message_id: m.id.clone(),
                receipt_handle: receipt.clone(),
                body: m.body.clone(),
            });
            s.in_flight.insert(m.id.clone(), (m, until, receipt));
        }
        self.received.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    async fn ack(&self, messages: &[QueueMessage]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for m in messages {
            // A receipt from an earlier receive deletes nothing: the message was
            // handed to someone else meanwhile.
            if s.in_flight
                .get(&m.message_id)
                .is_some_and(|(_, _, r)| *r == m.receipt_handle)
            {
                s.in_flight.remove(&m.message_id);
            }
        }
        Ok(())
    }
}

impl Requeue for SimQueue {
    async fn requeue(&self, body: &str, delay: Duration) -> Result<(), StoreError> {
        self.send_delayed(body.to_owned(), delay);
        Ok(())
    }
}
