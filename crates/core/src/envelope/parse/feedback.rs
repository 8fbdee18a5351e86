//! One feedback: the common fields, then those of its kind (review, survey,
//! ticket), each field known and in its place.

use super::*;

impl Checker<'_> {
    pub(super) fn envelope(&mut self, obj: &Map<String, Value>) -> Option<Feedback> {
        self.check_schema(obj);
        let feedback_id = self.id(obj, "feedback_id");
        let customer_id = self.id(obj, "customer_id");
        let kind = self.required(obj, "kind").and_then(|v| {
            self.choice("kind", v, &["review", "survey", "ticket"], |s| match s {
                "review" => Some(Kind::Review),
                "survey" => Some(Kind::Survey),
                "ticket" => Some(Kind::Ticket),
                _ => None,
            })
        });
        self.check_fields(obj, kind);
        let occurred_at = self.timestamp(obj);
        let text = self.text(obj);
        let channel = self
            .field(obj, "channel")
            .and_then(|v| self.choice("channel", v, Channel::NAMES, Channel::from_name));
        let source = self.opt_short(obj, "source", self.limits.max_short_chars);
        let locale = self.locale(obj);
        let customer = self.customer(obj);
        let metadata = self.metadata(obj);
        let details = match kind? {
            Kind::Review => self.review(obj, &text),
            Kind::Survey => self.survey(obj),
            Kind::Ticket => self.ticket(obj, &text)?,
        };
        Some(Feedback {
            feedback_id: FeedbackId(feedback_id?),
            customer_id: CustomerId(customer_id?),
            occurred_at: occurred_at?,
            text,
            channel,
            source,
            locale,
            customer,
            metadata,
            details,
            received_at: Some(self.now),
        })
    }

    fn check_schema(&mut self, obj: &Map<String, Value>) {
        if let Some(v) = self.field(obj, "schema") {
            if v.as_str() != Some(SCHEMA) {
                self.problem(
                    "schema",
                    format!(
                        "unsupported schema {} (expected {SCHEMA:?})",
                        v.as_str()
                            .map_or_else(|| "(not a string)".to_owned(), shown)
                    ),
                );
            }
        }
    }

    /// Every field is known, and those of one kind appear only with that kind.
    fn check_fields(&mut self, obj: &Map<String, Value>, kind: Option<Kind>) {
        let kind_fields: &[&str] = match kind {
            Some(Kind::Review) => REVIEW_FIELDS,
            Some(Kind::Survey) => SURVEY_FIELDS,
            Some(Kind::Ticket) => TICKET_FIELDS,
            None => &[],
        };
        for key in obj.keys() {
            let k = key.as_str();
            if COMMON_FIELDS.contains(&k) || kind_fields.contains(&k) {
                continue;
            }
            let owner = [
                (REVIEW_FIELDS, "review"),
                (SURVEY_FIELDS, "survey"),
                (TICKET_FIELDS, "ticket"),
            ]
            .into_iter()
            .find(|(fields, _)| fields.contains(&k));
            match (owner, kind) {
                (Some((_, owner)), Some(_)) => {
                    self.problem(k, format!("only allowed when kind is {owner}"))
                }
                (Some(_), None) => {}
                (None, _) => self.problem(k, "unknown field"),
            }
        }
    }

    fn review(&mut self, obj: &Map<String, Value>, text: &str) -> Details {
        let rating = self.int_in(obj, "rating", 1, 5);
        let product_id = self.opt_short(obj, "product_id", self.limits.max_short_chars);
        if text.trim().is_empty() && rating.is_none() && !obj.contains_key("rating") {
            self.problem("text", "a review needs text or a rating");
        }
        Details::Review { rating, product_id }
    }

    fn survey(&mut self, obj: &Map<String, Value>) -> Details {
        let nps_score = self.int_in(obj, "nps_score", 0, 10);
        let csat = self.int_in(obj, "csat", 1, 5);
        let question = self.opt_short(obj, "question", self.limits.max_long_chars);
        if self.field(obj, "nps_score").is_none() && self.field(obj, "csat").is_none() {
            self.problem("nps_score", "a survey needs nps_score and/or csat");
        }
        Details::Survey {
            nps_score,
            csat,
            question,
        }
    }

    fn ticket(&mut self, obj: &Map<String, Value>, text: &str) -> Option<Details> {
        let ticket_id = self
            .required(obj, "ticket_id")
            .and_then(|v| self.short("ticket_id", v, self.limits.max_id_chars));
        let status = self.required(obj, "status").and_then(|v| {
            self.choice(
                "status",
                v,
                &["open", "pending", "solved", "closed"],
                |s| match s {
                    "open" => Some(TicketStatus::Open),
                    "pending" => Some(TicketStatus::Pending),
                    "solved" => Some(TicketStatus::Solved),
                    "closed" => Some(TicketStatus::Closed),
                    _ => None,
                },
            )
        });
        // Help desks omit priority on most tickets; "normal" is what they mean by that.
        let priority = match self.field(obj, "priority") {
            None => Some(Priority::Normal),
            Some(v) => self.choice(
                "priority",
                v,
                &["low", "normal", "high", "urgent"],
                |s| match s {
                    "low" => Some(Priority::Low),
                    "normal" => Some(Priority::Normal),
                    "high" => Some(Priority::High),
                    "urgent" => Some(Priority::Urgent),
                    _ => None,
                },
            ),
        };
        let category = self.opt_short(obj, "category", self.limits.max_short_chars);
        let subject = self.opt_short(obj, "subject", self.limits.max_long_chars);
        if text.trim().is_empty() && self.field(obj, "subject").is_none() {
            self.problem("text", "a ticket needs text or a subject");
        }
        Some(Details::Ticket {
            ticket_id: ticket_id?,
            status: status?,
            priority: priority?,
            category,
            subject,
        })
    }
}
