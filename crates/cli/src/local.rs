//! `feedloop local up|run`: the real ingest function against the local AWS endpoint.
//! `run` plays the Lambda service: it receives real SQS batches from the local queue,
//! invokes the function under `cargo lambda watch` with them, and deletes what the
//! function did not report as failed.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use feedloop_aws::schema::Names;
use feedloop_aws::{setup, DynamoStore, SqsQueue};
use feedloop_core::profile::Segment;
use feedloop_ingest::poller::{succeeded, to_event};
use feedloop_kit::ports::ingest::{MessageQueue, ProfileStore};
use feedloop_kit::ports::query::{Member, QueryStore};

use crate::demo;

pub fn names(prefix: &str) -> Names {
    Names::with_prefix(prefix)
}

/// Create the table and queues and write the functions' environment file.
pub async fn up(endpoint: &str, prefix: &str, env_file: &Path) -> Result<()> {
    let sdk = setup::sdk_config(Some(endpoint), Some("us-east-1")).await;
    let names = names(prefix);
    let urls = setup::create_resources(&sdk, &names)
        .await
        .with_context(|| format!("creating resources on {endpoint}"))?;
    let secret_arn = feedloop_aws::secrets::ensure_local_secret(&sdk, &names.secret)
        .await
        .with_context(|| format!("creating the stack secret on {endpoint}"))?;
    let env = function_env(endpoint, &names, &urls.followup, &secret_arn);
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    if let Some(dir) = env_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(env_file, text).with_context(|| format!("writing {}", env_file.display()))?;
    println!("table       {}", names.table);
    println!("ingest      {}", urls.ingest);
    println!("ingest DLQ  {}", urls.ingest_dlq);
    println!("follow-up   {}", urls.followup);
    println!("function environment written to {}", env_file.display());
    Ok(())
}

/// The environment the template gives both functions, for the local stack: what
/// `cargo lambda watch` runs with and what `drain` builds the handlers from.
/// The multilingual encoder's folder for the local functions, empty (English only)
/// when it is not installed.
fn multilingual_dir() -> String {
    match feedloop_neural::resolve_multilingual_dir(None) {
        Ok(dir) => std::fs::canonicalize(&dir)
            .unwrap_or(dir)
            .display()
            .to_string(),
        Err(e) => {
            eprintln!("note: the local functions score English only; {e}");
            String::new()
        }
    }
}

fn function_env(
    endpoint: &str,
    names: &Names,
    followup_url: &str,
    secret: &str,
) -> Vec<(&'static str, String)> {
    // The functions run as deployed: hybrid when the model is installed; otherwise the
    // lexicon, and the note says how to get the model.
    let (mode, model_dir) = match feedloop_neural::resolve_model_dir(None) {
        Ok(dir) => (
            "hybrid",
            std::fs::canonicalize(&dir)
                .unwrap_or(dir)
                .display()
                .to_string(),
        ),
        Err(e) => {
            eprintln!("note: the local functions run in lexicon mode; {e}");
            ("lexicon", String::new())
        }
    };
    vec![
        ("TABLE_NAME", names.table.clone()),
        ("FOLLOWUP_QUEUE_URL", followup_url.to_owned()),
        ("TAXONOMY", "builtin:small-business".into()),
        ("SENTIMENT_MODE", mode.into()),
        ("FEEDLOOP_MODEL_DIR", model_dir),
        ("FEEDLOOP_MULTILINGUAL_MODEL_DIR", multilingual_dir()),
        ("HALF_LIFE_DAYS", "30".into()),
        ("RETENTION_DAYS", "365".into()),
        ("AGGREGATE_SHARDS", "8".into()),
        ("MAX_CONCURRENCY", "8".into()),
        ("MAX_FOLLOWUP_AGE_HOURS", "72".into()),
        ("PLAYBOOK", "builtin:default".into()),
        // The follow-up function's (one file serves both functions).
        ("DELIVERY_MODE", "dry-run".into()),
        ("EMAIL_FROM", "".into()),
        ("REPLY_TO", "".into()),
        ("SMS_COUNTRIES", "GB,US".into()),
        ("SMS_TO_NEW_NUMBERS", "true".into()),
        ("STAFF_EVENT_BUS", "default".into()),
        ("POSTAL_ADDRESS", "".into()),
        ("COMPANY_NAME", crate::demo::COMPANY.into()),
        ("GLOBAL_CAP_DAYS", "7".into()),
        ("PLAYBOOK_CAP_DAYS", "30".into()),
        ("QUIET_HOURS", "21:00-08:00".into()),
        ("DEFAULT_TIMEZONE", "Europe/London".into()),
        ("SES_CONFIGURATION_SET", "".into()),
        ("SECRET_ARN", secret.to_owned()),
        ("UNSUBSCRIBE_URL", "".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("RUST_LOG", "info".into()),
    ]
}

fn invoke(function: &str, port: u16, event_file: &Path) -> Result<SqsBatchResponse> {
    let out = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--output-format",
            "json",
            "--data-file",
        ])
        .arg(event_file)
        .output()
        .context(
            "running `cargo lambda invoke` (is cargo-lambda on PATH? `make local-run` sets it up)",
        )?;
    if !out.status.success() {
        bail!(
            "cargo lambda invoke failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "function returned {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Send the demo feedback to the local queue and drive the function until it drains.
pub async fn run(
    endpoint: &str,
    prefix: &str,
    function: &str,
    port: u16,
    work_dir: &Path,
) -> Result<()> {
    let sdk = setup::sdk_config(Some(endpoint), Some("us-east-1")).await;
    let names = names(prefix);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = feedloop_aws::setup::queue_url(&sdk, &names.ingest_queue)
        .await
        .with_context(|| {
            format!(
                "queue {} not found: run `make local-up` first",
                names.ingest_queue
            )
        })?;
    let queue = SqsQueue::new(sqs, &url, 0);
    let bodies: Vec<String> = demo::envelopes().iter().map(|e| e.to_string()).collect();
    let sent = queue
        .send_all(&bodies)
        .await
        .context("sending demo feedback")?;
    println!("sent {sent} demo messages to {url}");

    std::fs::create_dir_all(work_dir)?;
    let event_file = work_dir.join("sqs-event.json");
    let (mut batches, mut acked, mut failed) = (0, 0, 0);
    loop {
        let messages = queue
            .receive(10)
            .await
            .context("receiving from the local queue")?;
        if messages.is_empty() {
            break;
        }
        batches += 1;
        std::fs::write(&event_file, serde_json::to_vec(&to_event(&messages))?)?;
        let response = invoke(function, port, &event_file)?;
        let done = succeeded(&messages, &response);
        failed += messages.len() - done.len();
        acked += done.len();
        queue
            .ack(&done)
            .await
            .context("deleting processed messages")?;
        eprint!("\rbatches {batches}, messages acknowledged {acked}, reported failed {failed}   ");
    }
    eprintln!();
    print_profiles(&sdk, &names.table).await
}

/// Every member of a segment, page by page.
async fn segment_members(store: &DynamoStore, segment: Segment) -> Result<Vec<Member>> {
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .segment_page(segment, 100, after)
            .await
            .context("querying the segment index")?;
        all.extend(page.items);
        after = page.next;
        if after.is_none() {
            return Ok(all);
        }
    }
}

pub async fn print_profiles(sdk: &SdkConfig, table: &str) -> Result<()> {
    let store = DynamoStore::for_queries(aws_sdk_dynamodb::Client::new(sdk), table);
    println!(
        "\n{:<10} {:<18} {:<10} {:>5} {:>6} {:>9} {:>5}  reasons",
        "customer", "name", "segment", "fb", "risk", "sentiment", "NPS"
    );
    let mut total = 0;
    for segment in Segment::ALL {
        for member in segment_members(&store, segment).await? {
            let id = member.customer_id.as_str();
            let Some(p) = store
                .load_profile(&member.customer_id)
                .await
                .context("reading profile")?
            else {
                continue;
            };
            let p = p.value;
            let risk = p.churn_risk();
            total += 1;
            println!(
                "{:<10} {:<18} {:<10} {:>5} {:>6.2} {:>9} {:>5}  {}",
                id,
                p.contact
                    .as_ref()
                    .and_then(|c| c.value.name.clone())
                    .unwrap_or_default(),
                segment.as_str(),
                p.feedback_count,
                risk.score,
                p.decayed_sentiment()
                    .map_or("-".into(), |d| format!("{d:+.3}")),
                p.nps
                    .last
                    .as_ref()
                    .map_or("-".into(), |l| l.value.to_string()),
                risk.reasons.join("; ")
            );
        }
    }
    println!("{total} profiles in {table}");
    Ok(())
}

/// Run the ingest and follow-up handlers in this process over the local queues until
/// both are empty: the functions' own services (`feedloop_aws::services`) built from
/// the environment `up` writes for them, without `cargo lambda watch` (follow-ups in
/// dry run, so nothing is sent).
pub async fn drain(endpoint: &str, prefix: &str) -> Result<()> {
    use feedloop_followup::config::FollowUpConfig;
    use feedloop_ingest::config::IngestConfig;
    use feedloop_ingest::poller::poll_once;

    let sdk = setup::sdk_config(Some(endpoint), Some("us-east-1")).await;
    let names = names(prefix);
    let ingest_url = crate::target::queue_url(&sdk, &names.ingest_queue).await?;
    let followup_url = crate::target::queue_url(&sdk, &names.followup_queue).await?;
    let env: std::collections::HashMap<&str, String> =
        function_env(endpoint, &names, &followup_url, &names.secret)
            .into_iter()
            .collect();
    let lookup = |k: &str| env.get(k).cloned();
    let config = IngestConfig::from_lookup(lookup)?;
    let dirs = feedloop_neural::ModelDirs {
        english: config.model_dir.as_deref().map(Path::new),
        multilingual: config.multilingual_model_dir.as_deref().map(Path::new),
    };
    let analyzer = feedloop_neural::analyzer(config.mode, config.load_taxonomy()?, dirs)?;
    let clock: feedloop_kit::Clock = std::sync::Arc::new(chrono::Utc::now);
    let ingest = feedloop_aws::services::ingest(&sdk, &config, analyzer, clock.clone())?;
    let (dispatcher, _) =
        feedloop_aws::services::followup(&sdk, &FollowUpConfig::from_lookup(lookup)?, clock)
            .await
            .context("the local stack's secret (`feedloop local up` creates it)")?;

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let q = SqsQueue::new(sqs.clone(), &ingest_url, 0);
    let (mut processed, mut rejected, mut duplicate) = (0, 0, 0);
    loop {
        let (n, r) = poll_once(&q, &ingest, 10).await.context("ingest")?;
        if n == 0 {
            break;
        }
        processed += r.processed;
        rejected += r.rejected;
        duplicate += r.duplicate;
        eprint!("\ringest: {processed} applied, {rejected} rejected, {duplicate} duplicate");
    }
    eprintln!();
    let fq = SqsQueue::new(sqs, &followup_url, 0);
    let mut total = feedloop_followup::DispatchReport::default();
    loop {
        let msgs = fq.receive(10).await.context("follow-up queue")?;
        if msgs.is_empty() {
            break;
        }
        let (resp, r) = dispatcher.handle(to_event(&msgs)).await?;
        fq.ack(&succeeded(&msgs, &resp))
            .await
            .context("follow-up queue")?;
        total.dry_run += r.dry_run;
        total.skipped += r.skipped;
        total.deferred += r.deferred;
    }
    println!(
        "ingest: {processed} applied, {rejected} rejected, {duplicate} duplicate; follow-ups (dry run): {} recorded, {} skipped, {} deferred (back on the queue with a delay)",
        total.dry_run, total.skipped, total.deferred
    );
    Ok(())
}
