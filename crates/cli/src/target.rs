//! Where a command reads and writes: real AWS (default credential chain, `--region`,
//! `--profile`) or a local endpoint (`--endpoint-url` / `AWS_ENDPOINT_URL`), and which
//! table (`--table`, or the local stack's `--prefix`).

use anyhow::{bail, Result};
use aws_config::SdkConfig;
use feedloop_aws::DynamoStore;

#[derive(clap::Args, Clone, Debug)]
pub struct AwsTarget {
    /// A local endpoint such as moto (`make local-up` serves http://127.0.0.1:4566).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// A profile of ~/.aws/config.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// The table (the stack's TableName output).
    #[arg(long, env = "FEEDLOOP_TABLE")]
    pub table: Option<String>,
    /// Resource-name prefix of a local stack (`feedloop local up`), instead of --table.
    #[arg(long, conflicts_with = "table")]
    pub prefix: Option<String>,
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

    pub fn table(&self) -> Result<String> {
        match (&self.table, &self.prefix) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(p)) => Ok(feedloop_aws::schema::Names::with_prefix(p).table),
            (None, None) => bail!(
                "no table: pass --table (the stack's TableName output, or FEEDLOOP_TABLE) or --prefix for a local stack"
            ),
        }
    }

    pub async fn store(&self) -> Result<DynamoStore> {
        let table = self.table()?;
        Ok(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk().await),
            table,
            365,
        ))
    }
}
