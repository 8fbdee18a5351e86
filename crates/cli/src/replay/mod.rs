//! The demo and `feedloop process`: the real ingest service and follow-up dispatcher
//! over the in-memory store on a simulated clock (`sim`), read back through the API's
//! query service.

mod sim;
#[cfg(test)]
mod sim_tests;

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use feedloop_api::queries::{Queries, Range};
use feedloop_core::analysis::Analyzer;
use feedloop_core::followup::plan::DispatchPolicy;
use feedloop_core::followup::{Playbook, DEFAULT_MAX_AGE_HOURS};
use feedloop_core::keys::StackKeys;
use feedloop_ingest::{Processed, Settings};
use feedloop_memory::MemoryStore;
use sim::Replay;

use crate::report::{self, RejectLine, RunSummary};

pub struct Run {
    /// The ingest service's answer per message, by message name.
    pub outcomes: Vec<(String, Processed)>,
    pub summary: RunSummary,
    /// For the dashboard (built with the `aws` feature only).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub queries: Queries<MemoryStore>,
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub range: Range,
}

impl Run {
    /// Input that never became a message (a line that is not UTF-8).
    pub fn add_unreadable(&mut self, source: &str, reason: &str) {
        let o = Processed::Rejected {
            reason: reason.to_owned(),
        };
        self.outcomes.push((source.to_owned(), o));
        self.summary.messages += 1;
        self.summary.rejected += 1;
        self.summary.rejects.push(RejectLine {
            source: source.to_owned(),
            reason: reason.to_owned(),
        });
    }
}

/// What a replay runs with.
pub struct RunSpec<'a> {
    pub analyzer: Analyzer,
    pub half_life_days: f64,
    /// The business the follow-ups speak for.
    pub company: Option<&'a str>,
    /// When the result is read; a message is never replayed after it.
    pub now: DateTime<Utc>,
}

impl RunSpec<'static> {
    /// The embedded demo's: its shop, its fixed clock.
    pub fn demo(analyzer: Analyzer) -> RunSpec<'static> {
        RunSpec {
            analyzer,
            half_life_days: 30.0,
            company: Some(crate::demo::COMPANY),
            now: crate::demo::demo_now(),
        }
    }
}

/// Replay `messages` (name, body) as if each arrived when it happened, then read the
/// result at `spec.now`. Reports cover the days of the messages. For callers without
/// an async runtime (the demo, `process`); [`run_async`] is the same inside one.
pub fn run(spec: RunSpec<'_>, messages: &[(String, String)]) -> Result<Run> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_async(spec, messages))
}

pub async fn run_async(spec: RunSpec<'_>, messages: &[(String, String)]) -> Result<Run> {
    let RunSpec {
        analyzer,
        half_life_days,
        company,
        now,
    } = spec;
    let taxonomy = analyzer.taxonomy().clone();
    let times: Vec<_> = messages
        .iter()
        .filter_map(|(_, b)| sim::occurred_at(b, now))
        .collect();
    let first = times.iter().min().copied().unwrap_or(now);
    let range = Range {
        from: first.date_naive(),
        to: times.iter().max().copied().unwrap_or(now).date_naive(),
    };
    let policy = DispatchPolicy {
        company: company.map(str::to_owned),
        max_age_hours: DEFAULT_MAX_AGE_HOURS,
        ..DispatchPolicy::default()
    };
    let mut r = Replay::new(
        analyzer,
        Settings::local(half_life_days),
        Playbook::default_rules(),
        policy,
        first,
    );
    let processed = sim::replay_all(&mut r, messages, now)
        .await
        .context("the analyzer failed")?;
    r.finish().await.context("dispatching follow-ups")?;
    let outcomes: Vec<(String, Processed)> = messages
        .iter()
        .map(|(name, _)| name.clone())
        .zip(processed)
        .collect();
    let queries = Queries {
        store: r.store(),
        // Cursors and suppression hashes never leave this process.
        keys: StackKeys::derive("feedloop-embedded-run-keys-not-a-secret")?,
        clock: Arc::new(move || now),
    };
    let summary = report::summarize(&queries, &taxonomy, &outcomes, range).await?;
    Ok(Run {
        outcomes,
        summary,
        queries,
        range,
    })
}
