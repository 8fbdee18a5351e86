//! Lambda entry point: follow-up intents (SQS) -> guards, atomic claim, SES v2 / SNS
//! (or dry run) -> follow-up history; partial batch failures. SES bounce and complaint
//! notifications (SNS -> SQS) -> suppression list.

use std::sync::Arc;

use feedloop_aws::{services, setup};
use feedloop_followup::config::FollowUpConfig;
use feedloop_followup::Incoming;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = FollowUpConfig::from_env()?;
    let sdk = setup::lambda_sdk_config().await;
    let (dispatcher, notifications) =
        services::followup(&sdk, &config, Arc::new(chrono::Utc::now)).await?;
    let (dispatcher, notifications) = (&dispatcher, &notifications);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = feedloop_kit::batch::budget_until(event.context.deadline);
        match Incoming::from_value(event.payload)? {
            Incoming::Intents(e) => {
                let (response, report) = dispatcher.handle_within(e, Some(deadline)).await?;
                println!("{}", report.emf(chrono::Utc::now()));
                Ok::<_, Error>(serde_json::to_value(response)?)
            }
            Incoming::QueuedNotifications(e) => {
                let (response, report) = notifications.handle_queue(&e).await;
                println!("{}", report.emf(chrono::Utc::now()));
                Ok(serde_json::to_value(response)?)
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
