//! The HTTP adapter: an API Gateway HTTP API request (payload 2.0) to the feedloop
//! routes and back. Kept out of `main.rs` so the sample events can be run through it.

use std::collections::HashMap;

pub use feedloop_api::config::Routes;
use feedloop_api::Api;
use feedloop_kit::ports::query::QueryStore;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};

/// The query service over the stack's table, from the function's environment, and which
/// routes this function serves (`ROUTES`: the staff API, or the public unsubscribe
/// function, which runs the same binary).
pub async fn api_from_env() -> Result<(Api<feedloop_aws::DynamoStore>, Routes), Error> {
    let config = feedloop_api::config::ApiConfig::from_env()?;
    let sdk = feedloop_aws::setup::lambda_sdk_config().await;
    let api =
        feedloop_aws::services::api(&sdk, &config, std::sync::Arc::new(chrono::Utc::now)).await?;
    Ok((api, config.routes))
}

/// The IAM principal API Gateway authenticated (SigV4); "unauthenticated" on the
/// public unsubscribe route and anywhere the context has none.
pub fn caller(req: &Request) -> String {
    let iam = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref().and_then(|a| a.iam.clone()),
        _ => None,
    };
    iam.and_then(|i| i.user_arn.or(i.caller_id))
        .unwrap_or_else(|| "unauthenticated".to_owned())
}

pub async fn respond<S: QueryStore>(api: &Api<S>, req: Request) -> Result<Response<Body>, Error> {
    // Who changed or erased a customer's data, for the audit trail: the staff
    // principal, never the customer's details.
    if matches!(req.method().as_str(), "DELETE" | "PUT") {
        tracing::info!(caller = %caller(&req), method = %req.method(), path = %req.uri().path(), "staff change requested");
    }
    let query = query(&req);
    let r = api
        .handle(req.method().as_str(), req.uri().path(), &query)
        .await;
    into_response(r)
}

/// Either function's answer, by its `ROUTES`.
pub async fn respond_for<S: QueryStore>(
    routes: Routes,
    api: &Api<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    match routes {
        Routes::Staff => respond(api, req).await,
        Routes::Public => respond_public(api, req).await,
    }
}

/// The unsubscribe function: the public route only, on its own throttle and grants.
pub async fn respond_public<S: QueryStore>(
    api: &Api<S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let query = query(&req);
    let r = api
        .handle_public(req.method().as_str(), req.uri().path(), &query)
        .await;
    into_response(r)
}

fn query(req: &Request) -> HashMap<String, String> {
    req.query_string_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn into_response(r: feedloop_api::handler::ApiResponse) -> Result<Response<Body>, Error> {
    Response::builder()
        .status(r.status)
        .header("content-type", r.content_type)
        .header("cache-control", "no-store")
        .body(Body::Text(r.body))
        .map_err(Error::from)
}
