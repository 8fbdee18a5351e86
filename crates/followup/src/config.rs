//! The follow-up function's configuration, from the environment, validated once at
//! cold start. Every variable is required (the SAM template sets them all).

use feedloop_core::envelope::Tz;
use feedloop_core::followup::guards::{CapPolicy, ConsentPolicy, Window};
use feedloop_core::followup::plan::{parse_quiet_hours, DispatchPolicy};
pub use feedloop_kit::env::ConfigError;
use feedloop_kit::env::Env;

use crate::DeliveryMode;

#[derive(Debug, Clone)]
pub struct FollowUpConfig {
    pub table_name: String,
    pub queue_url: String,
    pub mode: DeliveryMode,
    /// The SES identity mail is sent from; may be empty only in dry-run mode.
    pub email_from: Option<String>,
    /// Where customers' answers go; required in live mode.
    pub reply_to: Option<String>,
    /// The EventBridge bus staff tasks go to.
    pub staff_event_bus: String,
    /// The stack's SES configuration set (bounce and complaint events).
    pub configuration_set: Option<String>,
    /// The Secrets Manager secret the suppression salt and the link key derive from
    /// (read once at cold start).
    pub secret_arn: String,
    /// The public opt-out route e-mails link to; required in live mode.
    pub unsubscribe_url: Option<String>,
    pub retention_days: u32,
    pub policy: DispatchPolicy,
}

impl FollowUpConfig {
    pub const VARS: [&'static str; 19] = [
        "TABLE_NAME",
        "FOLLOWUP_QUEUE_URL",
        "DELIVERY_MODE",
        "EMAIL_FROM",
        "COMPANY_NAME",
        "GLOBAL_CAP_DAYS",
        "PLAYBOOK_CAP_DAYS",
        "QUIET_HOURS",
        "SECRET_ARN",
        "RETENTION_DAYS",
        "MAX_FOLLOWUP_AGE_HOURS",
        "DEFAULT_TIMEZONE",
        "SES_CONFIGURATION_SET",
        "UNSUBSCRIBE_URL",
        "REPLY_TO",
        "SMS_COUNTRIES",
        "SMS_TO_NEW_NUMBERS",
        "STAFF_EVENT_BUS",
        "POSTAL_ADDRESS",
    ];

    pub fn from_env() -> Result<FollowUpConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<FollowUpConfig, ConfigError> {
        let mut env = Env::new(get);
        let table = env.required("TABLE_NAME");
        let queue = env.required("FOLLOWUP_QUEUE_URL");
        let secret_arn = env.required("SECRET_ARN");
        let staff_event_bus = env.required("STAFF_EVENT_BUS");
        let mode = env.parsed("DELIVERY_MODE", |v| v.parse::<DeliveryMode>());
        // Present but possibly blank (EMAIL_FROM, COMPANY_NAME, ...): a template
        // parameter left empty is a choice; a variable missing altogether is a broken
        // deploy.
        let mut blank_ok = |var: &str| {
            env.present(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let email_from = blank_ok("EMAIL_FROM");
        let company = blank_ok("COMPANY_NAME");
        let configuration_set = blank_ok("SES_CONFIGURATION_SET");
        let unsubscribe_url = blank_ok("UNSUBSCRIBE_URL");
        let reply_to = blank_ok("REPLY_TO");
        let postal_address = blank_ok("POSTAL_ADDRESS");
        let sms_countries = blank_ok("SMS_COUNTRIES");
        let sms_countries = sms_country_list(&mut env, sms_countries);
        let sms_to_new_numbers = env.parsed("SMS_TO_NEW_NUMBERS", |v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{v:?} must be true or false")),
        });
        let default_timezone = env.parsed("DEFAULT_TIMEZONE", Tz::parse);
        let window = "0..=365 days";
        let global_window_days = env.number("GLOBAL_CAP_DAYS", |d| (0..=365).contains(d), window);
        let playbook_window_days =
            env.number("PLAYBOOK_CAP_DAYS", |d| (0..=365).contains(d), window);
        let min = feedloop_kit::ports::MIN_RETENTION_DAYS;
        let retention_days = env.number(
            "RETENTION_DAYS",
            |d| (min..=3650).contains(d),
            &format!("{min}..=3650 days"),
        );
        let max_age_hours = env.number(
            "MAX_FOLLOWUP_AGE_HOURS",
            |h| (1..=8760).contains(h),
            "1..=8760 hours",
        );
        // `off` is no quiet hours; blank is a mistake `parse_quiet_hours` names.
        let quiet_hours = env
            .present("QUIET_HOURS")
            .and_then(|q| match parse_quiet_hours(&q) {
                Ok(q) => Some(q),
                Err(e) => {
                    env.rule("QUIET_HOURS", format!("QUIET_HOURS: {e}"));
                    None
                }
            });
        if mode == Some(DeliveryMode::Live) {
            let live = LiveSettings {
                email_from: email_from.as_deref(),
                configuration_set: configuration_set.as_deref(),
                reply_to: reply_to.as_deref(),
                postal_address: postal_address.as_deref(),
                unsubscribe_url: unsubscribe_url.as_deref(),
            };
            live.check(&mut env);
        }
        if let Some(u) = unsubscribe_url.as_deref().filter(|u| !is_public_url(u)) {
            env.rule(
                "UNSUBSCRIBE_URL",
                format!("UNSUBSCRIBE_URL={u:?} must be an https:// URL (http:// only for 127.0.0.1 or localhost)"),
            );
        }
        env.finish(|| {
            Some(FollowUpConfig {
                table_name: table?,
                queue_url: queue?,
                mode: mode?,
                email_from,
                reply_to,
                staff_event_bus: staff_event_bus?,
                configuration_set,
                secret_arn: secret_arn?,
                unsubscribe_url,
                retention_days: retention_days?,
                policy: DispatchPolicy {
                    consent: ConsentPolicy {
                        sms_countries: Some(sms_countries),
                        sms_to_new_numbers: sms_to_new_numbers?,
                        ..ConsentPolicy::default()
                    },
                    caps: CapPolicy {
                        global: Window::days(global_window_days?),
                        playbook: Window::days(playbook_window_days?),
                    },
                    quiet_hours: quiet_hours?,
                    company,
                    max_age_hours: max_age_hours?,
                    default_timezone: default_timezone?,
                    // Keyed once the secret is read (`policy_with`).
                    unsubscribe: None,
                    postal_address,
                },
            })
        })
    }
}

/// What live mode needs that dry-run mode may leave blank.
struct LiveSettings<'a> {
    email_from: Option<&'a str>,
    configuration_set: Option<&'a str>,
    reply_to: Option<&'a str>,
    postal_address: Option<&'a str>,
    unsubscribe_url: Option<&'a str>,
}

impl LiveSettings<'_> {
    fn check(&self, env: &mut Env) {
        if self.email_from.is_none_or(|f| !f.contains('@')) {
            let from = self.email_from.unwrap_or_default();
            env.rule(
                "EMAIL_FROM",
                format!("EMAIL_FROM={from:?} must be a verified SES address in live mode"),
            );
        }
        // Without it bounces and complaints never come back, and SES suspends
        // accounts whose bounce rate it sees climbing.
        if self.configuration_set.is_none() {
            env.rule(
                "SES_CONFIGURATION_SET",
                "SES_CONFIGURATION_SET must name the stack's configuration set in live mode",
            );
        }
        if self.reply_to.is_none_or(|r| !r.contains('@')) {
            env.rule(
                "REPLY_TO",
                "REPLY_TO must be a monitored mailbox in live mode: customers answer apologies",
            );
        }
        if self.postal_address.is_none() {
            env.rule(
                "POSTAL_ADDRESS",
                "POSTAL_ADDRESS must be the business's postal address in live mode: marketing e-mail carries it",
            );
        }
        if self.unsubscribe_url.is_none() {
            env.rule(
                "UNSUBSCRIBE_URL",
                "UNSUBSCRIBE_URL must name the API's /unsubscribe route in live mode: every e-mail carries it",
            );
        }
    }
}

/// `SMS_COUNTRIES` as ISO codes; blank is no SMS at all until the business names the
/// countries it texts.
fn sms_country_list(env: &mut Env, value: Option<String>) -> Vec<String> {
    let countries: Vec<String> = value
        .iter()
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(bad) = countries
        .iter()
        .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
    {
        env.rule(
            "SMS_COUNTRIES",
            format!(
                "SMS_COUNTRIES: {bad:?} is not an ISO 3166 two-letter country code (e.g. US,GB)"
            ),
        );
    }
    countries
}

/// Mail clients follow only https one-click links (RFC 8058); plain http is for a
/// local stack.
fn is_public_url(u: &str) -> bool {
    let host_of = |rest: &str| rest.split(['/', '?', ':']).next().unwrap_or("").to_owned();
    if let Some(rest) = u.strip_prefix("https://") {
        return !host_of(rest).is_empty();
    }
    u.strip_prefix("http://")
        .is_some_and(|rest| matches!(host_of(rest).as_str(), "127.0.0.1" | "localhost"))
}

impl FollowUpConfig {
    /// The policy with the stack's keys: links signed with the unsubscribe key.
    pub fn policy_with(&self, keys: &feedloop_core::keys::StackKeys) -> DispatchPolicy {
        let mut p = self.policy.clone();
        p.unsubscribe = self.unsubscribe_url.as_ref().map(|url| {
            feedloop_core::followup::unsubscribe::UnsubscribeLinks {
                url: url.clone(),
                key: keys.unsubscribe_key.clone(),
            }
        });
        p
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
        (
            "SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:feedloop-x",
        ),
        ("RETENTION_DAYS", "365"),
        ("MAX_FOLLOWUP_AGE_HOURS", "72"),
        ("DEFAULT_TIMEZONE", "Europe/London"),
        ("SES_CONFIGURATION_SET", ""),
        ("UNSUBSCRIBE_URL", ""),
        ("REPLY_TO", ""),
        ("SMS_COUNTRIES", "us, GB"),
        ("SMS_TO_NEW_NUMBERS", "false"),
        ("STAFF_EVENT_BUS", "default"),
        ("POSTAL_ADDRESS", ""),
    ];

    #[test]
    fn dry_run_needs_no_sender_but_live_does() {
        let c = FollowUpConfig::from_lookup(env(GOOD)).unwrap();
        assert_eq!(
            (c.mode, c.email_from, c.policy.caps.global),
            (DeliveryMode::DryRun, None, Window::days(7))
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
        assert!(err.contains("UNSUBSCRIBE_URL must name"), "{err}");
        assert!(
            err.contains("REPLY_TO must be a monitored mailbox")
                && err.contains("POSTAL_ADDRESS must be"),
            "{err}"
        );
    }

    #[test]
    fn sms_goes_only_to_the_named_countries_and_new_numbers_need_a_yes() {
        let c = FollowUpConfig::from_lookup(env(GOOD)).unwrap();
        assert_eq!(
            c.policy.consent.sms_countries,
            Some(vec!["US".to_owned(), "GB".to_owned()])
        );
        assert!(!c.policy.consent.sms_to_new_numbers);
        let with = |key: &'static str, value: &'static str| {
            move |k: &str| {
                if k == key {
                    Some(value.to_owned())
                } else {
                    env(GOOD)(k)
                }
            }
        };
        // Blank: no country, so no SMS at all.
        let none = FollowUpConfig::from_lookup(with("SMS_COUNTRIES", " ")).unwrap();
        assert_eq!(none.policy.consent.sms_countries, Some(vec![]));
        let err = FollowUpConfig::from_lookup(with("SMS_COUNTRIES", "US,USA"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"USA\" is not an ISO 3166"), "{err}");
        let err = FollowUpConfig::from_lookup(with("SMS_TO_NEW_NUMBERS", "yes"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMS_TO_NEW_NUMBERS"), "{err}");
    }

    #[test]
    fn unsubscribe_links_are_https_and_signed_with_the_stack_key() {
        for (url, ok) in [
            (
                "https://abc.execute-api.eu-west-1.amazonaws.com/unsubscribe",
                true,
            ),
            ("http://127.0.0.1:9000/unsubscribe", true),
            ("http://example.com/unsubscribe", false),
            ("https://", false),
            ("ftp://x/unsubscribe", false),
        ] {
            let lookup = |k: &str| {
                if k == "UNSUBSCRIBE_URL" {
                    Some(url.to_owned())
                } else {
                    env(GOOD)(k)
                }
            };
            assert_eq!(FollowUpConfig::from_lookup(lookup).is_ok(), ok, "{url}");
        }
        let lookup = |k: &str| {
            if k == "UNSUBSCRIBE_URL" {
                Some("https://x.example/unsubscribe".to_owned())
            } else {
                env(GOOD)(k)
            }
        };
        let c = FollowUpConfig::from_lookup(lookup).unwrap();
        let keys =
            feedloop_core::keys::StackKeys::derive("0123456789abcdef0123456789abcdef").unwrap();
        let links = c.policy_with(&keys).unsubscribe.unwrap();
        assert_eq!(links.key, keys.unsubscribe_key);
        assert_eq!(links.url, "https://x.example/unsubscribe");
    }

    #[test]
    fn every_problem_is_listed() {
        let err =
            FollowUpConfig::from_lookup(env(&[("DELIVERY_MODE", "loud"), ("QUIET_HOURS", "late")]))
                .unwrap_err()
                .to_string();
        for want in [
            "TABLE_NAME is not set",
            "DELIVERY_MODE: unknown delivery mode \"loud\" (expected dry-run, live)",
            "QUIET_HOURS",
            "SECRET_ARN is not set",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }
    }
}
