//! The API function's configuration from the environment, validated at cold start.

pub use feedloop_kit::env::ConfigError;
use feedloop_kit::env::Env;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub table_name: String,
    pub aggregate_shards: u16,
    /// The Secrets Manager secret the cursor key, the suppression salt and the
    /// unsubscribe key derive from (read once at cold start).
    pub secret_arn: String,
    /// Which routes this function serves: the IAM staff routes, or only the public
    /// unsubscribe route (its own function, grants and throttle; the same binary).
    pub routes: Routes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    Staff,
    Public,
}

impl ApiConfig {
    pub const VARS: [&'static str; 4] = ["TABLE_NAME", "AGGREGATE_SHARDS", "SECRET_ARN", "ROUTES"];

    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, ConfigError> {
        let mut env = Env::new(get);
        let table_name = env.required("TABLE_NAME");
        let aggregate_shards = env.number(
            "AGGREGATE_SHARDS",
            |n: &u16| (1..=100).contains(n),
            "1..=100",
        );
        let secret_arn = env.required("SECRET_ARN");
        let routes = env.parsed("ROUTES", |v| match v {
            "staff" => Ok(Routes::Staff),
            "public" => Ok(Routes::Public),
            _ => Err(format!("{v:?} must be staff or public")),
        });
        env.finish(|| {
            Some(ApiConfig {
                table_name: table_name?,
                aggregate_shards: aggregate_shards?,
                secret_arn: secret_arn?,
                routes: routes?,
            })
        })
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
            "ROUTES is not set",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        let ok = ApiConfig::from_lookup(|k| {
            Some(match k {
                "AGGREGATE_SHARDS" => "8".into(),
                "ROUTES" => "public".into(),
                _ => "0123456789abcdef-x".into(),
            })
        })
        .unwrap();
        assert_eq!((ok.aggregate_shards, ok.routes), (8, Routes::Public));
    }
}
