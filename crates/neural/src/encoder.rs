//! A BERT sentence encoder as core's `SentenceEncoder`: tokenise, run the forward pass
//! over packed token rows, mean-pool texts and their sentences from one pass. The same
//! pass serves all-MiniLM-L6-v2 (WordPiece, Hugging Face folder, `hf.rs`) and
//! multilingual-e5-small (unigram, 4-bit file, `e5.rs`).

use std::ops::Range;

use feedloop_core::neural::{EncodeError, PartVectors, SentenceEncoder};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::kernels::{dense, gelu_erf, layer_norm, mean_pool, self_attention, Dense};
use crate::tokens::Tokens;
use crate::unigram::Unigram;

/// Changes whenever the forward pass's arithmetic does (even in the last bits), so
/// caches of embeddings made by older code are not mistaken for this code's.
pub const ENCODER_REVISION: &str = "packed-gemm-1";

/// Sentences past the window encoded alone, per text; later ones get no vector.
pub use feedloop_core::neural::MAX_SENTENCES_ALONE as MAX_PARTS_ALONE;
/// sentence-transformers' `max_seq_length` for MiniLM (the tokenizer file says 128);
/// E5 is cut at the same window so a long text costs the same in either tier.
pub use feedloop_core::neural::MAX_TEXT_TOKENS as MAX_TOKENS;
/// Tokens per forward pass at most. Texts are packed back to back (no padding, each
/// attends only to itself), so a pass is as big as the matrix kernels like it and no
/// short text pays for a long one.
pub const PASS_TOKENS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Dir(#[from] crate::ModelDirError),
    #[error("reading {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is not a BERT config: {reason}")]
    Config { file: String, reason: String },
    #[error("loading the tokenizer {file}: {reason}")]
    Tokenizer { file: String, reason: String },
    #[error("loading the weights {file}: {reason}")]
    Weights { file: String, reason: String },
}

pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

pub(crate) struct Layer {
    /// Query, key and value stacked into one 3·d × d matrix: one matrix product per layer.
    pub qkv: Dense,
    pub attn_out: Dense,
    pub attn_norm: Norm,
    pub up: Dense,
    pub down: Dense,
    pub out_norm: Norm,
}

pub(crate) enum TextTokenizer {
    /// Hugging Face's tokenizer from `tokenizer.json` (truncation set at load).
    WordPiece(Box<Tokenizer>),
    /// SentencePiece unigram; `prefix` goes before every text (E5's role prompt).
    Unigram {
        model: Box<Unigram>,
        prefix: &'static str,
    },
}

/// The word embeddings: f32 rows, or 4-bit rows left in the mapped file and expanded
/// one token at a time (E5's 250k-row table would be 384 MB as f32).
pub(crate) enum WordTable {
    F32(Vec<f32>),
    Q4 {
        map: memmap2::Mmap,
        offset: usize,
        rows: usize,
    },
}

impl WordTable {
    fn rows(&self, d: usize) -> usize {
        match self {
            WordTable::F32(w) => w.len() / d,
            WordTable::Q4 { rows, .. } => *rows,
        }
    }

    /// Row `id` into `out` (`d` values; `id` checked against [`WordTable::rows`]).
    fn row(&self, id: usize, out: &mut [f32]) {
        let d = out.len();
        match self {
            WordTable::F32(w) => out.copy_from_slice(&w[id * d..][..d]),
            WordTable::Q4 { map, offset, .. } => {
                let n = crate::e5::q4_row_bytes(d);
                crate::e5::dequantise_q4(&map[offset + id * n..][..n], out);
            }
        }
    }
}

/// A BERT sentence encoder run the way sentence-transformers runs it: 256-token
/// truncation, mean pooling over every token, L2 norm.
///
/// The forward pass is written here over packed token rows (gemm for the matrix
/// products) because candle's BERT pads every text of a batch to the longest and runs
/// each element-wise step as its own pass over memory: on one thread that was 3x slower
/// than the arithmetic allows (README, "Speed").
pub struct BertEncoder {
    pub(crate) tokenizer: TextTokenizer,
    pub(crate) word: WordTable,
    pub(crate) position: Vec<f32>,
    pub(crate) token_type: Vec<f32>,
    pub(crate) embed_norm: Norm,
    pub(crate) layers: Vec<Layer>,
    pub(crate) dim: usize,
    pub(crate) heads: usize,
    pub(crate) eps: f32,
    pub(crate) max_tokens: usize,
}

impl BertEncoder {
    /// all-MiniLM-L6-v2, or any BERT folder in the Hugging Face layout.
    pub fn load(dir: &std::path::Path) -> Result<BertEncoder, LoadError> {
        crate::hf::load(dir)
    }

    /// multilingual-e5-small from an E5S1 file (or the folder holding it).
    pub fn load_e5(path: &std::path::Path) -> Result<BertEncoder, LoadError> {
        crate::e5::load(path)
    }

    /// The last layer's token states for texts packed back to back: `rows[i]` is the
    /// range of text `i`'s rows in the returned `tokens × dim` matrix.
    fn forward(&self, ids: &[&[u32]]) -> Result<(Vec<f32>, Vec<Range<usize>>), EncodeError> {
        let d = self.dim;
        let vocab = self.word.rows(d);
        let max_positions = self.position.len() / d;
        let mut rows = Vec::with_capacity(ids.len());
        let mut x = vec![0.0f32; ids.iter().map(|i| i.len()).sum::<usize>() * d];
        let mut at = 0;
        for seq in ids {
            if seq.len() > max_positions {
                return Err(EncodeError(format!(
                    "{} tokens, more than the model's {max_positions} positions",
                    seq.len()
                )));
            }
            let start = at;
            for (p, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(EncodeError(format!(
                        "token id {id} is outside the model's vocabulary of {vocab}"
                    )));
                }
                let row = &mut x[at * d..][..d];
                self.word.row(id, row);
                let pos = &self.position[p * d..][..d];
                row.iter_mut()
                    .zip(pos)
                    .zip(&self.token_type)
                    .for_each(|((r, b), c)| *r += b + c);
                at += 1;
            }
            rows.push(start..at);
        }
        let n = x.len() / d;
        layer_norm(
            &mut x,
            d,
            &self.embed_norm.gamma,
            &self.embed_norm.beta,
            self.eps,
        );
        for layer in &self.layers {
            let qkv = dense(&x, n, &layer.qkv, None);
            let ctx = self_attention(&qkv, &rows, d, self.heads);
            let mut h = dense(&ctx, n, &layer.attn_out, Some(&x));
            layer_norm(
                &mut h,
                d,
                &layer.attn_norm.gamma,
                &layer.attn_norm.beta,
                self.eps,
            );
            let mut up = dense(&h, n, &layer.up, None);
            gelu_erf(&mut up);
            x = dense(&up, n, &layer.down, Some(&h));
            layer_norm(
                &mut x,
                d,
                &layer.out_norm.gamma,
                &layer.out_norm.beta,
                self.eps,
            );
        }
        Ok((x, rows))
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokens>, EncodeError> {
        match &self.tokenizer {
            TextTokenizer::WordPiece(t) => Ok(t
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| EncodeError(format!("tokenizing: {e}")))?
                .iter()
                .map(Tokens::from_encoding)
                .collect()),
            TextTokenizer::Unigram { model, prefix } => Ok(texts
                .iter()
                .map(|t| model.encode(prefix, t, self.max_tokens))
                .collect()),
        }
    }

    /// How many tokens the model reads of `text` (specials included, after truncation).
    pub fn token_count(&self, text: &str) -> Result<usize, EncodeError> {
        Ok(self.tokenize(&[text])?.first().map_or(0, Tokens::len))
    }

    /// Cut texts (in order) into forward passes of at most [`PASS_TOKENS`] tokens and run
    /// them, in parallel when rayon has more than one thread. Each text's numbers do not
    /// depend on its neighbours in a pass, so the split changes nothing but speed.
    fn run<T: Send>(
        &self,
        encodings: &[Tokens],
        each: impl Fn(usize, &[f32]) -> T + Sync,
    ) -> Result<Vec<T>, EncodeError> {
        let mut passes: Vec<Range<usize>> = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, e) in encodings.iter().enumerate() {
            let len = e.len();
            if i > start && tokens + len > PASS_TOKENS {
                passes.push(start..i);
                (start, tokens) = (i, 0);
            }
            tokens += len;
        }
        if start < encodings.len() {
            passes.push(start..encodings.len());
        }
        let run_pass = |pass: &Range<usize>| -> Result<Vec<T>, EncodeError> {
            let ids: Vec<&[u32]> = encodings[pass.clone()]
                .iter()
                .map(|e| e.ids.as_slice())
                .collect();
            let (states, rows) = self.forward(&ids)?;
            Ok(rows
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    each(
                        pass.start + k,
                        &states[r.start * self.dim..r.end * self.dim],
                    )
                })
                .collect())
        };
        let done: Vec<Result<Vec<T>, EncodeError>> =
            if passes.len() > 1 && rayon::current_num_threads() > 1 {
                passes.par_iter().map(run_pass).collect()
            } else {
                passes.iter().map(run_pass).collect()
            };
        let mut out = Vec::with_capacity(encodings.len());
        for d in done {
            out.extend(d?);
        }
        Ok(out)
    }
}

impl SentenceEncoder for BertEncoder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenize(texts)?;
        self.run(&encodings, |_, states| {
            mean_pool(states, self.dim, |_| true).unwrap_or_else(|| vec![0.0; self.dim])
        })
    }

    /// A part's vector pools the text's own token states over the tokens inside the
    /// part (context from the rest of the text included), so a text and its sentences
    /// cost one pass. A part with no token inside the 256-token window (past the
    /// truncation point) is encoded on its own, up to [`MAX_PARTS_ALONE`] per text.
    fn encode_parts(
        &self,
        texts: &[&str],
        parts: &[Vec<Range<usize>>],
    ) -> Result<Vec<PartVectors>, EncodeError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenize(texts)?;
        let d = self.dim;
        let mut pooled = self.run(&encodings, |i, states| {
            let tokens = &encodings[i];
            let whole = mean_pool(states, d, |_| true).unwrap_or_else(|| vec![0.0; d]);
            let of_parts: Vec<Option<Vec<f32>>> = parts
                .get(i)
                .map(|ps| {
                    ps.iter()
                        .map(|p| mean_pool(states, d, |t| tokens.within(t, p)))
                        .collect()
                })
                .unwrap_or_default();
            (whole, of_parts)
        })?;
        // Bounded work per text whatever its shape (thousands of one-word lines): past
        // the cap a sentence outside the window gets no vector of its own.
        let mut missing: Vec<(usize, usize)> = Vec::new();
        for (i, (_, ps)) in pooled.iter().enumerate() {
            let past_window = ps.iter().enumerate().filter(|(_, p)| p.is_none());
            missing.extend(past_window.take(MAX_PARTS_ALONE).map(|(j, _)| (i, j)));
        }
        let alone: Vec<&str> = missing
            .iter()
            .map(|&(i, j)| texts[i].get(parts[i][j].clone()).unwrap_or(""))
            .collect();
        let alone = self.encode(&alone)?;
        for (&(i, j), v) in missing.iter().zip(alone) {
            pooled[i].1[j] = Some(v);
        }
        Ok(pooled
            .into_iter()
            .map(|(whole, parts)| PartVectors { whole, parts })
            .collect())
    }
}
