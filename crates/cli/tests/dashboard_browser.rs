//! The dashboard in a real browser (Debian chromium, headless): `feedloop dashboard
//! --demo` serves it, chromium renders it; the charts have their marks and the
//! screenshot is not blank.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> PathBuf {
    let p = std::env::var_os("FEEDLOOP_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "{} not found: `make chromium` installs Debian's chromium (or set FEEDLOOP_CHROMIUM)",
        p.display()
    );
    p
}

fn headless(args: &[&str]) -> std::process::Output {
    let profile = std::env::temp_dir().join(format!("feedloop-chromium-{}", std::process::id()));
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[test]
fn the_dashboard_renders_its_charts_in_headless_chromium() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedloop"))
        .args(["dashboard", "--demo", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("feedloop runs");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

    let dom = headless(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in ["nps-chart", "drivers-chart", "segments-chart", "at-risk"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id} rendered");
    }
    let points = dom.matches("<circle class=\"point\"").count();
    let bars = dom.matches("<rect class=\"bar\"").count();
    assert!(
        points >= 10,
        "NPS trend points (weekly over 90 days): {points}"
    );
    assert!(bars >= 7 + 5, "driver and segment bars: {bars}");
    assert!(dom.matches("<tr>").count() >= 3, "at-risk rows");

    let shot = std::env::temp_dir().join(format!("feedloop-dashboard-{}.png", std::process::id()));
    let out = headless(&[
        "--window-size=900,1600",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    assert!(
        shot.exists(),
        "screenshot written: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bpp = info.line_size / info.width as usize;
    let pixels = buf[..info.buffer_size()].chunks(bpp);
    let total = (info.width * info.height) as usize;
    let mut colours = std::collections::HashSet::new();
    let mut ink = 0;
    for p in pixels {
        colours.insert((p[0], p[1], p[2]));
        if p[0] < 200 || p[1] < 200 || p[2] < 200 {
            ink += 1;
        }
    }
    assert!(colours.len() > 20, "{} colours: blank page?", colours.len());
    assert!(ink * 100 > total, "{ink} of {total} pixels have ink");
    // The chart colours are on screen: driver bars red and green, the trend blue.
    assert!(
        colours
            .iter()
            .any(|&(r, g, b)| r > 200 && g < 100 && b < 100),
        "red driver bars"
    );
    assert!(
        colours
            .iter()
            .any(|&(r, g, b)| r < 80 && g > 130 && b < 120),
        "green driver bars"
    );
    if let Some(dest) = std::env::var_os("FEEDLOOP_SCREENSHOT") {
        std::fs::copy(&shot, dest).unwrap();
    }
    std::fs::remove_file(&shot).ok();
    drop(server);
}
