//! Follow-up templates: per template x locale x A/B variant, parts for e-mail (subject,
//! text, HTML) and SMS. Rendered with minijinja in strict mode, so a variable without a
//! fallback is an error instead of "Hi ,"; HTML parts escape every variable.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use super::{PlaybookId, VariantId};
use crate::envelope::CustomerId;

pub const DEFAULT_TEMPLATES: &str = include_str!("../../playbooks/templates.toml");

/// Appended to every marketing SMS: carriers and SNS honour STOP replies.
pub const SMS_OPT_OUT: &str = " Reply STOP to opt out.";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub weight: u32,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
}

/// template id -> locale -> variant name -> parts.
pub type Catalog = BTreeMap<String, BTreeMap<String, BTreeMap<String, Variant>>>;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("templates are not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("template {0:?} does not exist")]
    Unknown(String),
    #[error("template {template:?} has no locale {locale:?} and no English fallback")]
    NoLocale { template: String, locale: String },
    #[error("template {template:?} locale {locale:?} has no variant with a positive weight")]
    NoVariant { template: String, locale: String },
    #[error("rendering {name}: {source}")]
    Render {
        name: String,
        source: minijinja::Error,
    },
}

/// The values a template may use. Absent ones are undefined, so the template's
/// `default(...)` text applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Variables {
    pub first_name: Option<String>,
    pub company: Option<String>,
    pub theme_label: Option<String>,
    pub product: Option<String>,
    pub score: Option<u8>,
    pub ticket_id: Option<String>,
    pub agent: Option<String>,
}

impl Variables {
    fn context(&self) -> minijinja::Value {
        use minijinja::Value;
        let text = [
            ("first_name", &self.first_name),
            ("company", &self.company),
            ("theme_label", &self.theme_label),
            ("product", &self.product),
            ("ticket_id", &self.ticket_id),
            ("agent", &self.agent),
        ];
        let mut pairs: Vec<(&str, Value)> = text
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, Value::from(v.clone()))))
            .collect();
        if let Some(score) = self.score {
            pairs.push(("score", Value::from(score)));
        }
        Value::from_pairs(pairs)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedEmail {
    pub variant: VariantId,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The one-click opt-out link: in the footer of both parts and, as RFC 8058
    /// headers, where mail clients show their own "unsubscribe" button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl RenderedEmail {
    /// The sender's postal address at the foot of both parts (CAN-SPAM asks it of
    /// commercial mail).
    pub fn with_postal_address(mut self, address: &str) -> RenderedEmail {
        self.text.push_str(&format!("\n{address}\n"));
        self.footer(&html_escape(address));
        self
    }

    /// Add the opt-out footer (here, not in the templates, so no template can forget
    /// it) and remember the link for the headers. The HTML footer goes before
    /// `</body>` when the part has one.
    pub fn with_unsubscribe(mut self, url: &str) -> RenderedEmail {
        self.text.push_str(&format!(
            "\n\n--\nDon't want these e-mails? Unsubscribe with one click: {url}\n"
        ));
        self.footer(&format!(
            "Don't want these e-mails? <a href=\"{}\">Unsubscribe</a>.",
            html_escape(url)
        ));
        self.unsubscribe_url = Some(url.to_owned());
        self
    }

    /// A small-print paragraph of (already escaped) HTML, before `</body>` when the
    /// part has one.
    fn footer(&mut self, html: &str) {
        let footer = format!("<p style=\"font-size:12px;color:#666\">{html}</p>");
        match self.html.rfind("</body>") {
            Some(i) => self.html.insert_str(i, &footer),
            None => self.html.push_str(&footer),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedSms {
    pub variant: VariantId,
    pub text: String,
    pub encoding: SmsEncoding,
    /// Parts as they would be sent (one unless the text is longer than one SMS).
    pub segments: Vec<String>,
}

pub struct Templates {
    catalog: Catalog,
}

/// FNV-1a over customer and playbook: the same customer always gets the same variant of
/// a playbook, so outcomes can be attributed, and different customers spread by weight.
fn bucket(customer: &str, playbook: &str, total: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer.bytes().chain([0]).chain(playbook.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(total.max(1))) as u32
}

/// What picks a variant and names the rendered parts: which template, in which
/// language, for whom, in which playbook.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'a> {
    pub template: &'a str,
    pub locale: &'a str,
    pub customer: &'a CustomerId,
    pub playbook: &'a PlaybookId,
}

impl Templates {
    pub fn default_catalog() -> Templates {
        Self::from_toml(DEFAULT_TEMPLATES).expect("shipped templates are valid (checked by tests)")
    }

    pub fn from_toml(src: &str) -> Result<Templates, TemplateError> {
        Ok(Templates {
            catalog: toml::from_str(src)?,
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn locale_of<'a>(
        &'a self,
        template: &str,
        locale: &str,
    ) -> Result<&'a BTreeMap<String, Variant>, TemplateError> {
        let locales = self
            .catalog
            .get(template)
            .ok_or_else(|| TemplateError::Unknown(template.into()))?;
        let lang = locale.split(['-', '_']).next().unwrap_or(locale);
        locales
            .get(locale)
            .or_else(|| locales.get(lang))
            .or_else(|| locales.get("en"))
            .ok_or_else(|| TemplateError::NoLocale {
                template: template.into(),
                locale: locale.into(),
            })
    }

    /// The variant a customer gets for a playbook's template.
    pub fn assign<'a>(&'a self, pick: &Pick) -> Result<(&'a str, &'a Variant), TemplateError> {
        let Pick {
            template,
            locale,
            customer,
            playbook,
        } = *pick;
        let variants = self.locale_of(template, locale)?;
        let total: u32 = variants.values().map(|v| v.weight).sum();
        let no_variant = || TemplateError::NoVariant {
            template: template.into(),
            locale: locale.into(),
        };
        if total == 0 {
            return Err(no_variant());
        }
        let mut b = bucket(customer.as_str(), playbook.as_str(), total);
        for (name, v) in variants {
            if b < v.weight {
                return Ok((name, v));
            }
            b -= v.weight;
        }
        Err(no_variant())
    }

    fn render_part(name: &str, source: &str, vars: &Variables) -> Result<String, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let html = name.ends_with(".html");
        env.set_auto_escape_callback(move |_| {
            if html {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.render_str(source, vars.context())
            .map_err(|source| TemplateError::Render {
                name: name.into(),
                source,
            })
    }

    pub fn render_email(
        &self,
        pick: &Pick,
        vars: &Variables,
    ) -> Result<RenderedEmail, TemplateError> {
        let (variant, v) = self.assign(pick)?;
        let n = |part: &str| format!("{}.{}.{variant}.{part}", pick.template, pick.locale);
        Ok(RenderedEmail {
            variant: variant.into(),
            subject: Self::render_part(&n("subject"), &v.subject, vars)?.replace('\n', " "),
            text: Self::render_part(&n("text"), &v.text, vars)?,
            html: Self::render_part(&n("html"), &v.html, vars)?,
            unsubscribe_url: None,
        })
    }

    /// A marketing text always ends with the opt-out line (added here, so no template
    /// can forget it); the count of segments includes it.
    pub fn render_sms(
        &self,
        pick: &Pick,
        vars: &Variables,
        marketing: bool,
    ) -> Result<RenderedSms, TemplateError> {
        let (variant, v) = self.assign(pick)?;
        let name = format!("{}.{}.{variant}.sms", pick.template, pick.locale);
        let mut text = Self::render_part(&name, &v.sms, vars)?;
        if marketing {
            text.push_str(SMS_OPT_OUT);
        }
        let (encoding, segments) = sms_segments(&text);
        Ok(RenderedSms {
            variant: variant.into(),
            text,
            encoding,
            segments,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// 160 septets in one message, 153 per part when concatenated.
    Gsm7,
    /// Any character outside GSM 03.38: 70 characters, 67 per part.
    Ucs2,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

fn septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Split an SMS into the parts a carrier would send. Extended GSM characters take two
/// septets and are never split from their escape; UCS-2 parts never split a surrogate
/// pair's character.
pub fn sms_segments(text: &str) -> (SmsEncoding, Vec<String>) {
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    let (encoding, costs, single, part) = match gsm {
        Some(c) => (SmsEncoding::Gsm7, c, 160, 153),
        None => (
            SmsEncoding::Ucs2,
            text.chars().map(|c| c.len_utf16()).collect(),
            70,
            67,
        ),
    };
    if costs.iter().sum::<usize>() <= single {
        return (encoding, vec![text.to_owned()]);
    }
    let mut parts = Vec::new();
    let (mut cur, mut used) = (String::new(), 0);
    for (c, cost) in text.chars().zip(costs) {
        if used + cost > part {
            parts.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(c);
        used += cost;
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    (encoding, parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaks(s: &str) -> bool {
        ["{{", "}}", "{%", "%}", "None", "none", "undefined"]
            .iter()
            .any(|p| s.contains(p))
    }

    #[test]
    fn no_text_invites_a_reply_nothing_receives_and_marketing_texts_say_how_to_stop() {
        // SNS delivers texts one way: only carriers' STOP handling reads replies.
        let t = Templates::default_catalog();
        let full = Variables {
            first_name: Some("Ada".into()),
            company: Some("Bean There Coffee".into()),
            theme_label: Some("Delivery & shipping".into()),
            score: Some(8),
            ticket_id: Some("T-1042".into()),
            ..Variables::default()
        };
        for (template, locales) in t.catalog() {
            for (locale, variants) in locales {
                for (variant, v) in variants {
                    let plain = Templates::render_part("sms", &v.sms, &full).unwrap();
                    assert!(
                        !plain.to_lowercase().contains("reply"),
                        "{template}.{locale}.{variant}: {plain:?}"
                    );
                }
                // Every customer gets some variant: check the marketing rendering of each.
                let p = PlaybookId::from("p");
                for customer in ["c1", "c2", "c3", "c4", "c5", "c6"] {
                    let customer = CustomerId::parse(customer).unwrap();
                    let pick = Pick {
                        template,
                        locale,
                        customer: &customer,
                        playbook: &p,
                    };
                    let sms = t.render_sms(&pick, &full, true).unwrap();
                    assert!(sms.text.ends_with(SMS_OPT_OUT), "{:?}", sms.text);
                    assert_eq!(
                        (sms.encoding, sms.segments.len()),
                        (SmsEncoding::Gsm7, 1),
                        "{template}: {:?}",
                        sms.text
                    );
                    let service = t.render_sms(&pick, &full, false).unwrap();
                    assert!(!service.text.contains("STOP"), "{:?}", service.text);
                }
            }
        }
    }

    #[test]
    fn every_shipped_template_renders_with_an_empty_customer_and_no_placeholder_leaks() {
        let t = Templates::default_catalog();
        let empty = Variables::default();
        let full = Variables {
            first_name: Some("Ada".into()),
            company: Some("Bean There".into()),
            theme_label: Some("Delivery & shipping".into()),
            product: Some("the house blend".into()),
            score: Some(8),
            ticket_id: Some("T-1042".into()),
            agent: Some("Sam".into()),
        };
        let mut rendered = 0;
        for (template, locales) in t.catalog() {
            for (locale, variants) in locales {
                for (variant, v) in variants {
                    for vars in [&empty, &full] {
                        for (part, src) in [
                            ("subject", &v.subject),
                            ("text", &v.text),
                            ("html", &v.html),
                            ("sms", &v.sms),
                        ] {
                            let name = format!("{template}.{locale}.{variant}.{part}");
                            let out = Templates::render_part(&name, src, vars)
                                .unwrap_or_else(|e| panic!("{e}"));
                            assert!(!leaks(&out) && !out.trim().is_empty(), "{name}: {out:?}");
                            assert!(
                                !out.contains(" ,") && !out.contains("Hi ,"),
                                "{name}: {out:?}"
                            );
                            rendered += 1;
                        }
                        let sms = Templates::render_part("sms", &v.sms, vars).unwrap();
                        let (enc, parts) = sms_segments(&sms);
                        assert_eq!(
                            (enc, parts.len()),
                            (SmsEncoding::Gsm7, 1),
                            "{template}.{variant} SMS must be one GSM-7 message: {sms:?}"
                        );
                    }
                }
            }
        }
        assert!(rendered >= 6 * 8, "{rendered}");
    }

    #[test]
    fn html_escapes_customer_values_and_text_keeps_them() {
        let t = Templates::default_catalog();
        let vars = Variables {
            first_name: Some("<script>alert(1)</script>".into()),
            ..Default::default()
        };
        let pick = Pick {
            template: "passive_nudge",
            locale: "en-GB",
            customer: &CustomerId::parse("c1").unwrap(),
            playbook: &"p".into(),
        };
        let e = t.render_email(&pick, &vars).unwrap();
        assert!(e.html.contains("&lt;script&gt;") && !e.html.contains("<script>"));
        assert!(e.text.contains("<script>"));
    }

    #[test]
    fn a_missing_fallback_is_an_error_not_a_blank() {
        let err = Templates::render_part("x.text", "Hi {{ first_name }}", &Variables::default())
            .unwrap_err();
        assert!(err.to_string().starts_with("rendering x.text"));
    }

    #[test]
    fn variants_are_deterministic_and_follow_weights() {
        let t = Templates::default_catalog();
        let playbook = PlaybookId::from("detractor_recovery");
        let pick = |c: &str| {
            let customer = CustomerId::parse(c).unwrap();
            let who = Pick {
                template: "detractor_recovery",
                locale: "en",
                customer: &customer,
                playbook: &playbook,
            };
            t.assign(&who).unwrap().0.to_owned()
        };
        assert_eq!(pick("cust-1"), pick("cust-1"));
        let a = (0..2000)
            .filter(|i| pick(&format!("cust-{i}")) == "a")
            .count();
        assert!((850..1150).contains(&a), "50/50 split gave {a} of 2000");
        let unknown = Pick {
            template: "nope",
            locale: "en",
            customer: &CustomerId::parse("c").unwrap(),
            playbook: &playbook,
        };
        assert!(matches!(t.assign(&unknown), Err(TemplateError::Unknown(_))));
    }

    #[test]
    fn sms_segmentation_gsm7_and_ucs2() {
        assert_eq!(sms_segments(&"a".repeat(160)).1.len(), 1);
        let (enc, parts) = sms_segments(&"a".repeat(161));
        assert_eq!(
            (enc, parts.iter().map(|p| p.len()).collect::<Vec<_>>()),
            (SmsEncoding::Gsm7, vec![153, 8])
        );
        // '€' costs two septets: 80 of them fill exactly one message.
        assert_eq!(sms_segments(&"€".repeat(80)).1.len(), 1);
        assert_eq!(sms_segments(&"€".repeat(81)).1.len(), 2);
        let (enc, parts) = sms_segments(&"ü".repeat(10).replace('ü', "ű").repeat(8));
        assert_eq!((enc, parts.len()), (SmsEncoding::Ucs2, 2));
    }
}
