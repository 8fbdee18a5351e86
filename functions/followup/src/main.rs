//! Lambda entry point: follow-up intents (SQS) -> guards, atomic claim, SES v2 / SNS
//! (or dry run) -> follow-up history; partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use feedloop_aws::followups::AwsDelivery;
use feedloop_aws::{setup, DynamoStore, SqsQueue};
use feedloop_core::followup::templates::Templates;
use feedloop_followup::config::FollowUpConfig;
use feedloop_followup::Dispatcher;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = FollowUpConfig::from_env()?;
    let sdk = setup::sdk_config(std::env::var("AWS_ENDPOINT_URL").ok().as_deref(), None).await;
    let dispatcher = Dispatcher {
        store: DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
            config.retention_days,
        ),
        deliver: AwsDelivery {
            ses: aws_sdk_sesv2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            from: config.email_from.clone().unwrap_or_default(),
        },
        requeue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.queue_url, 0),
        templates: Templates::default_catalog(),
        policy: config.policy,
        mode: config.mode,
        suppression_salt: config.suppression_salt,
        clock: Arc::new(chrono::Utc::now),
    };
    let dispatcher = &dispatcher;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, report) = dispatcher.handle(event.payload).await;
        println!("{}", report.emf(chrono::Utc::now()));
        Ok::<_, Error>(response)
    }))
    .await
}
