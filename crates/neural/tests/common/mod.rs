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
