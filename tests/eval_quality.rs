//! Quality gates on the public labelled sets, on *test* data only:
//! the SemEval-2014 theme goal, and "feedloop mode never loses to the reference".

use feedloop_core::analysis::Analyzer;
use feedloop_core::eval::{evaluate, Split};
use feedloop_core::sentiment::Mode;
use feedloop_core::themes::Taxonomy;
use feedloop_tests::{eval_dir, load_records};

#[test]
fn semeval_restaurant_categories_reach_micro_f1_080_on_test() {
    let Some(dir) = eval_dir() else {
        eprintln!("SKIPPED: no eval dir (set FEEDLOOP_EVAL_DIR)");
        return;
    };
    let records = load_records(&dir.join("themes/semeval14_restaurants_test.jsonl"));
    let report = evaluate(
        &Analyzer::new(Mode::Lexicon, Taxonomy::restaurants()),
        &records,
        |_| {},
    )
    .unwrap();
    let themes = report.themes.expect("SemEval has theme labels");
    assert!(themes.micro_f1 >= 0.80, "micro-F1 {:.4}", themes.micro_f1);
    assert!(report.aspect_polarity.expect("aspects").accuracy > 0.70);
}

#[test]
fn feedloop_mode_beats_or_matches_the_reference_on_every_test_file() {
    let Some(dir) = eval_dir() else {
        eprintln!("SKIPPED: no eval dir (set FEEDLOOP_EVAL_DIR)");
        return;
    };
    for name in [
        "uci_amazon",
        "uci_imdb",
        "uci_yelp",
        "vader_amazon_snippets",
    ] {
        let mut records = load_records(&dir.join(format!("sentiment/{name}.jsonl")));
        records.retain(|r| Split::Test.keeps(&r.id));
        let acc = |mode| {
            evaluate(
                &Analyzer::new(mode, Taxonomy::default_small_business()),
                &records,
                |_| {},
            )
            .unwrap()
            .sentiment
            .expect("sentiment labels")
            .accuracy
        };
        let (reference, feedloop) = (acc(Mode::Reference), acc(Mode::Lexicon));
        assert!(
            feedloop >= reference,
            "{name}: feedloop {feedloop:.4} < reference {reference:.4}"
        );
        assert!(feedloop > 0.55, "{name}: {feedloop:.4}");
    }
}
