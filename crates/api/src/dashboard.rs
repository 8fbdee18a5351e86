//! The dashboard: one self-contained HTML page with server-rendered SVG charts (no
//! scripts, no CDN): NPS trend, NPS drivers by impact, segment sizes, customers most at
//! risk with the reasons. Every text from data is escaped.

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use feedloop_core::nps::DriverReport;
use feedloop_core::reports::{Granularity, NpsPoint};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRisk {
    pub customer_id: String,
    pub churn_risk: f64,
    pub reasons: Vec<String>,
    pub last_feedback_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardData {
    pub generated_at: DateTime<Utc>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub nps: Vec<NpsPoint>,
    pub granularity: Granularity,
    pub drivers: DriverReport,
    pub segments: Vec<(String, u64)>,
    pub at_risk: Vec<AtRisk>,
}

pub use feedloop_core::followup::templates::html_escape as escape;

const W: f64 = 720.0;

fn nps_chart(points: &[NpsPoint]) -> String {
    let h = 240.0;
    let (left, right, top, bottom) = (48.0, 16.0, 16.0, 32.0);
    let mut s = format!(
        r#"<svg id="nps-chart" role="img" aria-label="NPS trend" viewBox="0 0 {W} {h}" width="{W}" height="{h}">"#
    );
    let y = |v: f64| top + (100.0 - v) / 200.0 * (h - top - bottom);
    for v in [-100.0, -50.0, 0.0, 50.0, 100.0] {
        let _ = write!(
            s,
            r##"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{}" /><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{v}</text>"##,
            W - right,
            if v == 0.0 { "#888" } else { "#e3e3e3" },
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    let pts: Vec<(f64, f64, &NpsPoint)> = {
        let with: Vec<&NpsPoint> = points.iter().filter(|p| p.nps.is_some()).collect();
        let n = with.len().max(2) as f64 - 1.0;
        with.iter()
            .enumerate()
            .map(|(i, p)| {
                let x = if with.len() == 1 {
                    (left + W - right) / 2.0
                } else {
                    left + i as f64 / n * (W - left - right)
                };
                (x, y(p.nps.unwrap_or(0.0)), *p)
            })
            .collect()
    };
    if pts.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#777">No NPS responses in this period</text>"##,
            W / 2.0,
            h / 2.0
        );
    } else {
        let line: Vec<String> = pts
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            s,
            r##"<polyline class="trend" fill="none" stroke="#2f6fdf" stroke-width="2" points="{}" />"##,
            line.join(" ")
        );
        for (x, y, p) in &pts {
            let _ = write!(
                s,
                r##"<circle class="point" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#2f6fdf"><title>{}: NPS {:.0} ({} promoters, {} passives, {} detractors)</title></circle>"##,
                p.period,
                p.nps.unwrap_or(0.0),
                p.promoters,
                p.passives,
                p.detractors
            );
        }
        let (first, last) = (pts[0].2.period, pts[pts.len() - 1].2.period);
        let _ = write!(
            s,
            r##"<text x="{left}" y="{}" font-size="11" fill="#555">{first}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#555">{last}</text>"##,
            h - 8.0,
            W - right,
            h - 8.0
        );
    }
    s.push_str("</svg>");
    s
}

fn drivers_chart(r: &DriverReport) -> String {
    let mut top: Vec<_> = r.drivers.iter().filter(|d| d.mentions > 0).collect();
    top.sort_by(|a, b| {
        b.impact
            .abs()
            .total_cmp(&a.impact.abs())
            .then(a.theme.cmp(&b.theme))
    });
    top.truncate(10);
    top.sort_by(|a, b| a.impact.total_cmp(&b.impact));
    let row = 26.0;
    let h = 24.0 + row * top.len().max(1) as f64;
    let (label_w, mid) = (150.0, 150.0 + (W - 150.0 - 60.0) / 2.0);
    let half = (W - label_w - 60.0) / 2.0;
    let max = top.iter().map(|d| d.impact.abs()).fold(1.0_f64, f64::max);
    let mut s = format!(
        r#"<svg id="drivers-chart" role="img" aria-label="NPS drivers by impact" viewBox="0 0 {W} {h}" width="{W}" height="{h}">"#
    );
    let _ = write!(
        s,
        r##"<line x1="{mid}" x2="{mid}" y1="4" y2="{}" stroke="#888" />"##,
        h - 4.0
    );
    if top.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="20" text-anchor="middle" fill="#777">No themes mentioned in NPS responses</text>"##,
            W / 2.0
        );
    }
    for (i, d) in top.iter().enumerate() {
        let y = 12.0 + i as f64 * row;
        let w = d.impact.abs() / max * half;
        let (x, color) = if d.impact < 0.0 {
            (mid - w, "#d9534f")
        } else {
            (mid, "#3c9d5d")
        };
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="18" fill="{color}"><title>{}: impact {:+.1} NPS points, {} mentions</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#333">{:+.1}</text>"##,
            label_w - 8.0,
            y + 13.0,
            escape(&d.theme),
            w.max(1.0),
            escape(&d.theme),
            d.impact,
            d.mentions,
            // On the other side of the axis, so a long bar never runs into its label.
            if d.impact < 0.0 {
                mid + 4.0
            } else {
                mid - 40.0
            },
            y + 13.0,
            d.impact
        );
    }
    s.push_str("</svg>");
    s
}

fn segments_chart(segments: &[(String, u64)]) -> String {
    let row = 24.0;
    let h = 8.0 + row * segments.len().max(1) as f64;
    let max = segments.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let mut s = format!(
        r#"<svg id="segments-chart" role="img" aria-label="Customers per segment" viewBox="0 0 {W} {h}" width="{W}" height="{h}">"#
    );
    for (i, (name, n)) in segments.iter().enumerate() {
        let y = 6.0 + i as f64 * row;
        let w = *n as f64 / max * (W - 220.0);
        let _ = write!(
            s,
            r##"<text x="112" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect class="bar" x="120" y="{y:.1}" width="{:.1}" height="16" fill="#6c8ebf"><title>{}: {n}</title></rect><text x="{:.1}" y="{:.1}" font-size="11">{n}</text>"##,
            y + 12.0,
            escape(name),
            w.max(1.0),
            escape(name),
            124.0 + w,
            y + 12.0
        );
    }
    s.push_str("</svg>");
    s
}

pub fn render(d: &DashboardData) -> String {
    let mut risk_rows = String::new();
    for r in &d.at_risk {
        let _ = write!(
            risk_rows,
            "<tr><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.customer_id),
            r.churn_risk,
            escape(&r.reasons.join("; ")),
            r.last_feedback_at
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        );
    }
    if risk_rows.is_empty() {
        risk_rows.push_str(r#"<tr><td colspan="4">No customers at risk.</td></tr>"#);
    }
    let nps = d.drivers.nps.map_or("–".to_owned(), |n| format!("{n:.0}"));
    let responses = d.drivers.responses;
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>feedloop dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }}
section {{ background: #fff; border: 1px solid #e5e5e5; border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; max-width: 760px; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 16px; margin: 4px 0 8px; }}
.kpi {{ font-size: 32px; font-weight: 600; }} .muted {{ color: #666; font-size: 13px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }} td, th {{ border-bottom: 1px solid #eee; padding: 4px 6px; text-align: left; }}
</style></head>
<body>
<h1>feedloop</h1>
<p class="muted">{from} to {to} · generated {generated}</p>
<section id="summary"><h2>NPS</h2><div class="kpi" id="nps-value">{nps}</div>
<div class="muted">{p} promoters · {pa} passives · {de} detractors</div></section>
<section><h2>NPS trend ({period})</h2>{nps_chart}</section>
<section><h2>Drivers: impact on NPS (points)</h2>{drivers_chart}
<p class="muted">Impact = share of responses mentioning the theme × (NPS with it − NPS without it).</p></section>
<section><h2>Customers per segment</h2>{segments_chart}</section>
<section><h2>Most at risk</h2><table id="at-risk"><thead><tr><th>customer</th><th>churn risk</th><th>reasons</th><th>last feedback</th></tr></thead>
<tbody>{risk_rows}</tbody></table></section>
</body></html>
"##,
        from = d.from,
        to = d.to,
        generated = d.generated_at.format("%Y-%m-%d %H:%M UTC"),
        p = responses.promoters,
        pa = responses.passives,
        de = responses.detractors,
        nps_chart = nps_chart(&d.nps),
        period = match d.granularity {
            Granularity::Day => "daily",
            Granularity::Week => "weekly, by ISO week",
        },
        drivers_chart = drivers_chart(&d.drivers),
        segments_chart = segments_chart(&d.segments),
    )
}

#[cfg(test)]
mod tests {
    // The charts are checked on the demo's data in the CLI (`dashboard::tests`), where
    // the real ingest service fills the store.
    #[test]
    fn markup_in_data_is_escaped() {
        assert_eq!(
            super::escape(r#"<b a='1'>&"#),
            "&lt;b a=&#39;1&#39;&gt;&amp;"
        );
    }
}
