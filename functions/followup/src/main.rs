//! Lambda entry point: follow-up intents (SQS) -> guards, atomic claim, SES v2 / SNS
//! (or dry run) -> follow-up history; partial batch failures. SES bounce and complaint
//! notifications (SNS) -> suppression list.

use std::sync::Arc;

use feedloop_aws::followups::AwsDelivery;
use feedloop_aws::{secrets, setup, DynamoStore, SqsQueue};
use feedloop_core::followup::templates::Templates;
use feedloop_followup::config::FollowUpConfig;
use feedloop_followup::notifications::Notifications;
use feedloop_followup::{Dispatcher, Incoming};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = FollowUpConfig::from_env()?;
    let sdk = setup::sdk_config(std::env::var("AWS_ENDPOINT_URL").ok().as_deref(), None).await;
    let keys = secrets::stack_keys(&sdk, &config.secret_arn).await?;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table_name,
        config.retention_days,
    );
    let notifications = Notifications {
        store: store.clone(),
        suppression_salt: keys.suppression_salt.clone(),
        clock: Arc::new(chrono::Utc::now),
    };
    let dispatcher = Dispatcher {
        store,
        deliver: AwsDelivery {
            ses: aws_sdk_sesv2::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            from: config.email_from.clone().unwrap_or_default(),
            configuration_set: config.configuration_set.clone(),
        },
        requeue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &config.queue_url, 0),
        templates: Templates::default_catalog(),
        policy: config.policy_with(&keys),
        mode: config.mode,
        suppression_salt: keys.suppression_salt,
        clock: Arc::new(chrono::Utc::now),
    };
    let (dispatcher, notifications) = (&dispatcher, &notifications);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        match Incoming::from_value(event.payload)? {
            Incoming::Intents(e) => {
                let (response, report) = dispatcher.handle(e).await?;
                println!("{}", report.emf(chrono::Utc::now()));
                Ok::<_, Error>(serde_json::to_value(response)?)
            }
            // A store error fails the invocation: SNS's asynchronous invoke retries it.
            Incoming::Notifications(e) => {
                let report = notifications.handle(&e).await?;
                println!("{}", report.emf(chrono::Utc::now()));
                Ok(Value::Null)
            }
        }
    }))
    .await
}
