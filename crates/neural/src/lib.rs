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
