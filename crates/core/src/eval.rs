//! Quality measurement on labelled JSONL files (`{"id", "text", "gold": {...}}`), the
//! shape of `../shared/eval`. Pure: the caller reads the file and prints the report.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::analysis::{Analyzer, AnalyzerError, TextAnalysis};
use crate::sentiment::Label;

#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: String,
    pub text: String,
    pub gold: Gold,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Gold {
    pub sentiment: Option<String>,
    pub valence: Option<f64>,
    pub themes: Option<Vec<String>>,
    pub aspects: Option<Vec<Aspect>>,
    /// SST's fine-grained class, 1 (very negative) ..= 5 (very positive).
    pub stars5: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Aspect {
    pub theme: String,
    pub polarity: String,
}

crate::keyword_enum! {
    /// Files without their own split are split by a hash of the record id: stable across
    /// runs, machines and file order, 30% test.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Split ("split") {
        All = "all",
        Train = "train",
        Test = "test",
    }
}

/// The `text` field of every line of a JSON-lines document (the parity corpus the
/// benchmarks time): a line that is not JSON is an error, one without text is "".
pub fn texts_of_jsonl(src: &str) -> Result<Vec<String>, serde_json::Error> {
    src.lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l)?;
            Ok(row["text"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

pub fn is_test_id(id: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 10 < 3
}

impl Split {
    pub fn keeps(self, id: &str) -> bool {
        match self {
            Split::All => true,
            Split::Test => is_test_id(id),
            Split::Train => !is_test_id(id),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SentimentMetrics {
    /// Label (pos >= 0.05, neg <= -0.05, else neutral) equals the gold label. On a file
    /// whose gold is only positive/negative, a neutral prediction counts as an error.
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Only on two-class gold: sign of the compound score (0.0 counts as an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_accuracy: Option<f64>,
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// Texts that got no score (not English / empty); they count as neutral.
    pub unscored: u64,
    /// Only on files with five-class gold (SST-5): the predicted class equals it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub five_class_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThemeMetrics {
    pub micro_f1: f64,
    pub macro_f1: f64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub per_theme: BTreeMap<String, ClassMetrics>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AspectPolarityMetrics {
    /// Over gold aspects (excluding `conflict`) whose theme was detected: the detected
    /// theme's sentence label equals the gold polarity.
    pub accuracy: f64,
    pub evaluated: u64,
    pub skipped_undetected: u64,
    pub skipped_conflict: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub n: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pearson_r: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub themes: Option<ThemeMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect_polarity: Option<AspectPolarityMetrics>,
}

#[derive(Default)]
struct Confusion {
    tp: BTreeMap<String, u64>,
    fp: BTreeMap<String, u64>,
    fn_: BTreeMap<String, u64>,
}

impl Confusion {
    fn record(&mut self, gold: &BTreeSet<String>, pred: &BTreeSet<String>) {
        for g in gold {
            *if pred.contains(g) {
                self.tp.entry(g.clone())
            } else {
                self.fn_.entry(g.clone())
            }
            .or_default() += 1;
        }
        for p in pred.difference(gold) {
            *self.fp.entry(p.clone()).or_default() += 1;
        }
    }

    fn per_class(&self, classes: &BTreeSet<String>) -> BTreeMap<String, ClassMetrics> {
        classes
            .iter()
            .map(|c| {
                let tp = *self.tp.get(c).unwrap_or(&0) as f64;
                let fp = *self.fp.get(c).unwrap_or(&0) as f64;
                let fn_ = *self.fn_.get(c).unwrap_or(&0) as f64;
                let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
                (
                    c.clone(),
                    ClassMetrics {
                        precision: p,
                        recall: r,
                        f1: f1(p, r),
                        support: (tp + fn_) as u64,
                    },
                )
            })
            .collect()
    }

    fn micro(&self) -> (f64, f64, f64) {
        let tp: u64 = self.tp.values().sum();
        let fp: u64 = self.fp.values().sum();
        let fn_: u64 = self.fn_.values().sum();
        let (p, r) = (
            ratio(tp as f64, (tp + fp) as f64),
            ratio(tp as f64, (tp + fn_) as f64),
        );
        (p, r, f1(p, r))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len() as f64;
    if xs.len() < 2 || xs.len() != ys.len() {
        return None;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Texts analysed per call: large enough that the neural modes batch well, small
/// enough to bound memory on big files.
const EVAL_CHUNK: usize = 512;

/// Evaluate `analyzer` on `records`, computing every metric the gold labels allow.
/// `progress` is told how many records are done after each chunk.
pub fn evaluate(
    analyzer: &Analyzer,
    records: &[Record],
    mut progress: impl FnMut(usize),
) -> Result<Report, AnalyzerError> {
    let mut analyses: Vec<TextAnalysis> = Vec::with_capacity(records.len());
    for chunk in records.chunks(EVAL_CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        analyses.extend(analyzer.analyze_texts(&texts)?);
        progress(analyses.len());
    }
    Ok(report(records, &analyses))
}

fn report(records: &[Record], analyses: &[TextAnalysis]) -> Report {
    let (mut five_ok, mut five_n) = (0u64, 0u64);
    let mut sent = Confusion::default();
    let mut sent_classes = BTreeSet::new();
    let (mut correct, mut labelled, mut unscored) = (0u64, 0u64, 0u64);
    let (mut bin_correct, mut two_class) = (0u64, true);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut themes = Confusion::default();
    let mut theme_classes = BTreeSet::new();
    let mut has_themes = false;
    let (mut pol_ok, mut pol_n, mut pol_undetected, mut pol_conflict) = (0u64, 0u64, 0u64, 0u64);
    let mut has_aspects = false;

    for (r, a) in records.iter().zip(analyses) {
        if let Some(g) = r.gold.stars5 {
            five_n += 1;
            if a.stars == Some(g) {
                five_ok += 1;
            }
        }
        let compound = a.sentiment.map(|s| s.compound);
        if compound.is_none() {
            unscored += 1;
        }
        let label = Label::from_compound(compound.unwrap_or(0.0));
        if let Some(g) = &r.gold.sentiment {
            labelled += 1;
            sent_classes.insert(g.clone());
            two_class &= g != "neutral";
            if label.as_str() == g {
                correct += 1;
            }
            let c = compound.unwrap_or(0.0);
            if (c > 0.0 && g == "positive") || (c < 0.0 && g == "negative") {
                bin_correct += 1;
            }
            sent.record(
                &BTreeSet::from([g.clone()]),
                &BTreeSet::from([label.as_str().to_owned()]),
            );
        }
        if let Some(v) = r.gold.valence {
            xs.push(compound.unwrap_or(0.0));
            ys.push(v);
        }
        if let Some(gold) = &r.gold.themes {
            has_themes = true;
            let gold: BTreeSet<String> = gold.iter().cloned().collect();
            let pred: BTreeSet<String> = a.themes.iter().map(|t| t.theme.clone()).collect();
            theme_classes.extend(gold.iter().cloned());
            themes.record(&gold, &pred);
        }
        if let Some(aspects) = &r.gold.aspects {
            has_aspects = true;
            for asp in aspects {
                if asp.polarity == "conflict" {
                    pol_conflict += 1;
                    continue;
                }
                let Some(m) = a.themes.iter().find(|t| t.theme == asp.theme) else {
                    pol_undetected += 1;
                    continue;
                };
                pol_n += 1;
                if Label::from_compound(m.sentiment.unwrap_or(0.0)).as_str() == asp.polarity {
                    pol_ok += 1;
                }
            }
        }
    }

    let sentiment = (labelled > 0).then(|| {
        let per_class = sent.per_class(&sent_classes);
        let macro_f1 = per_class.values().map(|c| c.f1).sum::<f64>() / per_class.len() as f64;
        SentimentMetrics {
            accuracy: ratio(correct as f64, labelled as f64),
            macro_f1,
            binary_accuracy: two_class.then(|| ratio(bin_correct as f64, labelled as f64)),
            per_class,
            unscored,
            five_class_accuracy: (five_n > 0).then(|| ratio(five_ok as f64, five_n as f64)),
        }
    });
    let themes = has_themes.then(|| {
        let per_theme = themes.per_class(&theme_classes);
        let (p, r, f) = themes.micro();
        ThemeMetrics {
            micro_f1: f,
            macro_f1: per_theme.values().map(|c| c.f1).sum::<f64>() / per_theme.len().max(1) as f64,
            micro_precision: p,
            micro_recall: r,
            per_theme,
        }
    });
    Report {
        n: records.len() as u64,
        sentiment,
        pearson_r: pearson(&xs, &ys),
        themes,
        aspect_polarity: has_aspects.then(|| AspectPolarityMetrics {
            accuracy: ratio(pol_ok as f64, pol_n as f64),
            evaluated: pol_n,
            skipped_undetected: pol_undetected,
            skipped_conflict: pol_conflict,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::Mode;
    use crate::themes::Taxonomy;

    #[test]
    fn jsonl_texts_are_read_in_order_and_a_bad_line_is_an_error() {
        let src = "{\"text\": \"one\"}\n{\"id\": 2}\n{\"text\": \"three\"}";
        assert_eq!(texts_of_jsonl(src).unwrap(), ["one", "", "three"]);
        assert!(texts_of_jsonl("{\"text\": \"one\"}\nnot json").is_err());
    }

    fn rec(id: &str, text: &str, gold: &str) -> Record {
        serde_json::from_str(&format!(r#"{{"id":"{id}","text":"{text}","gold":{gold}}}"#)).unwrap()
    }

    #[test]
    fn metrics_follow_their_definitions() {
        let a = Analyzer::new(Mode::Reference, Taxonomy::restaurants());
        let rs = vec![
            rec(
                "1",
                "The food was great.",
                r#"{"sentiment":"positive","valence":2.5,"themes":["food"],"aspects":[{"theme":"food","polarity":"positive"}]}"#,
            ),
            rec(
                "2",
                "The waiter was rude.",
                r#"{"sentiment":"negative","valence":-2.0,"themes":["service"],"aspects":[{"theme":"service","polarity":"negative"}]}"#,
            ),
            rec(
                "3",
                "We sat down.",
                r#"{"sentiment":"negative","valence":-0.5,"themes":["service"],"aspects":[{"theme":"service","polarity":"conflict"}]}"#,
            ),
        ];
        let r = evaluate(&a, &rs, |_| {}).unwrap();
        let s = r.sentiment.unwrap();
        assert_eq!(r.n, 3);
        assert!((s.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.binary_accuracy, Some(2.0 / 3.0));
        assert!(r.pearson_r.unwrap() > 0.9);
        let t = r.themes.unwrap();
        // "We sat down" gets the fallback anecdotes theme: one FP and one FN for service.
        assert!(
            (t.micro_precision - 2.0 / 3.0).abs() < 1e-12
                && (t.micro_recall - 2.0 / 3.0).abs() < 1e-12
        );
        let p = r.aspect_polarity.unwrap();
        assert_eq!((p.evaluated, p.skipped_conflict, p.accuracy), (2, 1, 1.0));
    }

    #[test]
    fn the_split_is_stable_and_about_thirty_percent() {
        let test = (0..10_000)
            .filter(|i| is_test_id(&format!("id-{i}")))
            .count();
        assert!((2_700..3_300).contains(&test), "{test}");
        assert_eq!(is_test_id("uci-amazon-0"), is_test_id("uci-amazon-0"));
    }
}
