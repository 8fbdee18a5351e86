//! E-mail through SES v2, SMS through SNS, staff tasks on EventBridge.

use feedloop_core::followup::plan::Message;
use feedloop_core::followup::Purpose;
use feedloop_core::pii;
use feedloop_kit::ports::followup::*;

/// E-mail through SES v2, SMS through SNS.
#[derive(Clone)]
pub struct AwsDelivery {
    pub ses: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
    pub from: String,
    /// Where customers' answers go (a monitored mailbox); required in live mode.
    pub reply_to: Option<String>,
    /// Sent through this SES configuration set, whose bounce and complaint events come
    /// back (SNS) to suppress the address.
    pub configuration_set: Option<String>,
    pub events: aws_sdk_eventbridge::Client,
    /// The EventBridge bus staff tasks go to (`StaffTask`, detail-type
    /// [`STAFF_TASK_DETAIL_TYPE`]).
    pub staff_event_bus: String,
}

pub const STAFF_TASK_SOURCE: &str = "feedloop.followups";
pub const STAFF_TASK_DETAIL_TYPE: &str = "Follow-up needs a person";

/// A send that has not answered in this time is treated as unconfirmed (perhaps
/// delivered, never repeated) rather than left to the Lambda timeout.
const SEND_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

impl AwsDelivery {
    /// SES and SNS clients with the SDK's own retries off: it retries timeouts, and a
    /// timed-out send may have been delivered. The dispatcher retries what the provider
    /// refused, and only that.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        from: String,
        reply_to: Option<String>,
        configuration_set: Option<String>,
        staff_event_bus: String,
    ) -> Self {
        use aws_sdk_sesv2::config::retry::RetryConfig;
        use aws_sdk_sesv2::config::timeout::TimeoutConfig;
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(SEND_ATTEMPT_TIMEOUT)
            .operation_timeout(SEND_TIMEOUT)
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        AwsDelivery {
            ses: aws_sdk_sesv2::Client::from_conf(ses),
            sns: aws_sdk_sns::Client::from_conf(sns),
            from,
            reply_to,
            configuration_set,
            events: aws_sdk_eventbridge::Client::new(sdk),
            staff_event_bus,
        }
    }
}

/// What kind of failure a provider error is. Sending pauses and quotas are passing
/// (the account recovers, the next day's quota comes); a refused address is the
/// recipient's; everything else is ours to fix and retrying will not.
fn failure_kind(code: &str, message: &str) -> FailureKind {
    match code {
        "TooManyRequestsException"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "KMSThrottlingException"
        | "LimitExceededException"
        | "SendingPausedException"
        | "InternalFailure"
        | "InternalError"
        | "InternalErrorException"
        | "ServiceUnavailable" => FailureKind::Transient,
        "BadRequestException" | "InvalidParameter" | "InvalidParameterException"
            if ["address", "phone", "recipient", "destination"]
                .iter()
                .any(|w| message.to_lowercase().contains(w)) =>
        {
            FailureKind::BadRecipient
        }
        _ => FailureKind::Permanent,
    }
}

fn delivery_error<E, R>(what: &str, e: &aws_sdk_sesv2::error::SdkError<E, R>) -> DeliveryError
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_sesv2::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("");
            DeliveryError {
                // Providers quote the address they refused: keep it out of logs.
                message: format!("{what}: {code}: {}", pii::redact(message)),
                kind: failure_kind(code, message),
            }
        }
        // Never sent: our request could not be built.
        SdkError::ConstructionFailure(_) => {
            DeliveryError::permanent(format!("{what}: {}", pii::redact(&e.to_string())))
        }
        // Timeouts, dropped connections, unreadable replies: the request may have
        // reached the provider and been accepted. Sending again could deliver twice.
        other => DeliveryError::unconfirmed(format!("{what}: {}", pii::redact(&other.to_string()))),
    }
}

impl Deliver for AwsDelivery {
    async fn hand_to_staff(&self, task: &StaffTask) -> Result<(), DeliveryError> {
        let detail = serde_json::to_string(task)
            .map_err(|e| DeliveryError::permanent(format!("encoding the staff task: {e}")))?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.staff_event_bus)
            .source(STAFF_TASK_SOURCE)
            .detail_type(STAFF_TASK_DETAIL_TYPE)
            .detail(detail)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                task.at.timestamp(),
            ))
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                DeliveryError::transient(format!(
                    "staff task: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                ))
            })?;
        // PutEvents answers 200 with per-entry failures.
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(DeliveryError::transient(format!(
                "staff task refused: {why}"
            )));
        }
        Ok(())
    }

    async fn deliver(&self, m: &Message, purpose: Purpose) -> Result<String, DeliveryError> {
        use aws_sdk_sesv2::primitives::Blob;
        use aws_sdk_sesv2::types::{EmailContent, RawMessage};
        use feedloop_core::followup::mime;
        match m {
            Message::Email { to, email } => {
                // Raw MIME, so the one-click unsubscribe headers travel in the message.
                let sender = mime::Sender {
                    from: &self.from,
                    reply_to: self.reply_to.as_deref(),
                };
                let raw = mime::raw_email(&sender, to, email)
                    .map_err(|e| DeliveryError::permanent(format!("building the e-mail: {e}")))?;
                let out = self
                    .ses
                    .send_email()
                    .from_email_address(&self.from)
                    .set_configuration_set_name(self.configuration_set.clone())
                    .content(
                        EmailContent::builder()
                            .raw(
                                RawMessage::builder()
                                    .data(Blob::new(raw.into_bytes()))
                                    .build()
                                    .map_err(|e| {
                                        DeliveryError::permanent(format!(
                                            "building the e-mail: {e}"
                                        ))
                                    })?,
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| delivery_error("ses send_email", &e))?;
                Ok(out.message_id().unwrap_or_default().to_owned())
            }
            Message::Sms { to, sms } => {
                use aws_sdk_sns::types::MessageAttributeValue;
                let kind = match purpose {
                    Purpose::Service => "Transactional",
                    Purpose::Marketing => "Promotional",
                };
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(kind)
                    .build()
                    .map_err(|e| {
                        DeliveryError::permanent(format!("building SMS attributes: {e}"))
                    })?;
                // A STOP reply puts the number on the account's opt-out list; SNS would
                // drop the text anyway, so say why instead of counting it as sent.
                let opted_out = self
                    .sns
                    .check_if_phone_number_is_opted_out()
                    .phone_number(to)
                    .send()
                    .await
                    .map_err(|e| delivery_error("sns opt-out check", &e))?;
                if opted_out.is_opted_out() {
                    return Err(DeliveryError::permanent(
                        "the number is on the SNS SMS opt-out list (it replied STOP)",
                    ));
                }
                let out = self
                    .sns
                    .publish()
                    .phone_number(to)
                    .message(&sms.text)
                    .message_attributes("AWS.SNS.SMS.SMSType", attr)
                    .send()
                    .await
                    .map_err(|e| delivery_error("sns publish", &e))?;
                Ok(out.message_id().unwrap_or_default().to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_are_classified() {
        for (code, message, want) in [
            (
                "SendingPausedException",
                "sending paused",
                FailureKind::Transient,
            ),
            (
                "LimitExceededException",
                "Maximum sending rate exceeded",
                FailureKind::Transient,
            ),
            ("TooManyRequestsException", "", FailureKind::Transient),
            (
                "BadRequestException",
                "Illegal address",
                FailureKind::BadRecipient,
            ),
            (
                "InvalidParameter",
                "Invalid parameter: PhoneNumber",
                FailureKind::BadRecipient,
            ),
            (
                "MessageRejected",
                "Email address is not verified",
                FailureKind::Permanent,
            ),
            (
                "BadRequestException",
                "Invalid content",
                FailureKind::Permanent,
            ),
            ("AccountSuspendedException", "", FailureKind::Permanent),
        ] {
            assert_eq!(failure_kind(code, message), want, "{code}: {message}");
        }
    }
}
