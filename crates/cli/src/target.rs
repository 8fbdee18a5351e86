//! Where a command reads and writes: real AWS (default credential chain, `--region`,
//! `--profile`) or a local endpoint (`--endpoint-url` / `AWS_ENDPOINT_URL`); resource
//! names from the stack outputs (`--stack`), a local stack's `--prefix`, or flags.

use anyhow::{bail, Context, Result};
use aws_config::SdkConfig;
use feedloop_aws::schema::Names;
use feedloop_aws::DynamoStore;
use feedloop_core::keys::StackKeys;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct AwsTarget {
    /// A local endpoint such as moto (`make local-up` serves http://127.0.0.1:4566).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub endpoint_url: Option<String>,
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
    /// A profile of ~/.aws/config.
    #[arg(long, env = "AWS_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Read resource names from this CloudFormation stack's outputs.
    #[arg(long, env = "FEEDLOOP_STACK", global = true)]
    pub stack: Option<String>,
    /// Resource-name prefix of a local stack (`feedloop local up`).
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// The table (the stack's TableName output).
    #[arg(long, env = "FEEDLOOP_TABLE", global = true)]
    pub table: Option<String>,
    /// The ingest queue (IngestQueueUrl).
    #[arg(long, env = "FEEDLOOP_QUEUE_URL", global = true)]
    pub queue_url: Option<String>,
    /// The ingest dead-letter queue (IngestDeadLetterQueueUrl).
    #[arg(long, env = "FEEDLOOP_DLQ_URL", global = true)]
    pub dlq_url: Option<String>,
    /// The stack secret the suppression salt derives from (the SecretArn output; found
    /// by --stack or --prefix).
    #[arg(long, env = "FEEDLOOP_SECRET_ID", global = true)]
    pub secret_id: Option<String>,
}

/// Names resolved once per command.
pub struct Resolved {
    pub sdk: SdkConfig,
    pub table: Option<String>,
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    /// The stack secret's ARN or name.
    pub secret: Option<String>,
    pub aggregate_shards: u16,
}

impl Resolved {
    pub fn table(&self) -> Result<&str> {
        self.table
            .as_deref()
            .context("no table: pass --stack NAME, --table (TableName output, or FEEDLOOP_TABLE), or --prefix for a local stack")
    }
    pub fn queue_url(&self) -> Result<&str> {
        self.queue_url.as_deref().context(
            "no ingest queue: pass --stack NAME, --queue-url (IngestQueueUrl output), or --prefix",
        )
    }
    pub fn dlq_url(&self) -> Result<&str> {
        self.dlq_url
            .as_deref()
            .context("no dead-letter queue: pass --stack NAME, --dlq-url (IngestDeadLetterQueueUrl output), or --prefix")
    }
    /// The stack's keys, read from its secret (only by the commands that need them).
    pub async fn keys(&self) -> Result<StackKeys> {
        let id = self.secret.as_deref().context(
            "no stack secret: pass --stack NAME, --secret-id (SecretArn output, or FEEDLOOP_SECRET_ID), or --prefix",
        )?;
        Ok(feedloop_aws::secrets::stack_keys(&self.sdk, id).await?)
    }
    /// A queue of the stack through the SQS adapter (no long polling: the CLI asks once).
    pub fn queue(&self, url: &str) -> feedloop_aws::SqsQueue {
        feedloop_aws::SqsQueue::new(aws_sdk_sqs::Client::new(&self.sdk), url, 0)
    }
    pub fn store(&self) -> Result<DynamoStore> {
        Ok(
            DynamoStore::for_queries(aws_sdk_dynamodb::Client::new(&self.sdk), self.table()?)
                .with_aggregate_shards(self.aggregate_shards),
        )
    }
}

/// A local stack's queue URL by name.
pub async fn queue_url(sdk: &SdkConfig, name: &str) -> Result<String> {
    feedloop_aws::setup::queue_url(sdk, name)
        .await
        .with_context(|| format!("queue {name} not found (is the local stack up? `make local-up`)"))
}

impl AwsTarget {
    pub async fn sdk(&self) -> SdkConfig {
        // A local endpoint without a region still needs one for request signing.
        let region = self
            .region
            .clone()
            .or_else(|| self.endpoint_url.as_ref().map(|_| "us-east-1".to_owned()));
        feedloop_aws::setup::sdk_config_for(
            self.endpoint_url.as_deref(),
            region.as_deref(),
            self.profile.as_deref(),
        )
        .await
    }

    pub async fn resolve(&self) -> Result<Resolved> {
        let sdk = self.sdk().await;
        let mut r = Resolved {
            table: None,
            queue_url: None,
            dlq_url: None,
            secret: None,
            aggregate_shards: 8,
            sdk,
        };
        if let Some(stack) = &self.stack {
            let Some(info) = feedloop_aws::stacks::describe(&r.sdk, stack)
                .await
                .with_context(|| format!("describing stack {stack}"))?
            else {
                bail!("stack {stack} not found");
            };
            let out = |k: &str| info.outputs.get(k).cloned();
            r.table = out("TableName");
            r.queue_url = out("IngestQueueUrl");
            r.dlq_url = out("IngestDeadLetterQueueUrl");
            r.secret = out("SecretArn");
            if let Some(n) = info.parameters.get("AggregateShards") {
                r.aggregate_shards = n.parse().unwrap_or(8);
            }
        } else if let Some(prefix) = &self.prefix {
            let names = Names::with_prefix(prefix);
            r.queue_url = Some(queue_url(&r.sdk, &names.ingest_queue).await?);
            r.dlq_url = Some(queue_url(&r.sdk, &names.ingest_dlq).await?);
            r.table = Some(names.table);
            r.secret = Some(names.secret);
        }
        // Explicit flags win over what the stack says.
        if self.table.is_some() {
            r.table = self.table.clone();
        }
        if self.queue_url.is_some() {
            r.queue_url = self.queue_url.clone();
        }
        if self.dlq_url.is_some() {
            r.dlq_url = self.dlq_url.clone();
        }
        if self.secret_id.is_some() {
            r.secret = self.secret_id.clone();
        }
        Ok(r)
    }
}
