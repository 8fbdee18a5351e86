use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use feedloop_core::neural::{EncodeError, SentenceEncoder};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::model_dir::check_model_dir;

/// sentence-transformers' `max_seq_length` for this model (the tokenizer file says 128).
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass at most. Within one `encode` call texts are sorted by length
/// and cut into chunks of similar length, so a chunk pads only to its own longest text.
pub const CHUNK: usize = 32;

/// Cut `order` (indices sorted by token length) into forward passes of at most [`CHUNK`]
/// texts whose longest is at most 5/4 of the shortest plus 8 tokens. Padding is paid
/// in full: a 250-token review in one pass with its 15-token sentences would make
/// every sentence cost as much as the review (measured: 5x slower analysis).
pub fn length_buckets(order: &[usize], len: impl Fn(usize) -> usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (k, &i) in order.iter().enumerate() {
        let first = len(order[start]);
        if k > start && (k - start == CHUNK || len(i) > first * 5 / 4 + 8) {
            out.push(&order[start..k]);
            start = k;
        }
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Dir(#[from] crate::ModelDirError),
    #[error("reading {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is not a BERT config: {source}")]
    Config {
        file: String,
        source: serde_json::Error,
    },
    #[error("loading the tokenizer {file}: {reason}")]
    Tokenizer { file: String, reason: String },
    #[error("loading the weights {file}: {source}")]
    Weights {
        file: String,
        source: candle_core::Error,
    },
}

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
}

impl MiniLm {
    /// Load a BERT sentence encoder from a Hugging Face folder.
    pub fn load(dir: &Path) -> Result<MiniLm, LoadError> {
        check_model_dir(dir)?;
        let path = |f: &str| dir.join(f);
        let shown = |f: &str| path(f).display().to_string();
        let raw =
            std::fs::read_to_string(path("config.json")).map_err(|source| LoadError::Read {
                file: shown("config.json"),
                source,
            })?;
        let config: Config = serde_json::from_str(&raw).map_err(|source| LoadError::Config {
            file: shown("config.json"),
            source,
        })?;
        let dim = config.hidden_size;
        let mut tokenizer =
            Tokenizer::from_file(path("tokenizer.json")).map_err(|e| LoadError::Tokenizer {
                file: shown("tokenizer.json"),
                reason: e.to_string(),
            })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| LoadError::Tokenizer {
                file: shown("tokenizer.json"),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and feedloop never writes it;
        // mapping instead of reading keeps the cold start to page faults on first use.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[path("model.safetensors")], DType::F32, &device)
        }
        .map_err(|source| LoadError::Weights {
            file: shown("model.safetensors"),
            source,
        })?;
        let model = BertModel::load(vb, &config).map_err(|source| LoadError::Weights {
            file: shown("model.safetensors"),
            source,
        })?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
            dim,
        })
    }

    fn forward(&self, ids: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let len = ids.iter().map(|i| i.len()).max().unwrap_or(0);
        let (mut flat, mut mask) = (Vec::with_capacity(ids.len() * len), Vec::new());
        for i in ids {
            flat.extend_from_slice(i);
            flat.extend(std::iter::repeat_n(0u32, len - i.len()));
            mask.extend(std::iter::repeat_n(1u32, i.len()));
            mask.extend(std::iter::repeat_n(0u32, len - i.len()));
        }
        let shape = (ids.len(), len);
        let input = Tensor::from_vec(flat, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = input.zeros_like()?;
        let hidden = self.model.forward(&input, &types, Some(&mask))?;
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_similar_lengths_together_and_cover_every_text_once() {
        let lens = [3usize, 4, 5, 12, 14, 15, 250, 251];
        let order: Vec<usize> = (0..lens.len()).collect();
        let b = length_buckets(&order, |i| lens[i]);
        assert_eq!(b, vec![&[0, 1, 2][..], &[3, 4, 5][..], &[6, 7][..]]);
        let many: Vec<usize> = (0..70).collect();
        let b = length_buckets(&many, |_| 10);
        assert_eq!(b.iter().map(|c| c.len()).collect::<Vec<_>>(), [32, 32, 6]);
    }
}

impl SentenceEncoder for MiniLm {
    fn dim(&self) -> usize {
        self.dim
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EncodeError(format!("tokenizing: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| (ids[i].len(), i));
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in length_buckets(&order, |i| ids[i].len()) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let vecs = self
                .forward(&batch)
                .map_err(|e| EncodeError(format!("forward pass: {e}")))?;
            for (&i, v) in chunk.iter().zip(vecs) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}
