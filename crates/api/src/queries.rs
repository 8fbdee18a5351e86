//! The typed query service: one method per view, over the [`QueryStore`] port. The HTTP
//! router only turns requests into these calls and the views into JSON; the CLI and the
//! embedded demo call the same methods and print the same structs.

use std::collections::BTreeMap;

use feedloop_core::envelope::{Consent, CustomerId, CustomerInfo};
use feedloop_core::followup::outcomes::VariantStats;
use feedloop_core::followup::suppression;
use feedloop_core::followup::{ContactChannel, PlaybookId, VariantId};
use feedloop_core::keys::StackKeys;
use feedloop_core::profile::{Profile, Segment};
use feedloop_core::records::FeedbackRecord;
use feedloop_core::reports::{self, Counters, Granularity};
use feedloop_kit::ports::followup::AttemptRecord;
use tracing::info;

use chrono::NaiveDate;

use crate::cursor;
use crate::dashboard::{AtRisk, DashboardData};
pub use crate::views::*;
use feedloop_kit::ports::query::*;

pub struct Queries<S> {
    pub store: S,
    /// Sign cursors and unsubscribe links, salt the suppression list.
    pub keys: StackKeys,
    pub clock: feedloop_kit::Clock,
}

impl<S: QueryStore> Queries<S> {
    pub fn today(&self) -> NaiveDate {
        (self.clock)().date_naive()
    }

    pub async fn customer(&self, id: &CustomerId) -> Result<CustomerView, QueryError> {
        let p = self
            .store
            .profile(id)
            .await?
            .ok_or(QueryError::CustomerNotFound)?;
        Ok(CustomerView {
            customer_id: id.to_string(),
            segment: p.segment(),
            churn_risk: p.churn_risk(),
            nps_category: p.nps_category(),
            decayed_sentiment: p.decayed_sentiment(),
            profile: p,
        })
    }

    fn position(&self, scope: &str, cursor: Option<&str>) -> Result<Option<String>, QueryError> {
        cursor
            .map(|c| {
                cursor::verify(&self.keys.cursor_key, scope, c)
                    .map_err(|e| QueryError::invalid("invalid_cursor", e.to_string()))
            })
            .transpose()
    }

    fn sign(&self, scope: &str, next: Option<String>) -> Option<String> {
        next.map(|p| cursor::issue(&self.keys.cursor_key, scope, &p))
    }

    pub async fn feedback(
        &self,
        id: &CustomerId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<HistoryPage<FeedbackRecord>, QueryError> {
        let scope = format!("feedback:{id}");
        let after = self.position(&scope, cursor)?;
        let page = self.store.feedback_page(id, limit, after).await?;
        Ok(HistoryPage {
            customer_id: id.to_string(),
            items: page.items,
            next_cursor: self.sign(&scope, page.next),
        })
    }

    /// A customer's follow-up attempts, newest first like the feedback history, a page
    /// at a time behind the same signed cursor (position: time, feedback id, playbook).
    pub async fn followups(
        &self,
        id: &CustomerId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<HistoryPage<AttemptRecord>, QueryError> {
        let scope = format!("followups:{id}");
        let after = self.position(&scope, cursor)?;
        let mut items = self.store.followups(id).await?;
        let key = |a: &AttemptRecord| {
            format!(
                "{}#{}#{}",
                a.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                a.feedback_id,
                a.playbook
            )
        };
        items.sort_by(|a, b| {
            (b.at, &b.feedback_id, &b.playbook).cmp(&(a.at, &a.feedback_id, &a.playbook))
        });
        let rest: Vec<_> = items
            .into_iter()
            .filter(|a| after.as_ref().is_none_or(|p| key(a).as_str() < p.as_str()))
            .collect();
        let more = rest.len() > limit;
        let items: Vec<_> = rest.into_iter().take(limit).collect();
        let next = items.last().filter(|_| more).map(key);
        Ok(HistoryPage {
            customer_id: id.to_string(),
            items,
            next_cursor: self.sign(&scope, next),
        })
    }

    pub async fn segment(
        &self,
        seg: Segment,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SegmentPage, QueryError> {
        let scope = format!("segment:{}", seg.as_str());
        let after = self.position(&scope, cursor)?;
        let page = self.store.segment_page(seg, limit, after).await?;
        Ok(SegmentPage {
            segment: seg,
            items: page.items,
            next_cursor: self.sign(&scope, page.next),
        })
    }

    /// The day items of a range (read by key, no scan) and their sum.
    async fn counters(
        &self,
        r: Range,
    ) -> Result<(BTreeMap<NaiveDate, Counters>, Counters), StoreError> {
        let mut by_day = self.store.day_counters(r.from, r.to).await?;
        let mut total = Counters::new();
        for day in reports::days(r.from, r.to) {
            reports::add_into(&mut total, by_day.entry(day).or_default());
        }
        Ok((by_day, total))
    }

    pub async fn nps(&self, r: Range, g: Granularity) -> Result<NpsReport, QueryError> {
        let (by_day, total) = self.counters(r).await?;
        let all = reports::nps_counts(&total);
        Ok(NpsReport {
            from: r.from,
            to: r.to,
            granularity: g,
            nps: all.nps(),
            responses: all,
            points: reports::nps_series(&by_day, g),
        })
    }

    pub async fn drivers(&self, r: Range) -> Result<DriversReport, QueryError> {
        let (_, total) = self.counters(r).await?;
        Ok(DriversReport {
            from: r.from,
            to: r.to,
            report: reports::drivers(&total),
        })
    }

    /// Segment sizes and the `n` customers of highest churn risk in any segment: the
    /// first page of each segment (already ordered by risk) merged, so no scan.
    pub async fn segments_overview(&self, n: usize) -> Result<SegmentsOverview, QueryError> {
        let counts = self.store.segment_counts().await?;
        let mut top: Vec<(Segment, Member)> = Vec::new();
        for seg in Segment::ALL {
            if counts.get(&seg).copied().unwrap_or(0) == 0 {
                continue;
            }
            let page = self.store.segment_page(seg, n.max(1), None).await?;
            top.extend(page.items.into_iter().map(|m| (seg, m)));
        }
        top.sort_by(|a, b| {
            b.1.churn_risk
                .total_cmp(&a.1.churn_risk)
                .then_with(|| a.1.customer_id.cmp(&b.1.customer_id))
        });
        top.truncate(n);
        let ids: Vec<CustomerId> = top.iter().map(|(_, m)| m.customer_id.clone()).collect();
        let mut found = self.profiles_by_id(&ids).await?;
        let mut most_at_risk = Vec::with_capacity(top.len());
        for (segment, m) in top {
            if let Some(p) = found.remove(&m.customer_id) {
                most_at_risk.push(RiskView {
                    customer_id: m.customer_id.to_string(),
                    segment,
                    churn_risk: p.churn_risk(),
                    last_feedback_at: p.last_feedback_at,
                    name: p.contact.and_then(|c| c.value.name),
                });
            }
        }
        Ok(SegmentsOverview {
            customers: counts.values().sum(),
            sizes: Segment::ALL
                .iter()
                .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
                .collect(),
            most_at_risk,
        })
    }

    /// The A/B counters of every playbook variant that sent something.
    pub async fn followup_report(&self) -> Result<FollowUpReport, QueryError> {
        let mut rows = self.store.variant_stats().await?;
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(FollowUpReport {
            variants: rows
                .into_iter()
                .map(
                    |(playbook, variant, s): (PlaybookId, VariantId, VariantStats)| VariantRow {
                        playbook,
                        variant,
                        sent: s.sent,
                        responded: s.responded,
                        response_rate: s.response_rate(),
                        mean_nps_change: s.mean_nps_change(),
                        mean_sentiment_change: s.mean_sentiment_change(),
                    },
                )
                .collect(),
        })
    }

    pub async fn erase(&self, id: &CustomerId) -> Result<ErasureView, QueryError> {
        let profile = self.store.profile(id).await?;
        let contact: Option<CustomerInfo> = profile
            .as_ref()
            .and_then(|p| p.contact.as_ref().map(|c| c.value.clone()));
        let past = profile.map(|p| p.past_addresses).unwrap_or_default();
        let keys = suppression::erasure_keys(
            &self.keys.suppression_salt,
            id.as_str(),
            contact.as_ref(),
            &past,
        );
        let erased = self.store.erase(id, &keys, (self.clock)()).await?;
        info!(
            profile = erased.profile,
            feedback = erased.feedback,
            followups = erased.followups,
            "customer erased"
        );
        Ok(ErasureView {
            customer_id: id.to_string(),
            deleted: erased,
            kept: "salted hashes of the id and contact addresses on the suppression list; anonymous daily counters".into(),
            outside_reach: OUTSIDE_ERASE_REACH
                .iter()
                .map(|(place, until)| OutsideReach {
                    place: (*place).into(),
                    until: (*until).into(),
                })
                .collect(),
        })
    }

    /// Record an explicit consent statement; `source` is checked (1 to 64 characters
    /// of letters, digits and `-_.:`) and stored as `consent:<source>`.
    pub async fn consent(
        &self,
        id: &CustomerId,
        consent: Consent,
        source: &str,
    ) -> Result<ConsentView, QueryError> {
        if consent == Consent::default() {
            return Err(QueryError::invalid(
                "invalid_consent",
                "say at least one of email, sms, phone (on or off)",
            ));
        }
        if source.is_empty()
            || source.len() > 64
            || !source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(QueryError::invalid(
                "invalid_source",
                "source is 1 to 64 characters of letters, digits and -_.:",
            ));
        }
        let p = self
            .store
            .set_consent(id, &consent, &format!("consent:{source}"), (self.clock)())
            .await?
            .ok_or(QueryError::CustomerNotFound)?;
        // Staff recording an opt-in is the confirmation an unsubscribe or a complaint
        // waits for; the address's bounces stay (see `suppression::liftable_by_consent`).
        let keys = self.channel_keys(id, &p);
        let reopened: Vec<String> = [
            (consent.email == Some(true))
                .then_some(keys.email)
                .flatten(),
            (consent.sms == Some(true)).then_some(keys.phone).flatten(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let lifted = self.store.lift(&reopened).await?;
        info!(email = ?consent.email, sms = ?consent.sms, phone = ?consent.phone, lifted, "consent recorded");
        Ok(ConsentView {
            customer_id: id.to_string(),
            in_force: p.consent.current(),
            consent: p.consent,
            suppressions_lifted: lifted,
        })
    }

    /// A signed unsubscribe link's act: the consent fact, and the channel's current
    /// address on the suppression list, so the same address under another customer id,
    /// or a later envelope claiming consent, does not bring the messages back. False
    /// when no profile is on file (an erased customer is suppressed already).
    pub async fn unsubscribe(
        &self,
        id: &CustomerId,
        channel: ContactChannel,
    ) -> Result<bool, QueryError> {
        let consent = match channel {
            ContactChannel::Email => Consent {
                email: Some(false),
                ..Consent::default()
            },
            ContactChannel::Sms => Consent {
                sms: Some(false),
                ..Consent::default()
            },
        };
        let now = (self.clock)();
        let Some(p) = self
            .store
            .set_consent(id, &consent, "consent:unsubscribe-link", now)
            .await?
        else {
            return Ok(false);
        };
        let keys = self.channel_keys(id, &p);
        let key = match channel {
            ContactChannel::Email => keys.email,
            ContactChannel::Sms => keys.phone,
        };
        if let Some(k) = key {
            self.store
                .suppress(&[k], suppression::UNSUBSCRIBED, now)
                .await?;
        }
        Ok(true)
    }

    /// One batched read, keyed for the caller's own order.
    async fn profiles_by_id(
        &self,
        ids: &[CustomerId],
    ) -> Result<BTreeMap<CustomerId, Profile>, QueryError> {
        Ok(self
            .store
            .profiles(ids)
            .await?
            .into_iter()
            .map(|p| (p.customer_id.clone(), p))
            .collect())
    }

    fn channel_keys(&self, id: &CustomerId, p: &Profile) -> suppression::ChannelKeys {
        suppression::ChannelKeys::of(
            &self.keys.suppression_salt,
            id.as_str(),
            p.contact.as_ref().map(|c| &c.value),
        )
    }

    /// What the dashboard shows over `r` (the API: the last 30 days).
    pub async fn dashboard(&self, r: Range, g: Granularity) -> Result<DashboardData, QueryError> {
        let nps = self.nps(r, g).await?;
        let drivers = self.drivers(r).await?;
        let counts = self.store.segment_counts().await?;
        let mut at_risk = Vec::new();
        let members = self
            .store
            .segment_page(Segment::AtRisk, 10, None)
            .await?
            .items;
        let ids: Vec<CustomerId> = members.iter().map(|m| m.customer_id.clone()).collect();
        let mut found = self.profiles_by_id(&ids).await?;
        for m in members {
            if let Some(p) = found.remove(&m.customer_id) {
                let risk = p.churn_risk();
                at_risk.push(AtRisk {
                    customer_id: m.customer_id.to_string(),
                    churn_risk: risk.score,
                    reasons: risk.reasons,
                    last_feedback_at: p.last_feedback_at,
                });
            }
        }
        Ok(DashboardData {
            generated_at: (self.clock)(),
            from: r.from,
            to: r.to,
            nps: nps.points,
            granularity: g,
            drivers: drivers.report,
            segments: Segment::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), counts.get(s).copied().unwrap_or(0)))
                .collect(),
            at_risk,
        })
    }
}
