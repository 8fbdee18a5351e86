//! The HTTP adapter: an API Gateway HTTP API request (payload 2.0) to the feedloop
//! routes and back. Kept out of `main.rs` so the sample events can be run through it.

use std::collections::HashMap;

use feedloop_api::ports::QueryStore;
use feedloop_api::Api;
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub async fn respond<S: QueryStore>(api: &Api<S>, req: Request) -> Result<Response<Body>, Error> {
    let query: HashMap<String, String> = req
        .query_string_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let r = api
        .handle(req.method().as_str(), req.uri().path(), &query)
        .await;
    Response::builder()
        .status(r.status)
        .header("content-type", r.content_type)
        .header("cache-control", "no-store")
        .body(Body::Text(r.body))
        .map_err(Error::from)
}
