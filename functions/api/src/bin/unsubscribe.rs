//! Lambda entry point: the public unsubscribe route (GET confirm page, POST one-click)
//! of the HTTP API, apart from the IAM routes: it may only read and write profiles and
//! suppression entries, and a flood of junk tokens meets its throttle, not theirs.

use feedloop_aws::setup;
use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    setup::init_lambda_logging();
    let api = feedloop_api_fn::api_from_env().await?;
    let api = &api;
    run(service_fn(move |req: Request| {
        feedloop_api_fn::respond_public(api, req)
    }))
    .await
}
