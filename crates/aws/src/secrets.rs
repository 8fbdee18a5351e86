//! The stack secret (Secrets Manager): read once at cold start, turned into the keys
//! each function needs, and never logged. A local stack gets its own secret in moto.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use feedloop_core::keys::{KeyError, StackKeys};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the stack secret {id}: {code}: {message}")]
    Read {
        id: String,
        code: String,
        message: String,
    },
    #[error("the stack secret {0} has no string value")]
    Empty(String),
    #[error("the stack secret {id}: {source}")]
    Key { id: String, source: KeyError },
}

/// The keys derived from the secret `id` (an ARN or a name).
pub async fn stack_keys(sdk: &SdkConfig, id: &str) -> Result<StackKeys, SecretError> {
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| SecretError::Read {
            id: id.to_owned(),
            code: e.code().unwrap_or("Unavailable").to_owned(),
            // The service's message names the secret, never its value.
            message: e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
        })?;
    let value = out
        .secret_string()
        .ok_or_else(|| SecretError::Empty(id.to_owned()))?;
    StackKeys::derive(value).map_err(|source| SecretError::Key {
        id: id.to_owned(),
        source,
    })
}

/// A local stack's secret `name`, created with a random value (Secrets Manager's own
/// generator) when it does not exist yet. Returns its ARN.
pub async fn ensure_local_secret(sdk: &SdkConfig, name: &str) -> Result<String, SecretError> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let err = |e: &dyn ProvideErrorMetadata, what: &str| SecretError::Read {
        id: name.to_owned(),
        code: e.code().unwrap_or("Unavailable").to_owned(),
        message: format!("{what}: {}", e.message().unwrap_or("")),
    };
    if let Ok(found) = sm.describe_secret().secret_id(name).send().await {
        return Ok(found.arn().unwrap_or(name).to_owned());
    }
    let password = sm
        .get_random_password()
        .password_length(64)
        .exclude_punctuation(true)
        .send()
        .await
        .map_err(|e| err(&e, "generating"))?;
    let created = sm
        .create_secret()
        .name(name)
        .description("feedloop local stack keys")
        .secret_string(password.random_password().unwrap_or_default())
        .send()
        .await
        .map_err(|e| err(&e, "creating"))?;
    Ok(created.arn().unwrap_or(name).to_owned())
}
