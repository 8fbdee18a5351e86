//! Lambda entry point: API Gateway HTTP API (payload 2.0) -> feedloop query routes. The
//! same binary serves the public unsubscribe function (`ROUTES=public`): its own
//! grants and throttle, no second build.

use feedloop_aws::setup;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let (api, routes) = feedloop_api_fn::api_from_env().await?;
    let api = &api;
    run(service_fn(move |req: Request| {
        feedloop_api_fn::respond_for(routes, api, req)
    }))
    .await
}
