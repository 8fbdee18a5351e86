//! `make bench` (third part): the multilingual tier on ONE thread. Cold start with both
//! encoders (load, taxonomy exemplars, heads, first text), the hybrid analyzer's
//! throughput per language at batch 32 on XLM-T tweets (de, fr, es, it, pt) and on
//! short feedback sentences, tokens per text, peak RSS and the artifact sizes.

use std::path::PathBuf;
use std::time::Instant;

use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_neural::{resolve_model_dir, resolve_multilingual_dir, BertEncoder, ModelDirs};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn mib(path: &std::path::Path) -> f64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let bytes: u64 = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        size(path)
    };
    bytes as f64 / (1024.0 * 1024.0)
}

/// Short customer feedback, a few sentences per language (written for this bench).
const SHORT: &[(&str, &str)] = &[
    ("de", "Das Essen war kalt und der Kellner unfreundlich."),
    ("de", "Super schnelle Lieferung, gerne wieder!"),
    ("fr", "Livraison rapide, produit conforme, merci !"),
    ("fr", "Le service client ne répond jamais, très déçu."),
    ("es", "La comida llegó fría y tarde, no volveré."),
    ("es", "Muy buena atención y precios razonables."),
    ("it", "Personale gentilissimo, torneremo sicuramente."),
    ("it", "Il pacco è arrivato danneggiato e nessuno risponde."),
    ("pt", "Atendimento excelente e entrega no prazo."),
    ("pt", "O produto veio com defeito e o suporte demorou."),
];

fn tweets(lang: &str) -> Vec<String> {
    let dir = std::env::var("EVAL_DIR").unwrap_or_else(|_| "../../../shared/eval".into());
    let path = PathBuf::from(dir).join(format!("multilingual/xlmt_{lang}_val.jsonl"));
    let src = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set EVAL_DIR)", path.display()));
    src.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("row")["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .take(256)
        .collect()
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let english = resolve_model_dir(None).unwrap_or_else(|e| panic!("{e}"));
    let multilingual = resolve_multilingual_dir(None).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let dirs = ModelDirs {
        english: Some(&english),
        multilingual: Some(&multilingual),
    };
    let analyzer =
        feedloop_neural::analyzer(Mode::Hybrid, Taxonomy::default_small_business(), dirs)
            .unwrap_or_else(|e| panic!("{e}"));
    let built = started.elapsed();
    analyzer
        .analyze_text("Das Paket kam nie an und niemand antwortet.")
        .expect("first text");
    let first = started.elapsed();
    println!(
        "cold start, both encoders (1 thread): load + exemplars + heads {:.0} ms, + first German text {:.0} ms = {:.0} ms",
        built.as_secs_f64() * 1e3,
        (first - built).as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    let e5 = BertEncoder::load_e5(&multilingual).expect("e5");
    let mut classes: Vec<(String, Vec<String>)> = ["de", "fr", "es", "it", "pt"]
        .iter()
        .map(|l| (format!("{l} tweets"), tweets(l)))
        .collect();
    let short: Vec<String> = SHORT.iter().map(|(_, t)| t.to_string()).collect();
    let short: Vec<String> = short.iter().cycle().take(260).cloned().collect();
    classes.push(("short feedback (5 languages)".into(), short));
    for (name, texts) in &classes {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokens: usize = refs.iter().map(|t| e5.token_count(t).unwrap_or(0)).sum();
        analyzer.analyze_texts(&refs[..32]).expect("warm-up");
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                for chunk in refs.chunks(32) {
                    analyzer.analyze_texts(chunk).expect("analysis");
                }
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "{name}: {:.0} texts/s (hybrid analyzer, batch 32, 1 thread, {:.0} tokens/text)",
            refs.len() as f64 / best,
            tokens as f64 / refs.len() as f64
        );
    }
    println!("peak RSS with both encoders: {:.0} MiB", peak_rss_mib());
    println!(
        "artifacts: {} {:.1} MiB, {} {:.1} MiB",
        english.display(),
        mib(&english),
        multilingual.display(),
        mib(&multilingual)
    );
}
