//! The follow-up function's configuration, from the environment, validated once at
//! cold start. Every variable is required (the SAM template sets them all).

use feedloop_core::followup::guards::{is_known_timezone, CapPolicy, ConsentPolicy};
use feedloop_core::followup::plan::{parse_quiet_hours, DispatchPolicy};
pub use feedloop_ingest::config::ConfigError;

use crate::DeliveryMode;

#[derive(Debug, Clone)]
pub struct FollowUpConfig {
    pub table_name: String,
    pub queue_url: String,
    pub mode: DeliveryMode,
    /// The SES identity mail is sent from; may be empty only in dry-run mode.
    pub email_from: Option<String>,
    /// The stack's SES configuration set (bounce and complaint events).
    pub configuration_set: Option<String>,
    pub suppression_salt: String,
    pub retention_days: u32,
    pub policy: DispatchPolicy,
}

impl FollowUpConfig {
    pub const VARS: [&'static str; 13] = [
        "TABLE_NAME",
        "FOLLOWUP_QUEUE_URL",
        "DELIVERY_MODE",
        "EMAIL_FROM",
        "COMPANY_NAME",
        "GLOBAL_CAP_DAYS",
        "PLAYBOOK_CAP_DAYS",
        "QUIET_HOURS",
        "SUPPRESSION_SALT",
        "RETENTION_DAYS",
        "MAX_FOLLOWUP_AGE_HOURS",
        "DEFAULT_TIMEZONE",
        "SES_CONFIGURATION_SET",
    ];

    pub fn from_env() -> Result<FollowUpConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<FollowUpConfig, ConfigError> {
        let mut errors = Vec::new();
        // Present but possibly empty (EMAIL_FROM, COMPANY_NAME): a template parameter
        // left blank is a choice; a variable missing altogether is a broken deploy.
        let mut present = |k: &str| -> String {
            get(k).unwrap_or_else(|| {
                errors.push(format!("{k} is not set"));
                String::new()
            })
        };
        let vals: Vec<String> = Self::VARS.iter().map(|k| present(k)).collect();
        let [table, queue, mode, from, company, global, playbook, quiet, salt, retention, max_age, zone, config_set] =
            <[String; 13]>::try_from(vals).expect("thirteen variables");
        let default_timezone = zone.trim().to_owned();
        if !is_known_timezone(&default_timezone) {
            errors.push(format!(
                "DEFAULT_TIMEZONE={zone:?} is not an IANA time zone (e.g. Europe/London)"
            ));
        }
        for (k, v) in [
            ("TABLE_NAME", &table),
            ("FOLLOWUP_QUEUE_URL", &queue),
            ("SUPPRESSION_SALT", &salt),
        ] {
            if v.trim().is_empty() && !errors.iter().any(|e| e.starts_with(k)) {
                errors.push(format!("{k} is empty"));
            }
        }
        let mode = match mode.parse::<DeliveryMode>() {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(format!("DELIVERY_MODE: {e}"));
                None
            }
        };
        let email_from = Some(from.trim().to_owned()).filter(|f| !f.is_empty());
        if mode == Some(DeliveryMode::Live)
            && email_from.as_deref().is_none_or(|f| !f.contains('@'))
        {
            errors.push(format!(
                "EMAIL_FROM={from:?} must be a verified SES address in live mode"
            ));
        }
        let configuration_set = Some(config_set.trim().to_owned()).filter(|c| !c.is_empty());
        if mode == Some(DeliveryMode::Live) && configuration_set.is_none() {
            // Without it bounces and complaints never come back, and SES suspends
            // accounts whose bounce rate it sees climbing.
            errors.push(
                "SES_CONFIGURATION_SET must name the stack's configuration set in live mode".into(),
            );
        }
        let mut days = |k: &str, v: &str| match v.trim().parse::<i64>() {
            Ok(d) if (0..=365).contains(&d) => d,
            _ => {
                errors.push(format!("{k}={v:?} is not 0..=365 days"));
                0
            }
        };
        let global_window_days = days("GLOBAL_CAP_DAYS", &global);
        let playbook_window_days = days("PLAYBOOK_CAP_DAYS", &playbook);
        let min = feedloop_ingest::config::MIN_RETENTION_DAYS;
        let retention_days = match retention.trim().parse::<u32>() {
            Ok(d) if (min..=3650).contains(&d) => d,
            _ => {
                errors.push(format!(
                    "RETENTION_DAYS={retention:?} is not {min}..=3650 days"
                ));
                0
            }
        };
        let max_age_hours = match max_age.trim().parse::<i64>() {
            Ok(h) if (1..=8760).contains(&h) => h,
            _ => {
                errors.push(format!(
                    "MAX_FOLLOWUP_AGE_HOURS={max_age:?} is not 1..=8760 hours"
                ));
                0
            }
        };
        let quiet_hours = match parse_quiet_hours(&quiet) {
            Ok(q) => q,
            Err(e) => {
                errors.push(format!("QUIET_HOURS: {e}"));
                None
            }
        };
        match (errors.is_empty(), mode) {
            (true, Some(mode)) => Ok(FollowUpConfig {
                table_name: table,
                queue_url: queue,
                mode,
                email_from,
                configuration_set,
                suppression_salt: salt,
                retention_days,
                policy: DispatchPolicy {
                    consent: ConsentPolicy::default(),
                    caps: CapPolicy {
                        global_window_days,
                        playbook_window_days,
                    },
                    quiet_hours,
                    company: Some(company.trim().to_owned()).filter(|c| !c.is_empty()),
                    max_age_hours,
                    default_timezone,
                },
            }),
            _ => Err(ConfigError(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const GOOD: &[(&str, &str)] = &[
        ("TABLE_NAME", "t"),
        (
            "FOLLOWUP_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/q",
        ),
        ("DELIVERY_MODE", "dry-run"),
        ("EMAIL_FROM", ""),
        ("COMPANY_NAME", "Acme"),
        ("GLOBAL_CAP_DAYS", "7"),
        ("PLAYBOOK_CAP_DAYS", "30"),
        ("QUIET_HOURS", "21:00-08:00"),
        ("SUPPRESSION_SALT", "s"),
        ("RETENTION_DAYS", "365"),
        ("MAX_FOLLOWUP_AGE_HOURS", "72"),
        ("DEFAULT_TIMEZONE", "Europe/London"),
        ("SES_CONFIGURATION_SET", ""),
    ];

    #[test]
    fn dry_run_needs_no_sender_but_live_does() {
        let c = FollowUpConfig::from_lookup(env(GOOD)).unwrap();
        assert_eq!(
            (c.mode, c.email_from, c.policy.caps.global_window_days),
            (DeliveryMode::DryRun, None, 7)
        );
        let live = |k: &str| {
            if k == "DELIVERY_MODE" {
                Some("live".into())
            } else {
                env(GOOD)(k)
            }
        };
        let err = FollowUpConfig::from_lookup(live).unwrap_err().to_string();
        assert!(
            err.contains("EMAIL_FROM=\"\" must be a verified SES address"),
            "{err}"
        );
        assert!(err.contains("SES_CONFIGURATION_SET must name"), "{err}");
    }

    #[test]
    fn every_problem_is_listed() {
        let err =
            FollowUpConfig::from_lookup(env(&[("DELIVERY_MODE", "loud"), ("QUIET_HOURS", "late")]))
                .unwrap_err()
                .to_string();
        for want in [
            "TABLE_NAME is not set",
            "DELIVERY_MODE: \"loud\" is not dry-run or live",
            "QUIET_HOURS",
            "SUPPRESSION_SALT is not set",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }
    }
}
