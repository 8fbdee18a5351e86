use std::fs;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use feedloop_core::analysis::Analyzer;
use feedloop_core::eval::{self, Record, Split};
use feedloop_core::lines;
use feedloop_core::themes::Taxonomy;
use serde_json::json;

use feedloop_core::sentiment::Mode;
use feedloop_neural::{resolve_model_dir, resolve_multilingual_dir, ModelDirs};

use crate::{demo, replay as local, report, AnalysisOpts, ThemeSourceOpt};

fn taxonomy(name: &str) -> Result<Taxonomy> {
    Ok(match name {
        "small-business" | "default" => Taxonomy::default_small_business(),
        "restaurants" => Taxonomy::restaurants(),
        path => {
            let src =
                fs::read_to_string(path).with_context(|| format!("reading taxonomy {path}"))?;
            Taxonomy::from_toml(&src).with_context(|| format!("in taxonomy {path}"))?
        }
    })
}

/// The mode to run: the one asked for, else hybrid when the model is installed, else
/// lexicon, saying so on stderr (never a silent downgrade of an explicit choice).
pub fn resolve_mode(opts: &AnalysisOpts) -> Mode {
    if let Some(m) = opts.mode {
        return m;
    }
    match resolve_model_dir(opts.model_dir.as_deref()) {
        Ok(_) => Mode::Hybrid,
        Err(e) => {
            eprintln!("note: using lexicon mode; {e}");
            Mode::Lexicon
        }
    }
}

pub fn analyzer(opts: &AnalysisOpts) -> Result<Analyzer> {
    let mode = resolve_mode(opts);
    let taxonomy = taxonomy(&opts.taxonomy)?;
    let (english, multilingual) = if mode.needs_encoder() {
        let dir = resolve_model_dir(opts.model_dir.as_deref())
            .with_context(|| format!("{mode} mode needs the sentence encoder"))?;
        let multilingual = match resolve_multilingual_dir(opts.multilingual_model_dir.as_deref()) {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprintln!("note: only English is scored; {e}");
                None
            }
        };
        (Some(dir), multilingual)
    } else {
        (None, None)
    };
    let dirs = ModelDirs {
        english: english.as_deref(),
        multilingual: multilingual.as_deref(),
    };
    let a = feedloop_neural::analyzer(mode, taxonomy, dirs)?;
    Ok(match opts.themes {
        ThemeSourceOpt::Taxonomy => a,
        ThemeSourceOpt::Head => a.with_category_head()?,
    })
}

pub fn demo(opts: &AnalysisOpts, json: bool, export: Option<&Path>) -> Result<ExitCode> {
    let envelopes = demo::envelopes();
    if let Some(path) = export {
        let mut out = BufWriter::new(
            fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for e in &envelopes {
            writeln!(out, "{e}")?;
        }
        out.flush()?;
        eprintln!(
            "wrote {} demo envelopes to {}",
            envelopes.len(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let analyzer = analyzer(opts)?;
    let title = format!(
        "feedloop demo: an online coffee shop, 90 days of feedback (embedded, no AWS; {} analysis)",
        analyzer.mode()
    );
    let run = local::run(local::RunSpec::demo(analyzer), &demo::messages(&envelopes))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&run.summary)?);
    } else {
        report::print(&run.summary, &title);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn analyze(opts: &AnalysisOpts, json: bool, text: &str) -> Result<ExitCode> {
    let analyzer = analyzer(opts)?;
    let one = |t: &str| -> Result<serde_json::Value> {
        let a = analyzer.analyze_text(t)?;
        let s = a.sentiment;
        Ok(json!({
            "text": t,
            "compound": s.map(|s| s.compound), "pos": s.map(|s| s.pos), "neu": s.map(|s| s.neu), "neg": s.map(|s| s.neg),
            "label": s.map(|s| s.label), "skipped": a.skipped, "language": a.language.code,
            "sentences": a.sentences, "themes": a.themes, "stars": a.stars,
            "mode": analyzer.mode(),
        }))
    };
    if text == "-" {
        let stdin = io::stdin();
        let mut out = BufWriter::new(io::stdout().lock());
        for line in stdin.lock().lines() {
            let line = line.context("reading stdin")?;
            writeln!(out, "{}", one(&line)?)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&one(text)?)?);
    } else {
        println!("mode {}", analyzer.mode());
        report::print_analysis(&analyzer.analyze_text(text)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn process(
    opts: &AnalysisOpts,
    json: bool,
    half_life_days: f64,
    file: &Path,
) -> Result<ExitCode> {
    if !(half_life_days.is_finite() && half_life_days > 0.0) {
        bail!("--half-life-days must be a positive number of days, got {half_life_days}");
    }
    let reader = io::BufReader::new(
        fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    // Lines that are not UTF-8 never reach the service: they are rejected here, by number.
    let mut messages = Vec::new();
    let mut unreadable = Vec::new();
    for (n, line) in lines::numbered_lines(reader) {
        match line {
            Ok(line) => messages.push((format!("line {n}"), line)),
            Err(e @ lines::LineError::NotUtf8 { .. }) => unreadable.push((n, e.to_string())),
            Err(e) => return Err(e).with_context(|| format!("{} line {n}", file.display())),
        }
    }
    let spec = local::RunSpec {
        analyzer: analyzer(opts)?,
        half_life_days,
        company: None,
        now: Utc::now(),
    };
    let mut run = local::run(spec, &messages)?;
    for (n, reason) in &unreadable {
        run.add_unreadable(&format!("line {n}"), reason);
    }
    if json {
        let mut lines: Vec<(usize, serde_json::Value)> = run
            .outcomes
            .iter()
            .map(|(source, o)| Ok((line_number(source), serde_json::to_value(o)?)))
            .collect::<Result<_>>()?;
        lines.sort_by_key(|(n, _)| *n);
        for (n, mut v) in lines {
            v["line"] = json!(n);
            println!("{v}");
        }
        println!("{}", json!({"summary": run.summary}));
    } else {
        report::print(
            &run.summary,
            &format!("feedloop process {}", file.display()),
        );
    }
    Ok(if run.summary.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn line_number(source: &str) -> usize {
    source
        .strip_prefix("line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn eval(opts: &AnalysisOpts, json: bool, split: Split, file: &Path) -> Result<ExitCode> {
    let src = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut records = Vec::new();
    for (i, line) in src
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: Record = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", file.display(), i + 1))?;
        records.push(r);
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Files that come pre-split are used whole; the others are split by id.
    let presplit = name.contains("_train") || name.contains("_test");
    if !presplit {
        records.retain(|r| split.keeps(&r.id));
    }
    if records.is_empty() {
        bail!("{} has no records for split {split:?}", file.display());
    }
    let analyzer = analyzer(opts)?;
    let total = records.len();
    let report = eval::evaluate(&analyzer, &records, |done| {
        if analyzer.mode().needs_encoder() && total > 512 {
            eprint!("\r{name}: {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    })?;
    let mut v = serde_json::to_value(&report)?;
    v["file"] = json!(name);
    v["mode"] = json!(analyzer.mode());
    v["themes_from"] = json!(match opts.themes {
        ThemeSourceOpt::Taxonomy => "taxonomy",
        ThemeSourceOpt::Head => "head",
    });
    v["taxonomy"] = json!(opts.taxonomy);
    v["split"] = json!(if presplit { "file" } else { split_name(split) });
    if json {
        println!("{v}");
    } else {
        print_metrics("", &v);
    }
    Ok(ExitCode::SUCCESS)
}

/// One `name value` line per metric, nested objects as dotted names.
fn print_metrics(prefix: &str, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                print_metrics(&name, x);
            }
        }
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => println!("{prefix:<36} {f:.4}"),
            _ => println!("{prefix:<36} {n}"),
        },
        serde_json::Value::String(s) => println!("{prefix:<36} {s}"),
        serde_json::Value::Null => {}
        other => println!("{prefix:<36} {other}"),
    }
}

fn split_name(s: Split) -> &'static str {
    match s {
        Split::All => "all",
        Split::Train => "train",
        Split::Test => "test",
    }
}
