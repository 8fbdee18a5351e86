//! Lambda entry point: SQS batch -> feedloop ingest -> DynamoDB, partial batch failures.

use std::path::Path;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use feedloop_aws::{services, setup};
use feedloop_ingest::config::IngestConfig;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = IngestConfig::from_env()?;
    // The encoder (and the taxonomy's exemplars) load once per cold start.
    let dirs = feedloop_neural::ModelDirs {
        english: config.model_dir.as_deref().map(Path::new),
        multilingual: config.multilingual_model_dir.as_deref().map(Path::new),
    };
    let analyzer = feedloop_neural::analyzer(config.mode, config.load_taxonomy()?, dirs)?;
    let sdk = setup::lambda_sdk_config().await;
    let ingest = services::ingest(&sdk, &config, analyzer, Arc::new(chrono::Utc::now))?;
    let ingest = &ingest;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = feedloop_kit::batch::budget_until(event.context.deadline);
        let (response, report): (SqsBatchResponse, _) =
            ingest.handle_within(event.payload, Some(deadline)).await?;
        println!("{}", report.emf("ingest", chrono::Utc::now()));
        Ok::<_, Error>(response)
    }))
    .await
}
