//! GIVEN the committed corpus scored by Python vaderSentiment 3.3.2
//! WHEN the reference mode scores every text
//! THEN all four scores match within 1e-4 on 100% of it.

use feedloop_core::sentiment::Vader;
use serde::Deserialize;

#[derive(Deserialize)]
struct Row {
    family: String,
    text: String,
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
}

const TOLERANCE: f64 = 1e-4 + 1e-12;

#[test]
fn reference_mode_matches_python_vader_on_the_whole_corpus() {
    let corpus = include_str!("parity/vader_3.3.2.jsonl");
    let vader = Vader::default();
    let mut total = 0;
    let mut failures = Vec::new();
    for (line_no, line) in corpus.lines().enumerate() {
        let row: Row = serde_json::from_str(line).expect("corpus rows are valid JSON");
        total += 1;
        let got = vader.polarity_scores(&row.text);
        let ok = (got.neg - row.neg).abs() <= TOLERANCE
            && (got.neu - row.neu).abs() <= TOLERANCE
            && (got.pos - row.pos).abs() <= TOLERANCE
            && (got.compound - row.compound).abs() <= TOLERANCE;
        if !ok {
            failures.push(format!(
                "line {} [{}] {:?}: python neg={} neu={} pos={} compound={}, rust {:?}",
                line_no + 1,
                row.family,
                row.text,
                row.neg,
                row.neu,
                row.pos,
                row.compound,
                got
            ));
        }
    }
    assert!(total >= 5000, "corpus has only {total} texts");
    assert!(
        failures.is_empty(),
        "{} of {total} texts differ from Python VADER 3.3.2:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
