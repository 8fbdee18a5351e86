use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::*;
use crate::neural::{EncodeError, HeadsError, SentenceEncoder};
use crate::sentiment::Label;

const DIM: usize = 8;

/// Axis 0: pleasant words, axis 1: unpleasant ones, axis 2: waiting, axis 7: bias.
struct FakeEncoder {
    calls: AtomicUsize,
    seen: Mutex<Vec<String>>,
    fail: bool,
}

impl FakeEncoder {
    fn new(fail: bool) -> Arc<FakeEncoder> {
        Arc::new(FakeEncoder {
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            fail,
        })
    }
}

impl SentenceEncoder for FakeEncoder {
    fn dim(&self) -> usize {
        DIM
    }
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(EncodeError("out of memory".into()));
        }
        self.seen
            .lock()
            .unwrap()
            .extend(texts.iter().map(|t| t.to_string()));
        Ok(texts
            .iter()
            .map(|t| {
                let t = t.to_lowercase();
                let has = |ws: &[&str]| ws.iter().any(|w| t.contains(w)) as u8 as f32;
                let mut v = vec![0.0; DIM];
                v[0] = has(&["lovely", "great"]);
                v[1] = has(&["never arrived", "nobody answered", "late"]);
                v[2] = has(&["forever", "ages", "wait"]);
                v[7] = 0.1;
                v
            })
            .collect())
    }
}

fn head(classes: &[&str], weights: Vec<Vec<f32>>, dim: usize) -> LinearHead {
    LinearHead {
        classes: classes.iter().map(|c| c.to_string()).collect(),
        weights: weights
            .into_iter()
            .map(|mut w| {
                w.resize(dim, 0.0);
                w
            })
            .collect(),
        bias: vec![0.0; classes.len()],
    }
}

fn heads() -> Heads {
    let sentiment = |dim| SentimentHeads {
        three_class: head(
            &["negative", "neutral", "positive"],
            vec![
                vec![0.0, 6.0],
                vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0],
                vec![6.0],
            ],
            dim,
        ),
        five_class: head(
            &["1", "2", "3", "4", "5"],
            vec![vec![0.0, 6.0], vec![], vec![], vec![], vec![6.0]],
            dim,
        ),
        neutral_bias: 0.0,
        valence: head(&["valence"], vec![vec![0.5, -0.5]], dim),
    };
    let categories = [
        "ambience",
        "anecdotes/miscellaneous",
        "food",
        "price",
        "service",
    ];
    Heads {
        provenance: serde_json::json!({}),
        model_sha256: String::new(),
        embedding_dim: DIM,
        neural: sentiment(DIM),
        hybrid: sentiment(DIM + crate::neural::HYBRID_EXTRA),
        restaurant_categories: head(&categories, vec![vec![]; 5], DIM + 5),
        restaurant_thresholds: vec![0.5; 5],
    }
}

fn taxonomy() -> Taxonomy {
    Taxonomy::from_toml(
        r#"
[[theme]]
id = "speed"
label = "Speed & wait time"
phrases = ["slow"]
examples = ["I waited for ages"]
similarity_threshold = 0.9
[[theme]]
id = "staff"
label = "Staff"
phrases = ["staff"]
"#,
    )
    .unwrap()
}

#[test]
fn a_batch_is_one_encoder_call_covering_texts_and_their_sentences() {
    // GIVEN a neural analyzer (its exemplars were embedded at build: one call)
    let enc = FakeEncoder::new(false);
    let a =
        Analyzer::build_with_heads(Mode::Neural, taxonomy(), Some(enc.clone()), heads()).unwrap();
    assert_eq!(enc.calls.load(Ordering::SeqCst), 1);
    enc.seen.lock().unwrap().clear();

    // WHEN two texts, one of two sentences, are analysed together
    let r = a
        .analyze_texts(&[
            "The parcel never arrived and nobody answered. The staff were lovely though.",
            "Great coffee",
        ])
        .unwrap();

    // THEN one more call encoded both texts and the two sentences of the first
    assert_eq!(enc.calls.load(Ordering::SeqCst), 2);
    assert_eq!(enc.seen.lock().unwrap().len(), 4);
    // and each sentence keeps its own sign while the head scores the whole text
    assert_eq!(r[0].sentences.len(), 2);
    assert!(r[0].sentences[0].compound < -0.05);
    assert!(r[0].sentences[1].compound > 0.05);
    assert_eq!(r[1].sentiment.unwrap().label, Label::Positive);
    assert_eq!(r[1].stars, Some(5));
    let staff = r[0].themes.iter().find(|t| t.theme == "staff").unwrap();
    assert_eq!(
        (staff.source, staff.sentence_index),
        (ThemeSource::Phrase, 1)
    );
    assert!(staff.sentiment.unwrap() > 0.05);
}

#[test]
fn a_paraphrase_reaches_a_theme_by_similarity_with_its_score() {
    let enc = FakeEncoder::new(false);
    let a = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(enc), heads()).unwrap();
    let r = a.analyze_text("It took forever.").unwrap();
    let speed = r.themes.iter().find(|t| t.theme == "speed").expect("speed");
    assert_eq!(speed.source, ThemeSource::Similarity);
    assert!(speed.score.unwrap() >= 0.9);
    assert_eq!(speed.phrase, "");
    // a phrase hit is reported as such, not twice
    let r = a.analyze_text("Slow, I waited ages.").unwrap();
    let hits: Vec<_> = r.themes.iter().filter(|t| t.theme == "speed").collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].source, ThemeSource::Phrase);
}

#[test]
fn the_neural_modes_refuse_to_run_without_an_encoder() {
    for mode in [Mode::Neural, Mode::Hybrid] {
        let err = Analyzer::build(mode, taxonomy(), None)
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("make model"), "{err}");
    }
    assert!(Analyzer::build(Mode::Lexicon, taxonomy(), None).is_ok());
}

#[test]
fn an_encoder_failure_is_an_error_not_a_silent_lexicon_score() {
    let enc = FakeEncoder::new(false);
    let a = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(enc), heads()).unwrap();
    assert!(a.analyze_text("fine").is_ok());
    let broken = FakeEncoder::new(true);
    let err = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(broken), heads())
        .err()
        .expect("exemplar embedding fails");
    assert!(matches!(err, AnalyzerError::Encode(_)), "{err}");
}

#[test]
fn heads_for_another_encoder_size_are_refused() {
    let mut h = heads();
    h.embedding_dim = 384;
    let err =
        Analyzer::build_with_heads(Mode::Neural, taxonomy(), Some(FakeEncoder::new(false)), h)
            .err()
            .unwrap();
    assert!(
        matches!(err, AnalyzerError::Heads(HeadsError::Dim { .. })),
        "{err}"
    );
}

fn german_heads() -> MultilingualHeads {
    let three_class = head(
        &["negative", "neutral", "positive"],
        vec![vec![0.0, 6.0], vec![0.0; 8], vec![6.0]],
        DIM,
    );
    MultilingualHeads {
        provenance: serde_json::json!({}),
        model_sha256: String::new(),
        embedding_dim: DIM,
        languages: [(
            "de".to_owned(),
            LanguageHead {
                three_class,
                neutral_bias: 0.0,
            },
        )]
        .into_iter()
        .collect(),
    }
}

#[test]
fn a_language_with_a_head_goes_to_the_multilingual_encoder_and_others_are_refused() {
    // GIVEN an English encoder and a multilingual one with a German head only
    let english = FakeEncoder::new(false);
    let other = FakeEncoder::new(false);
    let a = Analyzer::build_with_heads(Mode::Hybrid, taxonomy(), Some(english.clone()), heads())
        .unwrap()
        .with_multilingual_heads(other.clone(), german_heads())
        .unwrap();
    english.seen.lock().unwrap().clear();
    other.seen.lock().unwrap().clear();
    let german = "Das Paket kam viel zu late an und niemand hat auf meine Nachrichten geantwortet.";
    let french = "Le colis n'est jamais arrivé et personne n'a répondu à mes courriels.";

    // WHEN English, German and French texts are analysed together
    let r = a
        .analyze_texts(&["The parcel never arrived.", german, french])
        .unwrap();

    // THEN German is scored by its head over the multilingual encoder's vector
    assert_eq!(r[1].language.code, "de");
    assert_eq!(r[1].skipped, None);
    let s = r[1].sentiment.expect("scored");
    assert_eq!(s.label, crate::sentiment::Label::Negative);
    assert!(s.compound < -0.5, "{s:?}");
    assert_eq!(other.seen.lock().unwrap().as_slice(), [german]);
    // English stays with its own encoder; French has no head and says so
    assert_eq!(
        english.seen.lock().unwrap().as_slice(),
        ["The parcel never arrived."]
    );
    assert_eq!(r[2].sentiment, None);
    assert_eq!(r[2].skipped.as_deref(), Some("unsupported language: fr"));
    assert_eq!(a.languages(), ["de"]);
}

#[test]
fn multilingual_themes_use_their_own_threshold_and_none_turns_similarity_off() {
    let tax = |extra: &str| {
        Taxonomy::from_toml(&format!(
            "{extra}\n[[theme]]\nid = \"speed\"\nlabel = \"Speed\"\nphrases = [\"slow\"]\nexamples = [\"I waited for ages\"]\nsimilarity_threshold = 0.9\n"
        ))
        .unwrap()
    };
    let text = "Wir haben ewig gewartet, wait wait, und niemand kam an den Tisch zu uns.";
    for (extra, want) in [
        ("multilingual_similarity_threshold = 0.5", true),
        ("", false),
    ] {
        let a = Analyzer::build_with_heads(
            Mode::Neural,
            tax(extra),
            Some(FakeEncoder::new(false)),
            heads(),
        )
        .unwrap()
        .with_multilingual_heads(FakeEncoder::new(false), german_heads())
        .unwrap();
        let r = a.analyze_text(text).unwrap();
        assert_eq!(r.language.code, "de");
        let found = r
            .themes
            .iter()
            .any(|m| m.theme == "speed" && m.source == ThemeSource::Similarity);
        assert_eq!(found, want, "{extra:?}: {:?}", r.themes);
    }
}
