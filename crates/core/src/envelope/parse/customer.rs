//! The customer block: contact fields checked one by one (and never echoed into a
//! problem), explicit nulls that clear a field, and consent per channel.

use super::*;

impl Checker<'_> {
    pub(super) fn customer(&mut self, obj: &Map<String, Value>) -> Option<CustomerInfo> {
        let v = self.field(obj, "customer")?;
        let Value::Object(c) = v else {
            self.problem(
                "customer",
                format!("expected an object, got {}", type_name(v)),
            );
            return None;
        };
        const KNOWN: &[&str] = &[
            "name",
            "email",
            "phone",
            "timezone",
            "preferred_channel",
            "consent",
        ];
        for k in c.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            self.problem(format!("customer.{k}"), "unknown field");
        }
        let mut info = CustomerInfo::default();
        for (k, field) in [
            ("name", ContactField::Name),
            ("email", ContactField::Email),
            ("phone", ContactField::Phone),
            ("timezone", ContactField::Timezone),
            ("preferred_channel", ContactField::PreferredChannel),
        ] {
            if c.get(k).is_some_and(Value::is_null) {
                info.cleared.push(field);
            }
        }
        let get = |k: &str| c.get(k).filter(|v| !v.is_null());
        if let Some(v) = get("name") {
            info.name = self.short("customer.name", v, 200);
        }
        if let Some(v) = get("email") {
            // The rule, never the value: rejects and logs must not hold PII.
            info.email = self.short_checked("customer.email", v, 254, |e| {
                looks_like_email(e)
                    .then(|| e.to_owned())
                    .ok_or_else(|| "is not an e-mail address (local@domain.tld)".to_owned())
            });
        }
        if let Some(v) = get("phone") {
            info.phone = self.short_checked("customer.phone", v, 32, |p| {
                normalise_phone(p)
                    .ok_or_else(|| "is not an E.164 number (+ then 8 to 15 digits)".to_owned())
            });
        }
        if let Some(v) = get("timezone") {
            info.timezone = self.short_checked("customer.timezone", v, 64, |tz| {
                Tz::parse(tz).map_err(|_| {
                    format!(
                        "unknown time zone {} (use an IANA name such as Europe/Paris)",
                        shown(tz)
                    )
                })
            });
        }
        if let Some(v) = get("preferred_channel") {
            info.preferred_channel = self.choice(
                "customer.preferred_channel",
                v,
                Channel::NAMES,
                Channel::from_name,
            );
        }
        if let Some(v) = get("consent") {
            self.consent(v, &mut info.consent);
        }
        Some(info)
    }

    fn consent(&mut self, v: &Value, consent: &mut Consent) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let path = format!("customer.consent.{k}");
                    let slot = match k.as_str() {
                        "email" => &mut consent.email,
                        "sms" => &mut consent.sms,
                        "phone" => &mut consent.phone,
                        _ => {
                            self.problem(path, "unknown channel (expected email, sms or phone)");
                            continue;
                        }
                    };
                    match v {
                        Value::Bool(b) => *slot = Some(*b),
                        Value::Null => {}
                        other => self.problem(
                            path,
                            format!("expected a boolean, got {}", type_name(other)),
                        ),
                    }
                }
            }
            other => self.problem(
                "customer.consent",
                format!("expected an object, got {}", type_name(other)),
            ),
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn normalise_phone(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then_some(compact)
}
