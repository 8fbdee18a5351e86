//! One reader for the functions' environment. Every problem is collected (a broken
//! deploy is told everything wrong at once, at cold start), each is a typed value.
//! Secrets are not read from the environment: the stack secret comes from Secrets
//! Manager (`feedloop_aws::secrets`).

use std::fmt;
use std::str::FromStr;

/// One thing wrong with the environment.
#[derive(Clone, PartialEq, Eq)]
pub enum Problem {
    /// The variable is absent (or blank, where a value is required).
    Missing { var: String },
    /// Present but outside what is accepted.
    Invalid {
        var: String,
        value: String,
        want: String,
    },
    /// A rule about one or several variables, said in full.
    Rule { var: String, message: String },
}

impl Problem {
    pub fn var(&self) -> &str {
        match self {
            Problem::Missing { var } | Problem::Invalid { var, .. } | Problem::Rule { var, .. } => {
                var
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { var } => write!(f, "{var} is not set"),
            Problem::Invalid { var, value, want } => write!(f, "{var}={value:?} is not {want}"),
            Problem::Rule { message, .. } => f.write_str(message),
        }
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What a cold-start log shows: the sentence, not the enum.
        write!(f, "{self}")
    }
}

/// Every problem found, in the order the variables were read.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl ConfigError {
    pub fn rule(var: &str, message: impl Into<String>) -> ConfigError {
        ConfigError(vec![Problem::Rule {
            var: var.to_owned(),
            message: message.into(),
        }])
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "invalid configuration: {}", all.join("; "))
    }
}

/// Reads variables through `get` (the process environment, or a map in tests) and
/// collects what is wrong; [`Env::finish`] turns that into one [`ConfigError`].
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

pub struct Env<'a> {
    get: Lookup<'a>,
    problems: Vec<Problem>,
}

impl<'a> Env<'a> {
    pub fn new(get: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env {
            get: Box::new(get),
            problems: Vec::new(),
        }
    }

    /// Present, possibly blank: a template parameter left empty is a choice, a
    /// variable missing altogether is a broken deploy.
    pub fn present(&mut self, var: &str) -> Option<String> {
        let v = (self.get)(var);
        if v.is_none() {
            self.missing(var);
        }
        v
    }

    /// Present and not blank, trimmed.
    pub fn required(&mut self, var: &str) -> Option<String> {
        match (self.get)(var).map(|v| v.trim().to_owned()) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                self.missing(var);
                None
            }
        }
    }

    /// Absent or blank is `None`, and fine.
    pub fn optional(&mut self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Required and parsed as `T`, accepted by `ok`; `want` says what is accepted.
    pub fn number<T: FromStr>(
        &mut self,
        var: &str,
        ok: impl Fn(&T) -> bool,
        want: &str,
    ) -> Option<T> {
        let raw = self.present(var)?;
        match raw.trim().parse::<T>() {
            Ok(n) if ok(&n) => Some(n),
            _ => {
                self.problems.push(Problem::Invalid {
                    var: var.to_owned(),
                    value: raw,
                    want: want.to_owned(),
                });
                None
            }
        }
    }

    /// Required and parsed by `parse`, whose error is said after the variable's name.
    pub fn parsed<T>(
        &mut self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.required(var)?;
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.rule(var, format!("{var}: {e}"));
                None
            }
        }
    }

    pub fn missing(&mut self, var: &str) {
        self.problems.push(Problem::Missing {
            var: var.to_owned(),
        });
    }

    /// Record a problem a caller found by its own rule.
    pub fn rule(&mut self, var: &str, message: impl Into<String>) {
        self.problems.push(Problem::Rule {
            var: var.to_owned(),
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing was wrong; `value` is built only then.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ConfigError> {
        if !self.problems.is_empty() {
            return Err(ConfigError(self.problems));
        }
        value().ok_or_else(|| ConfigError::rule("", "incomplete configuration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_collected() {
        let vars = [("N", "0"), ("BLANK", "  ")];
        let mut env = Env::new(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(
            env.number::<u16>("N", |n| (1..=100).contains(n), "1..=100"),
            None
        );
        assert_eq!(env.required("BLANK"), None);
        assert_eq!(env.optional("BLANK"), None);
        assert_eq!(env.present("ABSENT"), None);
        let e = env.finish(|| Some(())).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains(r#"N="0" is not 1..=100"#), "{text}");
        assert!(text.contains("BLANK is not set") && text.contains("ABSENT is not set"));
        assert_eq!(e.0.len(), 3);
        assert!(Env::new(|_| Some("5".into())).finish(|| Some(1)).is_ok());
    }
}
