//! What the demo and `feedloop process` print: read back through the API's query
//! service from the in-memory store the real services wrote (a table, or `--json`).

use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

use feedloop_api::queries::{Queries, Range, RiskView};
use feedloop_core::analysis::TextAnalysis;
use feedloop_core::nps::{Driver, NpsCounts};
use feedloop_core::profile::Segment;
use feedloop_core::themes::Taxonomy;
use feedloop_ingest::Processed;
use feedloop_kit::ports::followup::{AttemptRecord, Status};
use feedloop_memory::MemoryStore;
use serde::Serialize;

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:+.1}"))
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectLine {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelledDriver {
    #[serde(flatten)]
    pub driver: Driver,
    pub label: Option<String>,
}

/// One run, as the query service sees it afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub messages: usize,
    pub applied: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub customers: u64,
    pub rejects: Vec<RejectLine>,
    pub nps: Option<f64>,
    pub responses: NpsCounts,
    pub drivers: Vec<LabelledDriver>,
    pub segments: BTreeMap<Segment, u64>,
    pub at_risk: Vec<RiskView>,
    /// Every follow-up attempt the dispatcher recorded, oldest first.
    pub followups: Vec<AttemptRecord>,
}

/// Read the summary of a run over `range` back through the query service; `outcomes`
/// are the ingest service's answers, `sources` name the messages in reject lines.
pub async fn summarize(
    q: &Queries<MemoryStore>,
    taxonomy: &Taxonomy,
    outcomes: &[(String, Processed)],
    range: Range,
) -> Result<RunSummary> {
    let count = |f: fn(&Processed) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let drivers = q.drivers(range).await?.report;
    let overview = q.segments_overview(5).await?;
    let mut followups = Vec::new();
    for seg in Segment::ALL {
        let mut cursor = None;
        loop {
            let page = q.segment(seg, 100, cursor.as_deref()).await?;
            for m in &page.items {
                let id = &m.customer_id;
                let mut c = None;
                loop {
                    let h = q.followups(id, 100, c.as_deref()).await?;
                    followups.extend(h.items);
                    c = h.next_cursor;
                    if c.is_none() {
                        break;
                    }
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    followups.sort_by(|a, b| {
        (a.at, &a.customer_id, &a.playbook).cmp(&(b.at, &b.customer_id, &b.playbook))
    });
    Ok(RunSummary {
        messages: outcomes.len(),
        applied: count(|o| matches!(o, Processed::Applied { .. })),
        duplicates: count(|o| matches!(o, Processed::Duplicate)),
        rejected: count(|o| matches!(o, Processed::Rejected { .. })),
        customers: overview.customers,
        rejects: outcomes
            .iter()
            .filter_map(|(source, o)| match o {
                Processed::Rejected { reason } => Some(RejectLine {
                    source: source.clone(),
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect(),
        nps: drivers.nps,
        responses: drivers.responses,
        drivers: drivers
            .drivers
            .into_iter()
            .map(|d| LabelledDriver {
                label: taxonomy.label(&d.theme).map(str::to_owned),
                driver: d,
            })
            .collect(),
        segments: overview.sizes.into_iter().collect(),
        at_risk: overview.most_at_risk,
        followups,
    })
}

pub fn print(s: &RunSummary, title: &str) {
    println!("{title}\n");
    println!(
        "messages {}: {} applied, {} duplicate (ignored), {} rejected; {} customers",
        s.messages, s.applied, s.duplicates, s.rejected, s.customers
    );
    for r in &s.rejects {
        println!("  rejected {}: {}", r.source, r.reason);
    }
    let r = s.responses;
    println!(
        "\nOverall NPS {} ({} responses: {} promoters, {} passives, {} detractors)",
        signed(s.nps),
        r.total(),
        r.promoters,
        r.passives,
        r.detractors
    );
    print_drivers(s);
    println!("\nSegments");
    let line: Vec<String> = Segment::ALL
        .iter()
        .map(|g| format!("{} {}", g.as_str(), s.segments.get(g).copied().unwrap_or(0)))
        .collect();
    println!("  {}", line.join(" | "));
    println!("\nMost at-risk customers");
    for (i, c) in s.at_risk.iter().enumerate() {
        println!(
            "  {}. {} {:<16} risk {:.2} [{}]: {}",
            i + 1,
            c.customer_id,
            c.name.as_deref().unwrap_or_default(),
            c.churn_risk.score,
            c.segment.as_str(),
            c.churn_risk.reasons.join("; ")
        );
    }
    print_followups(&s.followups);
}

fn print_drivers(s: &RunSummary) {
    let label = |d: &LabelledDriver| d.label.clone().unwrap_or_else(|| d.driver.theme.clone());
    println!("\nNPS by theme (survey responses whose comment mentions the theme)");
    println!(
        "  {:<24} {:>8} {:>9} {:>11} {:>8} {:>10} {:>10}",
        "theme", "mentions", "NPS with", "NPS without", "impact", "% of det.", "% of prom."
    );
    let mut by_mentions: Vec<&LabelledDriver> = s.drivers.iter().collect();
    by_mentions.sort_by(|a, b| {
        b.driver
            .mentions
            .cmp(&a.driver.mentions)
            .then_with(|| a.driver.theme.cmp(&b.driver.theme))
    });
    for ld in by_mentions {
        let d = &ld.driver;
        println!(
            "  {:<24} {:>8} {:>9} {:>11} {:>8} {:>9.0}% {:>9.0}%",
            label(ld),
            d.mentions,
            signed(d.nps_with),
            signed(d.nps_without),
            format!("{:+.1}", d.impact),
            100.0 * d.detractor_share,
            100.0 * d.promoter_share
        );
    }
    println!("  impact = NPS - NPS without the theme: the points it costs (-) or earns (+)");
    println!("\nTop detractor drivers");
    let costly: Vec<_> = s
        .drivers
        .iter()
        .filter(|d| d.driver.impact < 0.0)
        .take(3)
        .collect();
    if costly.is_empty() {
        println!("  none: no theme lowers the score");
    }
    for (i, d) in costly.iter().enumerate() {
        println!(
            "  {}. {} costs {:.1} NPS points; mentioned by {:.0}% of detractors",
            i + 1,
            label(d),
            -d.driver.impact,
            100.0 * d.driver.detractor_share
        );
    }
}

fn print_followups(records: &[AttemptRecord]) {
    let (mut sent, mut skipped) = (BTreeMap::new(), BTreeMap::new());
    for r in records {
        match r.status {
            Status::DryRun | Status::Sent => *sent.entry(r.playbook.to_string()).or_insert(0) += 1,
            Status::Skipped | Status::Failed => {
                let reason = r.reason.as_deref().unwrap_or("unknown");
                let kind = reason.split(':').next().unwrap_or(reason);
                let kind = if r.status == Status::Failed {
                    format!("failed: {kind}")
                } else {
                    kind.to_owned()
                };
                *skipped.entry(kind).or_insert(0) += 1
            }
            // A history lists recorded attempts only.
            Status::Claimed => {}
        }
    }
    println!("\nFollow-ups (dry run: decided, guarded, claimed and rendered by the dispatcher, nothing sent)");
    let list = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  would send {}: {}",
        sent.values().sum::<usize>(),
        list(&sent)
    );
    println!(
        "  skipped {}: {}",
        skipped.values().sum::<usize>(),
        list(&skipped)
    );
    let mut shown = BTreeSet::new();
    for r in records.iter().filter(|r| r.status == Status::DryRun) {
        if shown.insert(r.playbook.clone()) {
            println!(
                "  {} -> {} by {} (variant {}, {}): {:?}",
                r.playbook,
                r.customer_id,
                r.channel.map_or("-".to_owned(), |c| format!("{c:?}")),
                r.variant.as_ref().map_or("-", |v| v.as_str()),
                r.at.format("%Y-%m-%d %H:%M UTC"),
                r.preview.as_deref().unwrap_or_default()
            );
        }
    }
}

pub fn print_analysis(a: &TextAnalysis) {
    match (&a.sentiment, &a.skipped) {
        (Some(s), _) => println!(
            "sentiment {} (compound {:+.4}; pos {:.3} neu {:.3} neg {:.3})",
            s.label.as_str(),
            s.compound,
            s.pos,
            s.neu,
            s.neg
        ),
        (None, Some(reason)) => println!("sentiment: none ({reason})"),
        (None, None) => println!("sentiment: none"),
    }
    println!(
        "language {}{}",
        a.language.code,
        if a.language.reliable {
            ""
        } else {
            " (assumed)"
        }
    );
    if a.sentences.len() > 1 {
        for s in &a.sentences {
            println!("  {:+.4}  {}", s.compound, s.text);
        }
    }
    if a.themes.is_empty() {
        println!("themes: none");
    }
    for t in &a.themes {
        let s = t
            .sentiment
            .map_or_else(|| "n/a".into(), |v| format!("{v:+.4}"));
        let how = match (t.source, t.score) {
            (feedloop_core::analysis::ThemeSource::Phrase, _) => format!("{:?}", t.phrase),
            (source, Some(score)) => format!(
                "{} {score:.2}",
                serde_json::json!(source).as_str().unwrap_or("")
            ),
            (source, None) => serde_json::json!(source).as_str().unwrap_or("").to_owned(),
        };
        println!("theme {} ({how}) sentiment {s} in: {}", t.label, t.sentence);
    }
}
