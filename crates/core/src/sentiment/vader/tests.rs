use super::*;

#[test]
fn lexicon_is_complete() {
    // 7,520 rows of which 14 repeat a word; the later row wins, as in a Python dict.
    assert_eq!(Lexicon::get().len(), 7506);
    assert_eq!(Lexicon::get().valence("heart"), Some(3.2));
}

#[test]
fn python_string_semantics() {
    assert!(py_isupper("I"));
    assert!(py_isupper("GREAT!!"));
    assert!(!py_isupper(":)"));
    assert!(!py_isupper("GREAt"));
    assert_eq!(strip_punc_if_word("(great)."), "great");
    assert_eq!(strip_punc_if_word(":)"), ":)");
    assert_eq!(strip_punc_if_word("'ok'"), "'ok'");
    assert!(py_isspace('\u{1f}') && py_isspace('\u{a0}') && !py_isspace('\u{200b}'));
}

#[test]
fn reference_examples() {
    let v = Vader::default();
    let s = v.polarity_scores("VADER is smart, handsome, and funny.");
    assert_eq!(
        (s.neg, s.neu, s.pos, s.compound),
        (0.0, 0.254, 0.746, 0.8316)
    );
    let s = v.polarity_scores("Not bad at all");
    assert_eq!(s.compound, 0.431);
}
