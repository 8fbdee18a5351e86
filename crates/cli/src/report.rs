//! Human-readable and JSON reports over a processed batch.

use anyhow::Result;
use std::collections::BTreeMap;

use feedloop_core::analysis::TextAnalysis;
use feedloop_core::followup::dry_run::Attempt;
use feedloop_core::pipeline::{LocalPipeline, Outcome};
use feedloop_core::profile::Segment;
use serde_json::{json, Value};

fn signed(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:+.1}"))
}

fn counts(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for o in outcomes {
        match o {
            Outcome::Applied { .. } => c.0 += 1,
            Outcome::Duplicate { .. } => c.1 += 1,
            Outcome::Rejected { .. } => c.2 += 1,
        }
    }
    c
}

pub fn summary_json(p: &LocalPipeline, outcomes: &[Outcome]) -> Value {
    let (applied, duplicates, rejected) = counts(outcomes);
    let drivers = p.drivers();
    let taxonomy = p.analyzer().taxonomy();
    json!({
        "messages": outcomes.len(), "applied": applied, "duplicates": duplicates, "rejected": rejected,
        "customers": p.profiles().count(),
        "rejects": p.rejects(),
        "nps": drivers.nps, "responses": drivers.responses,
        "drivers": drivers.drivers.iter().map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            v["label"] = json!(taxonomy.label(&d.theme));
            v
        }).collect::<Vec<_>>(),
        "segments": p.segment_counts().into_iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "at_risk": p.most_at_risk(5).into_iter().map(|pr| {
            let risk = pr.churn_risk();
            json!({"customer_id": pr.customer_id, "name": pr.contact.as_ref().and_then(|c| c.value.name.clone()),
                   "churn_risk": risk.score, "reasons": risk.reasons, "segment": pr.segment()})
        }).collect::<Vec<_>>(),
        "followups": p.followups(),
    })
}

pub fn print(p: &LocalPipeline, outcomes: &[Outcome], as_json: bool, title: &str) -> Result<()> {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary_json(p, outcomes))?
        );
        return Ok(());
    }
    let (applied, duplicates, rejected) = counts(outcomes);
    let customers = p.profiles().count();
    println!("{title}\n");
    println!(
        "messages {}: {applied} applied, {duplicates} duplicate (ignored), {rejected} rejected; {customers} customers",
        outcomes.len()
    );
    for r in p.rejects() {
        println!("  rejected {}: {}", r.source, r.reason);
    }

    let drivers = p.drivers();
    let r = drivers.responses;
    println!(
        "\nOverall NPS {} ({} responses: {} promoters, {} passives, {} detractors)",
        signed(drivers.nps),
        r.total(),
        r.promoters,
        r.passives,
        r.detractors
    );

    let taxonomy = p.analyzer().taxonomy();
    println!("\nNPS by theme (survey responses whose comment mentions the theme)");
    println!(
        "  {:<24} {:>8} {:>9} {:>11} {:>8} {:>10} {:>10}",
        "theme", "mentions", "NPS with", "NPS without", "impact", "% of det.", "% of prom."
    );
    let mut by_mentions = drivers.drivers.clone();
    by_mentions.sort_by(|a, b| {
        b.mentions
            .cmp(&a.mentions)
            .then_with(|| a.theme.cmp(&b.theme))
    });
    for d in &by_mentions {
        println!(
            "  {:<24} {:>8} {:>9} {:>11} {:>8} {:>9.0}% {:>9.0}%",
            taxonomy.label(&d.theme).unwrap_or(&d.theme),
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
    let costly: Vec<_> = drivers
        .drivers
        .iter()
        .filter(|d| d.impact < 0.0)
        .take(3)
        .collect();
    if costly.is_empty() {
        println!("  none: no theme lowers the score");
    }
    for (i, d) in costly.iter().enumerate() {
        println!(
            "  {}. {} costs {:.1} NPS points; mentioned by {:.0}% of detractors",
            i + 1,
            taxonomy.label(&d.theme).unwrap_or(&d.theme),
            -d.impact,
            100.0 * d.detractor_share
        );
    }

    println!("\nSegments");
    let seg = p.segment_counts();
    let line: Vec<String> = Segment::ALL
        .iter()
        .map(|s| format!("{} {}", s.as_str(), seg.get(s).copied().unwrap_or(0)))
        .collect();
    println!("  {}", line.join(" | "));

    println!("\nMost at-risk customers");
    for (i, pr) in p.most_at_risk(5).into_iter().enumerate() {
        let risk = pr.churn_risk();
        let name = pr
            .contact
            .as_ref()
            .and_then(|c| c.value.name.clone())
            .unwrap_or_default();
        println!(
            "  {}. {} {:<16} risk {:.2} [{}]: {}",
            i + 1,
            pr.customer_id,
            name,
            risk.score,
            pr.segment().as_str(),
            risk.reasons.join("; ")
        );
    }
    print_followups(p);
    Ok(())
}

fn followup_summary(p: &LocalPipeline) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let (mut sent, mut skipped) = (BTreeMap::new(), BTreeMap::new());
    for r in p.followups() {
        match &r.attempt {
            Attempt::WouldSend { .. } => *sent.entry(r.playbook.clone()).or_insert(0) += 1,
            Attempt::Skipped { reason } => {
                let kind = reason.split(':').next().unwrap_or(reason).to_owned();
                *skipped.entry(kind).or_insert(0) += 1
            }
            Attempt::Failed { error } => {
                *skipped.entry(format!("failed: {error}")).or_insert(0) += 1
            }
        }
    }
    (sent, skipped)
}

fn print_followups(p: &LocalPipeline) {
    let (sent, skipped) = followup_summary(p);
    println!("\nFollow-ups (dry run: decided, guarded and rendered, nothing sent)");
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
    let mut shown = std::collections::BTreeSet::new();
    for r in p.followups() {
        if let Attempt::WouldSend {
            channel,
            variant,
            send_at,
            preview,
        } = &r.attempt
        {
            if shown.insert(r.playbook.clone()) {
                println!(
                    "  {} -> {} by {:?} (variant {variant}, {}): {preview:?}",
                    r.playbook,
                    r.customer_id,
                    channel,
                    send_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
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
