//! Lambda entry point: SQS batch -> feedloop ingest -> DynamoDB, partial batch failures.

use std::path::Path;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use feedloop_aws::followups::AwsFollowUps;
use feedloop_aws::{setup, DynamoStore};
use feedloop_core::analysis::Analyzer;
use feedloop_core::neural::SharedEncoder;
use feedloop_ingest::config::IngestConfig;
use feedloop_ingest::{Ingest, Settings};
use feedloop_neural::MiniLm;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = IngestConfig::from_env()?;
    // The encoder (and the taxonomy's exemplars) load once per cold start.
    let encoder = match (&config.model_dir, config.mode.needs_encoder()) {
        (Some(dir), true) => Some(Arc::new(MiniLm::load(Path::new(dir))?) as SharedEncoder),
        _ => None,
    };
    let analyzer = Analyzer::build(config.mode, config.load_taxonomy()?, encoder)?;
    // Region and credentials come from the Lambda environment; AWS_ENDPOINT_URL points
    // the same binary at a local endpoint.
    let sdk = setup::sdk_config(std::env::var("AWS_ENDPOINT_URL").ok().as_deref(), None).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table_name,
        config.retention_days,
    );
    let settings = Settings {
        half_life_days: config.half_life_days,
        aggregate_shards: config.aggregate_shards,
        max_concurrency: config.max_concurrency,
        max_followup_age_hours: config.max_followup_age_hours,
    };
    let followups = AwsFollowUps {
        store: store.clone(),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        queue_url: config.followup_queue_url.clone(),
    };
    let ingest = Ingest::new(store, analyzer, settings, Arc::new(chrono::Utc::now))
        .with_followups(config.load_playbook()?, followups);
    let ingest = &ingest;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, report): (SqsBatchResponse, _) = ingest.handle(event.payload).await?;
        println!("{}", report.emf("ingest", chrono::Utc::now()));
        Ok::<_, Error>(response)
    }))
    .await
}
