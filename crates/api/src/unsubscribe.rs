//! The customer-facing unsubscribe route: a confirm page that changes nothing, and
//! the one-click POST. Its answers, errors included, are pages for people.

use std::collections::HashMap;

use feedloop_core::envelope::CustomerId;
use feedloop_core::followup::templates::html_escape;
use feedloop_core::followup::{unsubscribe, ContactChannel};
use feedloop_kit::ports::query::QueryStore;
use tracing::info;

use crate::handler::{bad, Api, ApiResponse, Reject};

impl<S: QueryStore> Api<S> {
    fn opt_out(&self, q: &HashMap<String, String>) -> Result<unsubscribe::OptOut, Reject> {
        let token = q
            .get("token")
            .ok_or_else(|| page_error(bad("invalid_token", "the link has no token")))?;
        unsubscribe::verify(&self.keys.unsubscribe_key, token, (self.clock)()).map_err(|e| {
            let (status, code) = match e {
                unsubscribe::TokenError::Expired => (410, "expired_token"),
                _ => (400, "invalid_token"),
            };
            info!(code, "unsubscribe link refused");
            Reject::Page(page(
                status,
                "This link does not work",
                &format!(
                    "{}. To stop hearing from us, reply to any of our messages and we will take you off the list.",
                    capitalise(&e.to_string())
                ),
                None,
            ))
        })
    }

    /// The confirm page. It changes nothing: mail scanners open links, and an
    /// unsubscribe must be the customer's act (a POST, RFC 8058).
    pub(crate) fn unsubscribe_page(
        &self,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let o = self.opt_out(q)?;
        let token = q.get("token").map(String::as_str).unwrap_or_default();
        Ok(page(
            200,
            &format!("Unsubscribe from {}?", channel_words(o.channel)),
            &format!(
                "You will get no more {} from us about your feedback.",
                channel_words(o.channel)
            ),
            Some(token),
        ))
    }

    /// One click: a mail client's `List-Unsubscribe-Post` or the confirm page's button.
    pub(crate) async fn unsubscribe_by_link(
        &self,
        q: &HashMap<String, String>,
    ) -> Result<ApiResponse, Reject> {
        let o = self.opt_out(q)?;
        // Signed by this stack, so it was a valid id when issued.
        let customer = CustomerId::parse(&o.customer_id)
            .map_err(|_| page_error(bad("invalid_token", "the link names no customer")))?;
        let found = self
            .unsubscribe(&customer, o.channel)
            .await
            .map_err(|e| page_error(Reject::from(e)))?;
        // An erased customer has nothing left to opt out of; the answer is the same,
        // so the link tells nobody whether a record exists.
        info!(channel = ?o.channel, on_file = found, "unsubscribed by link");
        Ok(page(
            200,
            "You are unsubscribed",
            &format!(
                "You will get no more {} from us. If this was a mistake, tell us when you next write and we will switch them back on.",
                channel_words(o.channel)
            ),
            None,
        ))
    }
}

fn channel_words(c: ContactChannel) -> &'static str {
    match c {
        ContactChannel::Email => "e-mails",
        ContactChannel::Sms => "text messages",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A customer-facing page: plain HTML, no script; text is escaped, and the token is
/// echoed only when it is URL-safe characters.
fn page(status: u16, title: &str, text: &str, confirm_token: Option<&str>) -> ApiResponse {
    let (title, text) = (html_escape(title), html_escape(text));
    let form = confirm_token
        .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(|t| {
            format!(
                r#"<form method="post" action="?token={t}"><button type="submit">Unsubscribe</button></form>"#
            )
        })
        .unwrap_or_default();
    ApiResponse {
        status,
        content_type: "text/html; charset=utf-8",
        body: format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>{title}</h1><p>{text}</p>{form}</body></html>"
        ),
    }
}

/// The unsubscribe route answers people, not programs: its errors are pages too.
pub(crate) fn page_error(r: Reject) -> Reject {
    let (status, message) = match r {
        Reject::Page(_) => return r,
        Reject::Query(e) => (e.status(), e.to_string()),
        other => {
            let r = ApiResponse::from(other);
            (r.status, "something went wrong".to_owned())
        }
    };
    Reject::Page(page(
        status,
        "This link does not work",
        &capitalise(&message),
        None,
    ))
}
