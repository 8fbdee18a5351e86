//! Typed configuration from the environment, validated once at cold start. Every
//! variable is required (the SAM template sets them all): a typo must stop the
//! function at deploy time, not silently run with a default.

use std::fmt;

use feedloop_core::sentiment::Mode;

/// Feedback items double as dedupe records: they must outlive a message kept in the
/// DLQ (14 days, the template's retention), or a redrive applies it twice.
pub const MIN_RETENTION_DAYS: u32 = 15;

#[derive(Debug, Clone, PartialEq)]
pub enum TaxonomySource {
    Builtin(String),
    File(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    pub table_name: String,
    pub followup_queue_url: String,
    pub taxonomy: TaxonomySource,
    pub mode: Mode,
    pub half_life_days: f64,
    pub retention_days: u32,
    pub aggregate_shards: u16,
    pub max_concurrency: usize,
    /// No follow-up intent for feedback older than this many hours (`MAX_FOLLOWUP_AGE_HOURS`).
    pub max_followup_age_hours: i64,
    /// Follow-up rules: `builtin:default` or a file bundled with the function.
    pub playbook: TaxonomySource,
    /// The sentence encoder's folder (`FEEDLOOP_MODEL_DIR`); required by the neural
    /// modes, which refuse to start without it rather than fall back to the lexicon.
    pub model_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl IngestConfig {
    /// Every variable the function reads (the template sets them all);
    /// `FEEDLOOP_MODEL_DIR` may be empty in the lexicon modes.
    pub const VARS: [&'static str; 11] = [
        "TABLE_NAME",
        "FOLLOWUP_QUEUE_URL",
        "TAXONOMY",
        "SENTIMENT_MODE",
        "HALF_LIFE_DAYS",
        "RETENTION_DAYS",
        "AGGREGATE_SHARDS",
        "MAX_CONCURRENCY",
        "MAX_FOLLOWUP_AGE_HOURS",
        "PLAYBOOK",
        "FEEDLOOP_MODEL_DIR",
    ];

    pub fn from_env() -> Result<IngestConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<IngestConfig, ConfigError> {
        let mut errors = Vec::new();
        let mut req = |k: &str| -> Option<String> {
            match get(k).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(v),
                None => {
                    errors.push(format!("{k} is not set"));
                    None
                }
            }
        };
        let table_name = req("TABLE_NAME");
        let queue = req("FOLLOWUP_QUEUE_URL");
        let taxonomy = req("TAXONOMY");
        let mode = req("SENTIMENT_MODE");
        let half_life = req("HALF_LIFE_DAYS");
        let retention = req("RETENTION_DAYS");
        let shards = req("AGGREGATE_SHARDS");
        let concurrency = req("MAX_CONCURRENCY");
        let max_age = req("MAX_FOLLOWUP_AGE_HOURS");
        let model_dir = get("FEEDLOOP_MODEL_DIR").filter(|v| !v.trim().is_empty());
        let playbook = req("PLAYBOOK").map(|t| match t.strip_prefix("builtin:") {
            Some(name) => TaxonomySource::Builtin(name.to_owned()),
            None => TaxonomySource::File(t),
        });

        fn num<T: std::str::FromStr>(
            errors: &mut Vec<String>,
            k: &str,
            v: Option<String>,
            ok: impl Fn(&T) -> bool,
            want: &str,
        ) -> Option<T> {
            let v = v?;
            match v.trim().parse::<T>() {
                Ok(n) if ok(&n) => Some(n),
                _ => {
                    errors.push(format!("{k}={v:?} is not {want}"));
                    None
                }
            }
        }
        let half_life_days = num(
            &mut errors,
            "HALF_LIFE_DAYS",
            half_life,
            |d: &f64| d.is_finite() && *d > 0.0,
            "a positive number of days",
        );
        let retention_days = num(
            &mut errors,
            "RETENTION_DAYS",
            retention,
            |d: &u32| (MIN_RETENTION_DAYS..=3650).contains(d),
            "15..=3650 days (the dedupe record must outlive the DLQ's 14 days)",
        );
        let aggregate_shards = num(
            &mut errors,
            "AGGREGATE_SHARDS",
            shards,
            |n: &u16| (1..=100).contains(n),
            "1..=100",
        );
        let max_concurrency = num(
            &mut errors,
            "MAX_CONCURRENCY",
            concurrency,
            |n: &usize| (1..=64).contains(n),
            "1..=64",
        );
        let max_followup_age_hours = num(
            &mut errors,
            "MAX_FOLLOWUP_AGE_HOURS",
            max_age,
            |n: &i64| (1..=8760).contains(n),
            "1..=8760 hours",
        );
        let mode = mode.and_then(|m| match m.parse::<Mode>() {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(format!("SENTIMENT_MODE: {e}"));
                None
            }
        });
        let taxonomy = taxonomy.map(|t| match t.strip_prefix("builtin:") {
            Some(name) => TaxonomySource::Builtin(name.to_owned()),
            None => TaxonomySource::File(t),
        });
        if let (Some(m), None) = (mode, &model_dir) {
            if m.needs_encoder() {
                errors.push(format!(
                    "SENTIMENT_MODE={m} needs FEEDLOOP_MODEL_DIR (the model layer's folder)"
                ));
            }
        }
        if let Some(q) = &queue {
            if !(q.starts_with("https://") || q.starts_with("http://")) {
                errors.push(format!("FOLLOWUP_QUEUE_URL={q:?} is not a queue URL"));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        match (
            table_name,
            queue,
            taxonomy,
            mode,
            half_life_days,
            retention_days,
            aggregate_shards,
            max_concurrency,
            max_followup_age_hours,
            playbook,
        ) {
            (
                Some(table_name),
                Some(followup_queue_url),
                Some(taxonomy),
                Some(mode),
                Some(half_life_days),
                Some(retention_days),
                Some(aggregate_shards),
                Some(max_concurrency),
                Some(max_followup_age_hours),
                Some(playbook),
            ) => Ok(IngestConfig {
                table_name,
                followup_queue_url,
                taxonomy,
                mode,
                half_life_days,
                retention_days,
                aggregate_shards,
                max_concurrency,
                max_followup_age_hours,
                playbook,
                model_dir,
            }),
            _ => Err(ConfigError(vec!["incomplete configuration".into()])),
        }
    }

    /// Load the follow-up playbook the configuration names (at cold start: fail fast).
    pub fn load_playbook(&self) -> Result<feedloop_core::followup::Playbook, ConfigError> {
        use feedloop_core::followup::Playbook;
        match &self.playbook {
            TaxonomySource::Builtin(n) if n == "default" => Ok(Playbook::default_rules()),
            TaxonomySource::Builtin(n) => Err(ConfigError(vec![format!(
                "PLAYBOOK: unknown builtin {n:?} (default)"
            )])),
            TaxonomySource::File(path) => {
                let src = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(vec![format!("PLAYBOOK: reading {path}: {e}")]))?;
                Playbook::from_toml(&src)
                    .map_err(|e| ConfigError(vec![format!("PLAYBOOK: {path}: {e}")]))
            }
        }
    }

    /// Load the taxonomy the configuration names (at cold start: fail fast).
    pub fn load_taxonomy(&self) -> Result<feedloop_core::themes::Taxonomy, ConfigError> {
        use feedloop_core::themes::Taxonomy;
        match &self.taxonomy {
            TaxonomySource::Builtin(n) if n == "small-business" => {
                Ok(Taxonomy::default_small_business())
            }
            TaxonomySource::Builtin(n) if n == "restaurants" => Ok(Taxonomy::restaurants()),
            TaxonomySource::Builtin(n) => Err(ConfigError(vec![format!(
                "TAXONOMY: unknown builtin {n:?} (small-business, restaurants)"
            )])),
            TaxonomySource::File(path) => {
                let src = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(vec![format!("TAXONOMY: reading {path}: {e}")]))?;
                Taxonomy::from_toml(&src)
                    .map_err(|e| ConfigError(vec![format!("TAXONOMY: {path}: {e}")]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const GOOD: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        (
            "FOLLOWUP_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/q",
        ),
        ("TAXONOMY", "builtin:small-business"),
        ("SENTIMENT_MODE", "feedloop"),
        ("HALF_LIFE_DAYS", "30"),
        ("RETENTION_DAYS", "365"),
        ("AGGREGATE_SHARDS", "8"),
        ("MAX_CONCURRENCY", "8"),
        ("MAX_FOLLOWUP_AGE_HOURS", "72"),
        ("PLAYBOOK", "builtin:default"),
    ];

    #[test]
    fn a_complete_environment_parses() {
        let c = IngestConfig::from_lookup(env(GOOD)).unwrap();
        assert_eq!(
            (c.aggregate_shards, c.retention_days, c.mode),
            (8, 365, Mode::Lexicon)
        );
        assert!(c.load_taxonomy().is_ok());
        assert_eq!(c.load_playbook().unwrap().rules.len(), 6);
    }

    #[test]
    fn the_neural_modes_need_the_model_folder() {
        let mut vars = GOOD.to_vec();
        vars.retain(|(k, _)| *k != "SENTIMENT_MODE");
        vars.push(("SENTIMENT_MODE", "hybrid"));
        let err = IngestConfig::from_lookup(env(&vars)).unwrap_err();
        assert!(
            err.to_string().contains("needs FEEDLOOP_MODEL_DIR"),
            "{err}"
        );
        vars.push(("FEEDLOOP_MODEL_DIR", "/opt/all-MiniLM-L6-v2"));
        let c = IngestConfig::from_lookup(env(&vars)).unwrap();
        assert_eq!(c.mode, Mode::Hybrid);
        assert_eq!(c.model_dir.as_deref(), Some("/opt/all-MiniLM-L6-v2"));
    }

    #[test]
    fn retention_shorter_than_the_dlq_is_refused() {
        let mut vars = GOOD.to_vec();
        vars.retain(|(k, _)| *k != "RETENTION_DAYS");
        vars.push(("RETENTION_DAYS", "14"));
        let err = IngestConfig::from_lookup(env(&vars)).unwrap_err();
        assert!(err.to_string().contains("outlive the DLQ"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_and_nothing_defaults() {
        let err = IngestConfig::from_lookup(env(&[
            ("HALF_LIFE_DAYS", "-1"),
            ("SENTIMENT_MODE", "magic"),
            ("FOLLOWUP_QUEUE_URL", "q"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for want in [
            "TABLE_NAME is not set",
            "HALF_LIFE_DAYS=\"-1\" is not a positive number of days",
            "SENTIMENT_MODE: unknown mode \"magic\"",
            "FOLLOWUP_QUEUE_URL=\"q\" is not a queue URL",
            "MAX_CONCURRENCY is not set",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
