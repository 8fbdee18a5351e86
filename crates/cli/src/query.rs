//! Queries against a deployed (or local) stack: profile, segment, reports, erase,
//! consent. Each calls the API's typed query service in process and prints its view
//! (a table, or the view itself with `--json`: byte for byte what the HTTP API answers).

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Utc;
use feedloop_api::queries::{self, Queries, Range};
use feedloop_aws::DynamoStore;
use feedloop_core::envelope::{Consent, CustomerId};
use feedloop_core::keys::StackKeys;
use feedloop_core::profile::Segment;
use serde::Serialize;

use crate::cloud::DateRange;
use crate::target::Resolved;

/// Queries need no stack key: cursors never leave this process, so a per-process one
/// signs them. Only the erase reads the stack secret (`keyed`).
fn service(r: &Resolved) -> Result<Queries<DynamoStore>> {
    let process_secret = format!(
        "cli-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
    .repeat(2);
    keyed(r, StackKeys::derive(&process_secret)?)
}

fn keyed(r: &Resolved, keys: StackKeys) -> Result<Queries<DynamoStore>> {
    Ok(Queries {
        store: r.store()?,
        keys,
        clock: std::sync::Arc::new(Utc::now),
    })
}

fn customer(raw: &str) -> Result<CustomerId> {
    CustomerId::parse(raw).map_err(|e| anyhow::anyhow!("customer id: {e}"))
}

pub fn print_json<T: Serialize>(v: &T) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn day(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d").to_string())
}

#[derive(Serialize)]
struct ProfileAnswer {
    profile: queries::CustomerView,
    recent_feedback: Vec<feedloop_core::records::FeedbackRecord>,
    followups: Vec<feedloop_kit::ports::followup::AttemptRecord>,
}

pub async fn profile(r: &Resolved, id: &str, json: bool) -> Result<ExitCode> {
    let q = service(r)?;
    let id = customer(id)?;
    let p = q.customer(&id).await?;
    let recent_feedback = q.feedback(&id, 5, None).await?.items;
    let followups = q.followups(&id, queries::DEFAULT_LIMIT, None).await?.items;
    if json {
        return print_json(&ProfileAnswer {
            profile: p,
            recent_feedback,
            followups,
        });
    }
    println!("customer        {}", p.customer_id);
    println!("segment         {}", p.segment.as_str());
    println!(
        "churn risk      {:.2}  {}",
        p.churn_risk.score,
        p.churn_risk.reasons.join("; ")
    );
    println!(
        "feedback        {} (first {}, last {})",
        p.profile.feedback_count,
        day(p.profile.first_feedback_at),
        day(p.profile.last_feedback_at)
    );
    println!(
        "NPS category    {}",
        p.nps_category.map_or("-", |c| c.as_str())
    );
    println!(
        "sentiment       {} (time-decayed)",
        num(p.decayed_sentiment, 3)
    );
    println!("recent feedback (newest first):");
    for f in &recent_feedback {
        println!(
            "  {}  {:<7} {:>6}  {}",
            f.occurred_at.format("%Y-%m-%d"),
            f.kind.as_str(),
            num(f.compound, 3),
            f.excerpt.chars().take(70).collect::<String>()
        );
    }
    println!("follow-ups:");
    if followups.is_empty() {
        println!("  none");
    }
    for a in &followups {
        println!(
            "  {}  {:<32} {:<8} {}",
            a.at.format("%Y-%m-%dT%H:%M"),
            a.playbook,
            a.status.as_str(),
            a.reason.as_deref().or(a.preview.as_deref()).unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn parse_segment(name: &str) -> Result<Segment> {
    match Segment::ALL.into_iter().find(|s| s.as_str() == name) {
        Some(s) => Ok(s),
        None => {
            let all: Vec<&str> = Segment::ALL.iter().map(|s| s.as_str()).collect();
            bail!("segment must be one of {}", all.join(", "))
        }
    }
}

/// Up to `limit` members, walking the signed cursor a page (≤ 100) at a time.
pub async fn segment(r: &Resolved, name: &str, limit: usize, json: bool) -> Result<ExitCode> {
    let q = service(r)?;
    let seg = parse_segment(name)?;
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    while items.len() < limit {
        let want = (limit - items.len()).min(queries::MAX_LIMIT);
        let page = q.segment(seg, want, cursor.as_deref()).await?;
        items.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let page = queries::SegmentPage {
        segment: seg,
        items,
        next_cursor: None,
    };
    if json {
        return print_json(&page);
    }
    println!("{:<40} {:>10}", "customer", "churn risk");
    for m in &page.items {
        println!("{:<40} {:>10.2}", m.customer_id, m.churn_risk);
    }
    println!(
        "{} customer(s) in {name}{}",
        page.items.len(),
        if cursor.is_some() {
            " shown (more: raise --limit)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn range(q: &Queries<DynamoStore>, r: DateRange) -> Result<Range> {
    Ok(Range::new(r.from, r.to, q.today())?)
}

pub async fn report_nps(
    r: &Resolved,
    dates: DateRange,
    granularity: feedloop_core::reports::Granularity,
    json: bool,
) -> Result<ExitCode> {
    let q = service(r)?;
    let v = q.nps(range(&q, dates)?, granularity).await?;
    if json {
        return print_json(&v);
    }
    println!(
        "NPS {} to {}: {} ({} responses)",
        v.from,
        v.to,
        num(v.nps, 1),
        v.responses.total()
    );
    println!(
        "{:<12} {:>8} {:>10} {:>9} {:>10} {:>8}",
        "period", "NPS", "promoters", "passives", "detractors", "feedback"
    );
    for p in &v.points {
        println!(
            "{:<12} {:>8} {:>10} {:>9} {:>10} {:>8}",
            p.period.to_string(),
            num(p.nps, 1),
            p.promoters,
            p.passives,
            p.detractors,
            p.feedback
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn report_drivers(r: &Resolved, dates: DateRange, json: bool) -> Result<ExitCode> {
    let q = service(r)?;
    let v = q.drivers(range(&q, dates)?).await?;
    if json {
        return print_json(&v);
    }
    println!(
        "NPS drivers {} to {} (NPS {}), most costly first:",
        v.from,
        v.to,
        num(v.report.nps, 1)
    );
    println!(
        "{:<20} {:>8} {:>9} {:>9} {:>12}",
        "theme", "mentions", "NPS with", "without", "impact (pts)"
    );
    for d in &v.report.drivers {
        println!(
            "{:<20} {:>8} {:>9} {:>9} {:>12.2}",
            d.theme,
            d.mentions,
            num(d.nps_with, 1),
            num(d.nps_without, 1),
            d.impact
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `feedloop report followups`: the per-variant A/B counters, one row per variant.
pub async fn report_followups(r: &Resolved, json: bool) -> Result<ExitCode> {
    let v = service(r)?.followup_report().await?;
    if json {
        return print_json(&v);
    }
    if v.variants.is_empty() {
        println!("No follow-ups sent yet (in dry-run mode nothing is sent; see the follow-up history of a customer).");
        return Ok(ExitCode::SUCCESS);
    }
    let signed = |v: Option<f64>, p: usize| v.map_or("-".to_owned(), |v| format!("{v:+.p$}"));
    println!(
        "{:<34} {:<8} {:>6} {:>9} {:>7} {:>8} {:>10}",
        "playbook", "variant", "sent", "responded", "rate", "ΔNPS", "Δsentiment"
    );
    for s in &v.variants {
        println!(
            "{:<34} {:<8} {:>6} {:>9} {:>7} {:>8} {:>10}",
            s.playbook,
            s.variant,
            s.sent,
            s.responded,
            s.response_rate
                .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
            signed(s.mean_nps_change, 1),
            signed(s.mean_sentiment_change, 3),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn erase(r: &Resolved, id: &str, yes: bool, json: bool) -> Result<ExitCode> {
    let cid = customer(id)?;
    let keys = r.keys().await?;
    if !yes {
        eprintln!("This deletes customer {id}'s profile, feedback, follow-up history and rejects, and suppresses them for good. Re-run with --yes.");
        return Ok(ExitCode::from(1));
    }
    let v = keyed(r, keys)?.erase(&cid).await?;
    if json {
        return print_json(&v);
    }
    let d = &v.deleted;
    println!(
        "erased {id}: profile {}, feedback {}, follow-ups {}, rejects {}, other {}; {} suppression key(s) kept",
        if d.profile { "deleted" } else { "none" },
        d.feedback,
        d.followups,
        d.rejects,
        d.other,
        d.suppression_keys
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

pub struct ConsentSwitches {
    pub email: Option<Switch>,
    pub sms: Option<Switch>,
    pub phone: Option<Switch>,
}

/// Record a consent statement through the same service as `PUT /customers/{id}/consent`.
pub async fn consent(
    r: &Resolved,
    id: &str,
    switches: &ConsentSwitches,
    source: &str,
    json: bool,
) -> Result<ExitCode> {
    let on = |s: Option<Switch>| s.map(|s| s == Switch::On);
    let consent = Consent {
        email: on(switches.email),
        sms: on(switches.sms),
        phone: on(switches.phone),
    };
    if consent == Consent::default() {
        bail!("say at least one of --email, --sms, --phone (on or off)");
    }
    let v = service(r)?.consent(&customer(id)?, consent, source).await?;
    if json {
        return print_json(&v);
    }
    let show = |s: Option<bool>| match s {
        Some(true) => "on",
        Some(false) => "off",
        None => "not given",
    };
    println!(
        "consent for {id} now: email {}, sms {}, phone {} (recorded as consent:{source})",
        show(v.in_force.email),
        show(v.in_force.sms),
        show(v.in_force.phone)
    );
    Ok(ExitCode::SUCCESS)
}
