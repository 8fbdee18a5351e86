//! all-MiniLM-L6-v2 as sentence-transformers runs it (WordPiece, 256-token truncation,
//! mean pooling over the attention mask, L2 normalisation) in pure Rust: candle reads
//! the weights, gemm multiplies; no libtorch, no network, weights read from a folder in
//! the Hugging Face layout.

mod encoder;
mod kernels;
pub mod model_dir;
#[cfg(feature = "train")]
pub mod train;

pub use encoder::{LoadError, MiniLm, ENCODER_REVISION};
pub use model_dir::{resolve_model_dir, ModelDirError, DEFAULT_MODEL_DIR, MODEL_DIR_ENV};

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

/// The analyzer for `mode`, with the encoder from `model_dir` when the mode needs one:
/// how a function builds it at cold start, and the CLI's local drain as the function
/// would. A neural mode without a folder is refused by [`Analyzer::build`].
///
/// [`Analyzer::build`]: feedloop_core::analysis::Analyzer::build
pub fn analyzer(
    mode: feedloop_core::sentiment::Mode,
    taxonomy: feedloop_core::themes::Taxonomy,
    model_dir: Option<&std::path::Path>,
) -> Result<feedloop_core::analysis::Analyzer, BuildError> {
    let encoder = match model_dir.filter(|_| mode.needs_encoder()) {
        Some(dir) => {
            let model = MiniLm::load(dir).map_err(|source| BuildError::Load {
                dir: dir.display().to_string(),
                source,
            })?;
            Some(std::sync::Arc::new(model) as feedloop_core::neural::SharedEncoder)
        }
        None => None,
    };
    Ok(feedloop_core::analysis::Analyzer::build(
        mode, taxonomy, encoder,
    )?)
}
