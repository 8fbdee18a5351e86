//! The API function's configuration from the environment, validated at cold start.

pub use feedloop_ingest::config::ConfigError;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub table_name: String,
    pub aggregate_shards: u16,
    /// The Secrets Manager secret the cursor key, the suppression salt and the
    /// unsubscribe key derive from (read once at cold start).
    pub secret_arn: String,
}

impl ApiConfig {
    pub const VARS: [&'static str; 3] = ["TABLE_NAME", "AGGREGATE_SHARDS", "SECRET_ARN"];

    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, ConfigError> {
        let mut errors = Vec::new();
        let mut req = |k: &str| {
            get(k).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                errors.push(format!("{k} is not set"));
                String::new()
            })
        };
        let (table_name, shards, secret_arn) = (
            req("TABLE_NAME"),
            req("AGGREGATE_SHARDS"),
            req("SECRET_ARN"),
        );
        let aggregate_shards = match shards.parse::<u16>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                if !shards.is_empty() {
                    errors.push(format!("AGGREGATE_SHARDS={shards:?} is not 1..=100"));
                }
                0
            }
        };
        if errors.is_empty() {
            Ok(ApiConfig {
                table_name,
                aggregate_shards,
                secret_arn,
            })
        } else {
            Err(ConfigError(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_variables_are_required() {
        let err =
            ApiConfig::from_lookup(|k| (k == "AGGREGATE_SHARDS").then(|| "0".into())).unwrap_err();
        let text = err.to_string();
        for want in [
            "TABLE_NAME is not set",
            "AGGREGATE_SHARDS=\"0\" is not 1..=100",
            "SECRET_ARN is not set",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        let ok = ApiConfig::from_lookup(|k| {
            Some(match k {
                "AGGREGATE_SHARDS" => "8".into(),
                _ => "0123456789abcdef-x".into(),
            })
        })
        .unwrap();
        assert_eq!(ok.aggregate_shards, 8);
    }
}
