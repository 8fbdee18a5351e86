use super::*;

/// The text analysed in lexicon mode with the small-business taxonomy.
fn lexicon(text: &str) -> TextAnalysis {
    Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business())
        .analyze_text(text)
        .unwrap()
}

#[test]
fn themes_carry_their_sentence_sentiment() {
    let r = lexicon("The staff were lovely. Delivery took forever and the parcel was damaged!");
    let staff = r.themes.iter().find(|t| t.theme == "staff").unwrap();
    let delivery = r.themes.iter().find(|t| t.theme == "delivery").unwrap();
    assert!(staff.sentiment.unwrap() > 0.3);
    assert!(delivery.sentiment.unwrap() < -0.3);
    assert_eq!(delivery.sentence_index, 1);
    assert_eq!(r.sentences.len(), 2);
}

#[test]
fn non_english_gets_no_score_and_a_reason() {
    let r = lexicon("Das Paket ist nie angekommen und niemand hat auf meine E-Mails geantwortet.");
    assert_eq!(r.sentiment, None);
    assert_eq!(r.skipped.as_deref(), Some("unsupported language: de"));
}
