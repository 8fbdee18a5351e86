use std::path::PathBuf;

use feedloop_neural::MiniLm;

/// The model `make model` installs (or FEEDLOOP_MODEL_DIR). `make test` fetches it
/// first, so a missing model is a failure with instructions, not a skip.
pub fn model_dir() -> PathBuf {
    std::env::var_os("FEEDLOOP_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
        })
}

#[allow(dead_code)]
pub fn encoder() -> MiniLm {
    MiniLm::load(&model_dir()).unwrap_or_else(|e| panic!("{e}"))
}
