//! Lambda entry point: API Gateway HTTP API (payload 2.0) -> feedloop query routes.

use std::sync::Arc;

use feedloop_api::config::ApiConfig;
use feedloop_api::Api;
use feedloop_aws::{secrets, setup, DynamoStore};
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let config = ApiConfig::from_env()?;
    let sdk = setup::sdk_config(std::env::var("AWS_ENDPOINT_URL").ok().as_deref(), None).await;
    let keys = secrets::stack_keys(&sdk, &config.secret_arn).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name, 365)
        .with_aggregate_shards(config.aggregate_shards);
    let api = Api {
        store,
        keys,
        clock: Arc::new(chrono::Utc::now),
    };
    let api = &api;
    run(service_fn(move |req: Request| {
        feedloop_api_fn::respond(api, req)
    }))
    .await
}
