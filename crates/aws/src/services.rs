//! The functions' services, built from their typed configuration over the AWS
//! adapters. The Lambdas' `main` and the CLI's `local drain` both call these, so what
//! runs locally is what is deployed, settings included.

use aws_config::SdkConfig;
use feedloop_api::config::ApiConfig;
use feedloop_api::Api;
use feedloop_core::analysis::Analyzer;
use feedloop_followup::config::FollowUpConfig;
use feedloop_followup::notifications::Notifications;
use feedloop_followup::Dispatcher;
use feedloop_ingest::config::{ConfigError, IngestConfig};
use feedloop_ingest::{Ingest, Settings};
use feedloop_kit::Clock;

use crate::followups::{AwsDelivery, AwsFollowUps};
use crate::secrets::SecretError;
use crate::{DynamoStore, SqsQueue};

pub type IngestService = Ingest<DynamoStore, AwsFollowUps>;
pub type FollowUpService = Dispatcher<DynamoStore, AwsDelivery, SqsQueue>;
pub type ApiService = Api<DynamoStore>;

/// The ingest service `config` describes; the analyzer is built by the caller, which
/// knows where the encoder lives.
pub fn ingest(
    sdk: &SdkConfig,
    config: &IngestConfig,
    analyzer: Analyzer,
    clock: Clock,
) -> Result<IngestService, ConfigError> {
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &config.table_name,
        config.retention_days,
    )
    .with_aggregate_shards(config.aggregate_shards);
    let settings = Settings {
        half_life_days: config.half_life_days,
        aggregate_shards: config.aggregate_shards,
        max_concurrency: config.max_concurrency,
        max_followup_age_hours: config.max_followup_age_hours,
    };
    let followups = AwsFollowUps {
        store: store.clone(),
        sqs: aws_sdk_sqs::Client::new(sdk),
        queue_url: config.followup_queue_url.clone(),
    };
    Ok(Ingest::new(store, analyzer, settings, clock)
        .with_followups(config.load_playbook()?, followups))
}

/// The follow-up dispatcher and the SES notification handler `config` describes (both
/// salt the suppression list with the stack secret, read here).
pub async fn followup(
    sdk: &SdkConfig,
    config: &FollowUpConfig,
    clock: Clock,
) -> Result<(FollowUpService, Notifications<DynamoStore>), SecretError> {
    let keys = crate::secrets::stack_keys(sdk, &config.secret_arn).await?;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &config.table_name,
        config.retention_days,
    );
    let notifications = Notifications {
        store: store.clone(),
        suppression_salt: keys.suppression_salt.clone(),
        clock: clock.clone(),
    };
    let deliver = AwsDelivery::new(
        sdk,
        config.email_from.clone().unwrap_or_default(),
        config.reply_to.clone(),
        config.configuration_set.clone(),
        config.staff_event_bus.clone(),
    );
    let requeue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url, 0);
    let policy = config.policy_with(&keys);
    // A claim outlives no invocation: the function's timeout is the lease.
    let lease = std::time::Duration::from_secs(crate::schema::FOLLOWUP_TIMEOUT_SECS as u64);
    let dispatcher = Dispatcher::new(store, deliver, requeue, keys.suppression_salt, clock)
        .with_policy(policy)
        .with_mode(config.mode)
        .with_claim_lease(lease);
    Ok((dispatcher, notifications))
}

/// The query service `config` describes, keyed with the stack secret (cursor signing,
/// suppression salt, unsubscribe tokens).
pub async fn api(
    sdk: &SdkConfig,
    config: &ApiConfig,
    clock: Clock,
) -> Result<ApiService, SecretError> {
    let keys = crate::secrets::stack_keys(sdk, &config.secret_arn).await?;
    let store = DynamoStore::for_queries(aws_sdk_dynamodb::Client::new(sdk), &config.table_name)
        .with_aggregate_shards(config.aggregate_shards);
    Ok(Api { store, keys, clock })
}
