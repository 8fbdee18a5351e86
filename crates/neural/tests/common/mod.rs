use std::path::PathBuf;

use feedloop_neural::BertEncoder;

/// The model `make model` installs (or FEEDLOOP_MODEL_DIR). `make test` fetches it
/// first, so a missing model is a failure with instructions, not a skip.
pub fn model_dir() -> PathBuf {
    dir_from("FEEDLOOP_MODEL_DIR", "all-MiniLM-L6-v2")
}

/// The folder the variable names, else the one `make model` fills under `models/`.
fn dir_from(var: &str, installed: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(installed)
    })
}

#[allow(dead_code)]
pub fn encoder() -> BertEncoder {
    BertEncoder::load(&model_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// The multilingual encoder's folder `make model` fills (or FEEDLOOP_MULTILINGUAL_MODEL_DIR).
#[allow(dead_code)]
pub fn multilingual_dir() -> PathBuf {
    dir_from("FEEDLOOP_MULTILINGUAL_MODEL_DIR", "multilingual-e5-small")
}

#[allow(dead_code)]
pub fn multilingual() -> BertEncoder {
    BertEncoder::load_e5(&multilingual_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts every `(label, got, want)` pair is within `min` cosine and prints the worst,
/// for the run's record.
#[allow(dead_code)]
pub fn assert_worst_cosine<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a [f32], &'a [f32])>,
    min: f64,
) {
    let mut worst = (1.0f64, "");
    for (label, got, want) in pairs {
        let c = feedloop_core::neural::cosine(got, want);
        if c < worst.0 {
            worst = (c, label);
        }
    }
    println!("worst cosine {:.7} ({})", worst.0, worst.1);
    assert!(
        worst.0 >= min,
        "worst cosine {:.7} for {}",
        worst.0,
        worst.1
    );
}
