//! The sentence encoders in pure Rust (no libtorch, no network): all-MiniLM-L6-v2 for
//! English from a Hugging Face folder, multilingual-e5-small for other languages from
//! its 4-bit file. Both run the way sentence-transformers runs them (256-token
//! truncation, mean pooling, L2 normalisation); gemm multiplies.

pub mod e5;
mod encoder;
mod hf;
mod kernels;
pub mod model_dir;
pub mod select;
mod tokens;
#[cfg(feature = "train")]
pub mod train;
mod unigram;

pub use encoder::{BertEncoder, LoadError, ENCODER_REVISION};
pub use model_dir::{
    resolve_model_dir, resolve_multilingual_dir, ModelDirError, DEFAULT_MODEL_DIR,
    DEFAULT_MULTILINGUAL_DIR, MODEL_DIR_ENV, MULTILINGUAL_DIR_ENV,
};

/// Why an analyzer could not be built: the encoder would not load, or the analysis
/// refused it.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("loading the sentence encoder from {dir}: {source}")]
    Load {
        dir: String,
        #[source]
        source: LoadError,
    },
    #[error(transparent)]
    Analyzer(#[from] feedloop_core::analysis::AnalyzerError),
}

/// Where the two encoders are: English (a Hugging Face folder) and, optionally, the
/// multilingual one (a folder holding [`e5::E5_FILE`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelDirs<'a> {
    pub english: Option<&'a std::path::Path>,
    pub multilingual: Option<&'a std::path::Path>,
}

/// The analyzer for `mode`, with the encoders from `dirs` when the mode needs one:
/// how a function builds it at cold start, the CLI and the local drain as the function
/// would. A neural mode without the English folder is refused by [`Analyzer::build`];
/// without the multilingual one, other languages are refused per text.
///
/// [`Analyzer::build`]: feedloop_core::analysis::Analyzer::build
pub fn analyzer(
    mode: feedloop_core::sentiment::Mode,
    taxonomy: feedloop_core::themes::Taxonomy,
    dirs: ModelDirs,
) -> Result<feedloop_core::analysis::Analyzer, BuildError> {
    let model_dir = dirs.english;
    let encoder = match model_dir.filter(|_| mode.needs_encoder()) {
        Some(dir) => {
            let model = BertEncoder::load(dir).map_err(|source| BuildError::Load {
                dir: dir.display().to_string(),
                source,
            })?;
            Some(std::sync::Arc::new(model) as feedloop_core::neural::SharedEncoder)
        }
        None => None,
    };
    let analyzer = feedloop_core::analysis::Analyzer::build(mode, taxonomy, encoder)?;
    match dirs.multilingual.filter(|_| mode.needs_encoder()) {
        Some(dir) => {
            let model = BertEncoder::load_e5(dir).map_err(|source| BuildError::Load {
                dir: dir.display().to_string(),
                source,
            })?;
            Ok(analyzer.with_multilingual(std::sync::Arc::new(model))?)
        }
        None => Ok(analyzer),
    }
}
