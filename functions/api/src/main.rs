//! Lambda entry point: API Gateway HTTP API (payload 2.0) -> feedloop query routes.

use feedloop_aws::setup;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let api = feedloop_api_fn::api_from_env().await?;
    let api = &api;
    run(service_fn(move |req: Request| {
        feedloop_api_fn::respond(api, req)
    }))
    .await
}
