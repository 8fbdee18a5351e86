//! SES bounce and complaint notifications (configuration-set event publishing through
//! SNS, or an identity's feedback notifications): which addresses to stop mailing.
//! A hard bounce or a complaint suppresses the address at once; soft bounces (a full
//! mailbox, a server that is down) are counted and suppress it at the third.

use serde::Deserialize;

/// Soft bounces of one address that suppress it.
pub const SOFT_BOUNCES_TO_SUPPRESS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEventKind {
    HardBounce,
    SoftBounce,
    Complaint,
    /// Sends, deliveries, opens: nothing to do (the configuration set publishes only
    /// bounces and complaints, but an identity's topic may carry more).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    pub kind: DeliveryEventKind,
    /// SES's feedback id (one per bounce or complaint), else the sent mail's id: a
    /// re-delivered notification has the same one.
    pub id: String,
    pub recipients: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    /// Configuration-set events say `eventType`, identity notifications
    /// `notificationType`.
    event_type: Option<String>,
    notification_type: Option<String>,
    #[serde(default)]
    mail: Mail,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// Read one SES notification (the SNS message text). The error names what is wrong
/// and never quotes the message: it holds addresses.
pub fn parse_ses_notification(message: &str) -> Result<DeliveryEvent, String> {
    let n: Notification = serde_json::from_str(message).map_err(|e| {
        format!(
            "not an SES notification (line {}, column {}: {})",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data => "missing or mistyped field",
                serde_json::error::Category::Syntax => "invalid JSON",
                serde_json::error::Category::Eof => "truncated",
                serde_json::error::Category::Io => "unreadable",
            }
        )
    })?;
    let kind_name = n
        .event_type
        .or(n.notification_type)
        .ok_or("an SES notification names its eventType or notificationType")?;
    let mail_id = n.mail.message_id;
    let (kind, recipients, feedback_id) = match kind_name.as_str() {
        "Bounce" => {
            let b = n
                .bounce
                .ok_or("a Bounce notification without a bounce object")?;
            // Permanent: the address does not exist or refuses us. Transient and
            // Undetermined may pass.
            let kind = if b.bounce_type == "Permanent" {
                DeliveryEventKind::HardBounce
            } else {
                DeliveryEventKind::SoftBounce
            };
            (kind, b.bounced_recipients, b.feedback_id)
        }
        "Complaint" => {
            let c = n
                .complaint
                .ok_or("a Complaint notification without a complaint object")?;
            (
                DeliveryEventKind::Complaint,
                c.complained_recipients,
                c.feedback_id,
            )
        }
        _ => (DeliveryEventKind::Other, Vec::new(), None),
    };
    let id = feedback_id
        .or(mail_id)
        .ok_or("an SES notification without a feedbackId or mail.messageId")?;
    if kind != DeliveryEventKind::Other && recipients.is_empty() {
        return Err(format!("a {kind_name} notification without recipients"));
    }
    Ok(DeliveryEvent {
        kind,
        id,
        recipients: recipients.into_iter().map(|r| r.email_address).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_and_complaints_are_read_in_both_formats() {
        let hard = r#"{"eventType":"Bounce","mail":{"messageId":"m1"},
            "bounce":{"bounceType":"Permanent","bounceSubType":"General",
            "bouncedRecipients":[{"emailAddress":"a@example.com"}],"feedbackId":"fb1"}}"#;
        assert_eq!(
            parse_ses_notification(hard).unwrap(),
            DeliveryEvent {
                kind: DeliveryEventKind::HardBounce,
                id: "fb1".into(),
                recipients: vec!["a@example.com".into()],
            }
        );
        let soft = r#"{"notificationType":"Bounce","mail":{"messageId":"m2"},
            "bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"b@example.com"}]}}"#;
        let e = parse_ses_notification(soft).unwrap();
        assert_eq!(
            (e.kind, e.id.as_str()),
            (DeliveryEventKind::SoftBounce, "m2")
        );
        let complaint = r#"{"eventType":"Complaint","mail":{"messageId":"m3"},
            "complaint":{"complainedRecipients":[{"emailAddress":"c@example.com"}],"feedbackId":"fb3"}}"#;
        assert_eq!(
            parse_ses_notification(complaint).unwrap().kind,
            DeliveryEventKind::Complaint
        );
        let delivery = r#"{"eventType":"Delivery","mail":{"messageId":"m4"}}"#;
        assert_eq!(
            parse_ses_notification(delivery).unwrap().kind,
            DeliveryEventKind::Other
        );
    }

    #[test]
    fn malformed_notifications_say_why_without_quoting_them() {
        for (msg, want) in [
            (
                "{\"eventType\":\"Bounce\",\"mail\":{\"messageId\":\"m\"}}",
                "without a bounce object",
            ),
            ("secret@example.com", "invalid JSON"),
            ("{\"mail\":{}}", "names its eventType"),
            (
                r#"{"eventType":"Bounce","mail":{"messageId":"m"},"bounce":{"bounceType":"Permanent","bouncedRecipients":[]}}"#,
                "without recipients",
            ),
        ] {
            let err = parse_ses_notification(msg).unwrap_err();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("secret@"), "{err}");
        }
    }
}
