//! `feedloop dashboard`: the API's dashboard page, served on 127.0.0.1 from the
//! embedded demo data or a (local or real) table, or written to a file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use feedloop_api::dashboard::render;
use feedloop_api::dashboard::DashboardData;
use feedloop_core::analysis::Analyzer;
use feedloop_core::reports::Granularity;
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::demo;
use crate::target::Resolved;

/// The embedded demo's page: the demo replayed through the real services (lexicon
/// analysis, so it needs no model), its whole date range by week.
pub async fn demo_page() -> Result<String> {
    Ok(render(&demo_data().await?.0))
}

/// The demo's dashboard data, and how many of its messages the ingest service applied.
async fn demo_data() -> Result<(DashboardData, usize)> {
    let analyzer = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let messages = demo::messages(&demo::envelopes());
    let run = crate::replay::run_async(crate::replay::RunSpec::demo(analyzer), &messages).await?;
    let applied = run
        .outcomes
        .iter()
        .filter(|(_, p)| matches!(p, feedloop_ingest::Processed::Applied { .. }))
        .count();
    Ok((
        run.queries.dashboard(run.range, Granularity::Week).await?,
        applied,
    ))
}

pub async fn table_page(r: &Resolved) -> Result<String> {
    let api = feedloop_api::Api {
        store: r.store()?,
        keys: feedloop_core::keys::StackKeys::derive("dashboard-local-only-0123456789abcdef")
            .expect("long enough"),
        clock: std::sync::Arc::new(chrono::Utc::now),
    };
    let range = feedloop_api::Range::new(None, None, api.today())?;
    let data = api
        .dashboard(range, Granularity::Day)
        .await
        .context("reading the dashboard data")?;
    Ok(render(&data))
}

/// Serve `page` (rebuilt per request by `build`) until interrupted.
pub async fn serve<F, Fut>(port: u16, build: F) -> Result<ExitCode>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String>>,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    println!("dashboard at http://{addr}/  (Ctrl-C to stop)");
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let n = conn.read(&mut buf).await.unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]);
        let path = req.split_whitespace().nth(1).unwrap_or("/");
        let (status, ctype, body) = match path {
            "/" | "/dashboard" => match build().await {
                Ok(html) => ("200 OK", "text/html; charset=utf-8", html),
                Err(e) => {
                    eprintln!("feedloop: dashboard: {e:#}");
                    (
                        "503 Service Unavailable",
                        "text/plain",
                        "dashboard data unavailable, see the terminal\n".to_owned(),
                    )
                }
            },
            _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        };
        let head = format!("HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(body.as_bytes()).await;
    }
}

pub fn write(path: &Path, html: &str) -> Result<ExitCode> {
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("dashboard written to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn charts_have_one_mark_per_datum_and_no_script() {
        let (d, applied) = demo_data().await.unwrap();
        let html = render(&d);
        assert!(!d.nps.is_empty() && !d.drivers.drivers.is_empty());
        assert_eq!(html.matches(r#"class="point""#).count(), d.nps.len());
        assert_eq!(
            d.nps.iter().map(|p| p.feedback).sum::<u64>(),
            applied as u64
        );
        assert_eq!(
            html.matches(r#"<rect class="bar""#).count(),
            d.drivers.drivers.len().min(10) + 7
        );
        assert!(!html.contains("<script"), "no scripts");
    }
}
