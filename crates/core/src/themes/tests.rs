use super::*;
use crate::text::sentences;

fn ids(tax: &Taxonomy, text: &str) -> Vec<String> {
    tax.find(text, &sentences(text))
        .into_iter()
        .map(|h| h.theme)
        .collect()
}

fn ids_in(tax: &Taxonomy, text: &str, lang: &str) -> Vec<String> {
    tax.find_in(text, &sentences(text), lang)
        .into_iter()
        .map(|h| h.theme)
        .collect()
}

#[test]
fn a_language_s_own_phrases_match_only_in_that_language_under_its_stemmer() {
    let tax = Taxonomy::default_small_business();
    // German compounds by prefix, inflections by the Snowball stemmer
    assert_eq!(
        ids_in(
            &tax,
            "Die Lieferung kam verspätet und war beschädigt.",
            "de"
        ),
        ["quality", "delivery", "speed"]
    );
    // French elision: l'application is application
    assert_eq!(
        ids_in(&tax, "L'application plante tout le temps.", "fr"),
        ["website_app"]
    );
    // the same German words in text detected as French match nothing
    assert!(ids_in(&tax, "Die Lieferung kam verspätet.", "fr").is_empty());
    // English phrases still match everywhere
    assert_eq!(ids_in(&tax, "Super Service!", "de"), ["service"]);
}

#[test]
fn per_language_phrases_extend_and_bad_codes_are_refused() {
    let tax = Taxonomy::from_toml(
        "mode = \"extend\"\n[[theme]]\nid = \"delivery\"\nlabel = \"Delivery\"\nphrases.nl = [\"bezorging\", \"pakket\"]\n",
    )
    .unwrap();
    assert_eq!(ids_in(&tax, "De bezorging was traag.", "nl"), ["delivery"]);
    assert_eq!(ids_in(&tax, "Die Lieferung kam.", "de"), ["delivery"]);
    let err =
        Taxonomy::from_toml("[[theme]]\nid = \"x\"\nlabel = \"X\"\nphrases.german = [\"x\"]\n")
            .unwrap_err();
    assert!(err.to_string().contains("phrases.german"), "{err}");
}

#[test]
fn shipped_taxonomies_compile_with_enough_themes() {
    assert!(Taxonomy::default_small_business().themes().len() >= 12);
    assert_eq!(Taxonomy::restaurants().themes().len(), 5);
}

#[test]
fn phrases_match_inflections_and_multiple_words() {
    let tax = Taxonomy::default_small_business();
    assert_eq!(ids(&tax, "Both deliveries came by courier."), ["delivery"]);
    assert_eq!(ids(&tax, "I was charged twice."), ["billing"]);
    assert_eq!(
        ids(&tax, "Waited ages. The staff were rude!"),
        ["speed", "staff"]
    );
    assert!(ids(&tax, "Nothing to say").is_empty());
}

#[test]
fn exclusions_cancel_a_theme_in_that_sentence() {
    let tax = Taxonomy::from_toml(
        r#"
        [[theme]]
        id = "service"
        label = "Service"
        phrases = ["service"]
        exclude = ["service charge"]
        "#,
    )
    .unwrap();
    assert!(ids(&tax, "A 12% service charge was added").is_empty());
    assert_eq!(ids(&tax, "Service was great"), ["service"]);
}

#[test]
fn user_files_extend_or_replace_and_are_checked() {
    let ext = Taxonomy::from_toml(
        "mode = \"extend\"\n[[theme]]\nid = \"parking\"\nlabel = \"Parking\"\nphrases = [\"car park\", \"parking\"]\n",
    )
    .unwrap();
    assert_eq!(
        ext.themes().len(),
        Taxonomy::default_small_business().themes().len() + 1
    );
    assert_eq!(ids(&ext, "No parking near the shop"), ["parking"]);
    let err =
        Taxonomy::from_toml("[[theme]]\nid = \"x\"\nlabel = \"X\"\nphrases = []\n").unwrap_err();
    assert_eq!(err.to_string(), "theme \"x\" has no phrases");
    let err = Taxonomy::from_toml(
        "fallback = \"nope\"\n[[theme]]\nid = \"x\"\nlabel = \"X\"\nphrases = [\"x\"]\n",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "fallback theme \"nope\" is not defined");
    assert!(matches!(
        Taxonomy::from_toml("[[theme]]\nid = 1\n"),
        Err(TaxonomyError::Toml(_))
    ));
}
