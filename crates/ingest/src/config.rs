//! Typed configuration from the environment, validated once at cold start. Every
//! variable is required (the SAM template sets them all): a typo must stop the
//! function at deploy time, not silently run with a default.

use feedloop_core::sentiment::Mode;

use feedloop_kit::ports::MIN_RETENTION_DAYS;

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
    /// The multilingual encoder's folder; without it only English is scored.
    pub multilingual_model_dir: Option<String>,
}

pub use feedloop_kit::env::ConfigError;
use feedloop_kit::env::Env;

impl IngestConfig {
    /// Every variable the function reads (the template sets them all);
    /// `FEEDLOOP_MODEL_DIR` may be empty in the lexicon modes.
    pub const VARS: [&'static str; 12] = [
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
        "FEEDLOOP_MULTILINGUAL_MODEL_DIR",
    ];

    pub fn from_env() -> Result<IngestConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<IngestConfig, ConfigError> {
        let mut env = Env::new(get);
        let source = |t: String| match t.strip_prefix("builtin:") {
            Some(name) => TaxonomySource::Builtin(name.to_owned()),
            None => TaxonomySource::File(t),
        };
        let table_name = env.required("TABLE_NAME");
        let followup_queue_url = match env.required("FOLLOWUP_QUEUE_URL") {
            Some(q) if q.starts_with("https://") || q.starts_with("http://") => Some(q),
            Some(q) => {
                env.rule(
                    "FOLLOWUP_QUEUE_URL",
                    format!("FOLLOWUP_QUEUE_URL={q:?} is not a queue URL"),
                );
                None
            }
            None => None,
        };
        let taxonomy = env.required("TAXONOMY").map(source);
        let mode = env.parsed("SENTIMENT_MODE", |m| {
            m.parse::<Mode>().map_err(|e| e.to_string())
        });
        let half_life_days = env.number(
            "HALF_LIFE_DAYS",
            |d: &f64| d.is_finite() && *d > 0.0,
            "a positive number of days",
        );
        let retention_days = env.number(
            "RETENTION_DAYS",
            |d: &u32| (MIN_RETENTION_DAYS..=3650).contains(d),
            "15..=3650 days (the dedupe record must outlive the DLQ's 14 days)",
        );
        let aggregate_shards = env.number(
            "AGGREGATE_SHARDS",
            |n: &u16| (1..=100).contains(n),
            "1..=100",
        );
        let max_concurrency = env.number(
            "MAX_CONCURRENCY",
            |n: &usize| (1..=64).contains(n),
            "1..=64",
        );
        let max_followup_age_hours = env.number(
            "MAX_FOLLOWUP_AGE_HOURS",
            |n: &i64| (1..=8760).contains(n),
            "1..=8760 hours",
        );
        let playbook = env.required("PLAYBOOK").map(source);
        let model_dir = env.optional("FEEDLOOP_MODEL_DIR");
        let multilingual_model_dir = env.optional("FEEDLOOP_MULTILINGUAL_MODEL_DIR");
        if let (Some(m), None) = (mode, &model_dir) {
            if m.needs_encoder() {
                env.rule(
                    "FEEDLOOP_MODEL_DIR",
                    format!(
                        "SENTIMENT_MODE={m} needs FEEDLOOP_MODEL_DIR (the model layer's folder)"
                    ),
                );
            }
        }
        env.finish(|| {
            Some(IngestConfig {
                table_name: table_name?,
                followup_queue_url: followup_queue_url?,
                taxonomy: taxonomy?,
                mode: mode?,
                half_life_days: half_life_days?,
                retention_days: retention_days?,
                aggregate_shards: aggregate_shards?,
                max_concurrency: max_concurrency?,
                max_followup_age_hours: max_followup_age_hours?,
                playbook: playbook?,
                model_dir,
                multilingual_model_dir,
            })
        })
    }

    /// Load the follow-up playbook the configuration names (at cold start: fail fast).
    pub fn load_playbook(&self) -> Result<feedloop_core::followup::Playbook, ConfigError> {
        use feedloop_core::followup::Playbook;
        self.playbook.load(
            "PLAYBOOK",
            &[("default", Playbook::default_rules)],
            Playbook::from_toml,
        )
    }

    /// Load the taxonomy the configuration names (at cold start: fail fast).
    pub fn load_taxonomy(&self) -> Result<feedloop_core::themes::Taxonomy, ConfigError> {
        use feedloop_core::themes::Taxonomy;
        self.taxonomy.load(
            "TAXONOMY",
            &[
                ("small-business", Taxonomy::default_small_business),
                ("restaurants", Taxonomy::restaurants),
            ],
            Taxonomy::from_toml,
        )
    }
}

/// Builtin names and what each one builds.
type Builtins<'a, T> = &'a [(&'a str, fn() -> T)];

impl TaxonomySource {
    /// The named builtin or the parsed file; `var` names the setting in the errors.
    fn load<T, E: std::fmt::Display>(
        &self,
        var: &str,
        builtins: Builtins<'_, T>,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        match self {
            TaxonomySource::Builtin(n) => builtins
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, make)| make())
                .ok_or_else(|| {
                    let names: Vec<&str> = builtins.iter().map(|(name, _)| *name).collect();
                    let known = names.join(", ");
                    ConfigError::rule(var, format!("{var}: unknown builtin {n:?} ({known})"))
                }),
            TaxonomySource::File(path) => {
                let src = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::rule(var, format!("{var}: reading {path}: {e}")))?;
                parse(&src).map_err(|e| ConfigError::rule(var, format!("{var}: {path}: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The good settings with `key` set to `value` instead.
    fn good_but<'a>(key: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut vars = GOOD.to_vec();
        vars.retain(|(k, _)| *k != key);
        vars.push((key, value));
        vars
    }

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
        let mut vars = good_but("SENTIMENT_MODE", "hybrid");
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
        let err = IngestConfig::from_lookup(env(&good_but("RETENTION_DAYS", "14"))).unwrap_err();
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
