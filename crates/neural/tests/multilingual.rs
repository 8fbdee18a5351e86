//! The whole analyzer with both encoders and the shipped heads: other languages scored
//! with the right sign, hostile text of any script given a result in bounded work.

mod common;

use feedloop_core::analysis::Analyzer;
use feedloop_core::sentiment::{Label, Mode};
use feedloop_core::themes::Taxonomy;
use feedloop_neural::ModelDirs;

fn analyzer() -> Analyzer {
    let (english, multilingual) = (common::model_dir(), common::multilingual_dir());
    let dirs = ModelDirs {
        english: Some(&english),
        multilingual: Some(&multilingual),
    };
    feedloop_neural::analyzer(Mode::Hybrid, Taxonomy::default_small_business(), dirs)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn clear_opinions_in_five_languages_get_their_sign() {
    // GIVEN unmistakable complaints and praise, written for this test
    let cases = [
        ("de", "Die Bestellung kam beschädigt an und der Kundendienst hat mich einfach ignoriert. Nie wieder!", Label::Negative),
        ("de", "Ein wunderbarer Laden, super freundliche Beratung und alles perfekt verpackt. Vielen Dank!", Label::Positive),
        ("fr", "Commande jamais reçue, aucun remboursement, un service client inexistant. Honteux.", Label::Negative),
        ("fr", "Une expérience parfaite, personnel adorable et livraison ultra rapide. Merci beaucoup !", Label::Positive),
        ("es", "Pésimo servicio, el paquete llegó roto y nadie contesta el teléfono.", Label::Negative),
        ("es", "Todo perfecto, el personal fue encantador y el envío llegó rapidísimo. ¡Gracias!", Label::Positive),
        ("it", "Servizio pessimo, ordine arrivato in ritardo e nessuno ha risposto alle mie email.", Label::Negative),
        ("it", "Esperienza fantastica, personale gentilissimo e consegna velocissima. Grazie mille!", Label::Positive),
        ("pt", "Péssimo atendimento, o pedido chegou quebrado e ninguém respondeu minhas mensagens.", Label::Negative),
        ("pt", "Adorei tudo, atendimento maravilhoso e entrega super rápida. Muito obrigado!", Label::Positive),
    ];
    let a = analyzer();
    let texts: Vec<&str> = cases.iter().map(|c| c.1).collect();

    // WHEN they are analysed as one batch
    let got = a.analyze_texts(&texts).unwrap();

    // THEN each is in its language and scored with the sign a reader gives it
    for ((lang, text, want), r) in cases.iter().zip(&got) {
        assert_eq!(&r.language.code, lang, "{text}");
        let s = r
            .sentiment
            .unwrap_or_else(|| panic!("{text}: {:?}", r.skipped));
        assert_eq!(s.label, *want, "{text}: {s:?}");
    }
    assert_eq!(a.languages(), ["de", "es", "fr", "it", "pt"]);
}

#[test]
fn hostile_text_in_any_script_gets_a_result() {
    let a = analyzer();
    let hostile = [
        "a".repeat(10_000),
        format!("Das Essen war kalt. {}", "\u{202e}".repeat(3_000)),
        format!("{}Le service était lent.", "\u{200b}".repeat(5_000)),
        "Schlecht.\n".repeat(1_000),
        "😡".repeat(2_000),
        "\u{0627}b\u{05d0}c\u{4e2d} ".repeat(1_000),
        "Das Paket kam nie an. ".repeat(500),
    ];
    for text in &hostile {
        let r = a.analyze_text(text).unwrap();
        // a score, or a reason; never both, never neither
        assert!(
            r.sentiment.is_some() != r.skipped.is_some(),
            "{:?}...: {:?} / {:?}",
            text.chars().take(20).collect::<String>(),
            r.sentiment,
            r.skipped
        );
        if r.sentiment.is_some() {
            assert!(r.sentences.iter().all(|s| s.compound.is_finite()));
        }
    }
}

#[test]
fn past_the_per_text_limit_sentences_are_scored_by_the_lexicon_and_the_result_says_so() {
    // GIVEN a text of a thousand short lines, in English and in German
    let a = analyzer();
    let lexicon = Analyzer::new(Mode::Lexicon, Taxonomy::default_small_business());
    let english = "Terrible service.\n".repeat(1_000);
    let german = "Schlechter Service.\n".repeat(1_000);

    // WHEN each is analysed
    let en = a.analyze_text(&english).unwrap();
    let de = a.analyze_text(&german).unwrap();

    // THEN every line has a score, the lines past the model's budget the lexicon's
    assert_eq!(en.sentences.len(), 1_000);
    let by_lexicon = lexicon.analyze_text("Terrible service.").unwrap();
    let last = en.sentences.last().unwrap().compound;
    assert_eq!(last, by_lexicon.sentiment.unwrap().compound);
    let note = en.note.as_deref().expect("the result names the limit");
    assert!(
        note.contains("of 1000 sentences") && note.contains("lexicon"),
        "{note}"
    );
    // AND another language's lines past it are left neutral, and it says that too
    let note = de
        .note
        .as_deref()
        .expect("the German result names the limit");
    assert!(note.contains("neutral"), "{note}");
    assert_eq!(de.sentences.last().unwrap().compound, 0.0);
    // AND a short text carries no note
    assert_eq!(a.analyze_text("Terrible service.").unwrap().note, None);
}
