//! SDK configuration and resource creation for the local endpoint (and tests), from
//! [`crate::schema`].

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use feedloop_kit::StoreError;

use crate::schema::{self, Names};
use crate::store::classify;

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (the template's `LogLevel`); no
/// timestamps (CloudWatch adds them) and no module paths.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_target(false)
        .without_time()
        .init();
}

/// Where a function sends its AWS calls: `FEEDLOOP_ENDPOINT_URL`, else `AWS_ENDPOINT_URL`,
/// else AWS. The template declares `FEEDLOOP_ENDPOINT_URL` empty because `sam local`
/// passes a function only the variables its template declares: `events/env.json` sets
/// it to moto. An empty value means unset (AWS).
pub fn endpoint_from_env() -> Option<String> {
    ["FEEDLOOP_ENDPOINT_URL", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
}

/// A Lambda function's SDK config: region and credentials from its environment, the
/// endpoint from [`endpoint_from_env`].
pub async fn lambda_sdk_config() -> SdkConfig {
    sdk_config(endpoint_from_env().as_deref(), None).await
}

/// SDK config: the default chain (region too, unless given), or, with an endpoint (moto), static dummy credentials
/// unless real ones are in the environment.
pub async fn sdk_config(endpoint: Option<&str>, region: Option<&str>) -> SdkConfig {
    sdk_config_for(endpoint, region, None).await
}

/// As [`sdk_config`], with a named profile of the shared config files (the CLI's `--profile`).
pub async fn sdk_config_for(
    endpoint: Option<&str>,
    region: Option<&str>,
    profile: Option<&str>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "feedloop-local",
            ));
        }
    }
    loader.load().await
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueUrls {
    pub ingest: String,
    pub ingest_dlq: String,
    pub followup: String,
    pub followup_dlq: String,
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attrs: Vec<(QueueAttributeName, String)>,
) -> Result<String, StoreError> {
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(k, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| classify(&format!("create queue {name}"), &e))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Permanent(format!("no url for queue {name}")))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, StoreError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify("get queue arn", &e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| StoreError::Permanent(format!("no arn for {url}")))
}

/// Create the table and the four queues as the SAM template defines them. Idempotent
/// for queues; an existing table is left as it is.
pub async fn create_resources(cfg: &SdkConfig, names: &Names) -> Result<QueueUrls, StoreError> {
    let ddb = aws_sdk_dynamodb::Client::new(cfg);
    let sqs = aws_sdk_sqs::Client::new(cfg);
    let exists = ddb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .is_ok();
    if !exists {
        ddb.create_table()
            .table_name(&names.table)
            .set_key_schema(Some(schema::key_schema()))
            .set_attribute_definitions(Some(schema::attribute_definitions()))
            .global_secondary_indexes(schema::gsi1())
            .billing_mode(schema::BILLING_MODE)
            .send()
            .await
            .map_err(|e| classify("create table", &e))?;
        ddb.update_time_to_live()
            .table_name(&names.table)
            .time_to_live_specification(schema::ttl())
            .send()
            .await
            .map_err(|e| classify("enable ttl", &e))?;
    }
    let retention = (
        QueueAttributeName::MessageRetentionPeriod,
        schema::DLQ_RETENTION_SECS.to_string(),
    );
    let ingest_dlq = create_queue(&sqs, &names.ingest_dlq, vec![retention.clone()]).await?;
    let followup_dlq = create_queue(&sqs, &names.followup_dlq, vec![retention]).await?;
    let redrive = |arn: String| {
        (
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": schema::MAX_RECEIVE_COUNT}).to_string(),
        )
    };
    let visibility = (
        QueueAttributeName::VisibilityTimeout,
        schema::INGEST_VISIBILITY_TIMEOUT_SECS.to_string(),
    );
    let ingest = create_queue(
        &sqs,
        &names.ingest_queue,
        vec![
            visibility.clone(),
            redrive(queue_arn(&sqs, &ingest_dlq).await?),
        ],
    )
    .await?;
    let followup = create_queue(
        &sqs,
        &names.followup_queue,
        vec![visibility, redrive(queue_arn(&sqs, &followup_dlq).await?)],
    )
    .await?;
    Ok(QueueUrls {
        ingest,
        ingest_dlq,
        followup,
        followup_dlq,
    })
}

/// A queue's URL by name (a local stack's queues are found this way).
pub async fn queue_url(cfg: &SdkConfig, name: &str) -> Result<String, StoreError> {
    let out = aws_sdk_sqs::Client::new(cfg)
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| crate::store::classify("get queue url", &e))?;
    Ok(out.queue_url().unwrap_or_default().to_owned())
}
