//! all-MiniLM-L6-v2 as core's `SentenceEncoder`: tokenise, run the BERT forward pass
//! over the safetensors weights, mean-pool texts and their sentences from one pass.
//!
//! Long because the whole forward pass (embeddings, attention, pooling) is kept in one
//! place, in the order the reference implementation runs it, so parity can be read off.

use std::ops::Range;
use std::path::Path;

use feedloop_core::neural::{EncodeError, PartVectors, SentenceEncoder};
use rayon::prelude::*;
use safetensors::tensor::{Dtype, Metadata, SafeTensors};
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use crate::kernels::{dense, gelu_erf, layer_norm, mean_pool, self_attention, Dense};
use crate::model_dir::check_model_dir;

/// Changes whenever the forward pass's arithmetic does (even in the last bits), so
/// caches of embeddings made by older code are not mistaken for this code's.
pub const ENCODER_REVISION: &str = "packed-gemm-1";

/// sentence-transformers' `max_seq_length` for this model (the tokenizer file says 128).
pub const MAX_TOKENS: usize = 256;
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

/// The part of a Hugging Face BERT `config.json` the encoder reads.
#[derive(Debug, serde::Deserialize)]
struct Config {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".to_owned()
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked into one 3·d × d matrix: one matrix product per layer.
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// A BERT sentence encoder (all-MiniLM-L6-v2 or any folder in its layout) run the way
/// sentence-transformers runs it: WordPiece, 256-token truncation, mean pooling, L2 norm.
///
/// candle loads the weights; the forward pass is written here over packed token rows
/// (gemm for the matrix products) because candle's BERT pads every text of a batch to
/// the longest and runs each element-wise step as its own pass over memory: on one
/// thread that was 3x slower than the arithmetic allows (README, "Speed").
pub struct MiniLm {
    tokenizer: Tokenizer,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    dim: usize,
    heads: usize,
    eps: f32,
}

/// The mapped weights file and its parsed header: each tensor is copied out as f32.
struct Weights {
    map: memmap2::Mmap,
    header_len: usize,
    meta: Metadata,
    prefix: &'static str,
    file: String,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let full = format!("{}{name}", self.prefix);
        let err = |reason: String| LoadError::Weights {
            file: self.file.clone(),
            reason,
        };
        let t = self
            .meta
            .info(&full)
            .ok_or_else(|| err(format!("{full}: no such tensor")))?;
        // A 0 in `shape` accepts any size along that axis.
        let fits = t.shape.len() == shape.len()
            && t.shape
                .iter()
                .zip(shape)
                .all(|(&got, &want)| want == 0 || got == want);
        if !fits {
            return Err(err(format!(
                "{full} has shape {:?}, the config says {shape:?}",
                t.shape
            )));
        }
        let (start, end) = t.data_offsets;
        let bytes = self
            .map
            .get(self.header_len + start..self.header_len + end)
            .ok_or_else(|| err(format!("{full}: data outside the file")))?;
        let n: usize = t.shape.iter().product();
        let values: Vec<f32> = match t.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(err(format!(
                    "{full} is {other:?}; F32, F16 and BF16 weights are supported"
                )))
            }
        };
        if values.len() != n {
            return Err(err(format!(
                "{full}: {} values for shape {:?}",
                values.len(),
                t.shape
            )));
        }
        Ok(values)
    }

    fn dense(&self, name: &str, n_out: usize, n_in: usize) -> Result<Dense, LoadError> {
        Ok(Dense {
            w: self.get(&format!("{name}.weight"), &[n_out, n_in])?,
            b: self.get(&format!("{name}.bias"), &[n_out])?,
            n_in,
            n_out,
        })
    }

    fn norm(&self, name: &str, d: usize) -> Result<Norm, LoadError> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"), &[d])?,
            beta: self.get(&format!("{name}.bias"), &[d])?,
        })
    }
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
        let config_err = |reason: String| LoadError::Config {
            file: shown("config.json"),
            reason,
        };
        let c: Config = serde_json::from_str(&raw).map_err(|e| config_err(e.to_string()))?;
        if c.hidden_act != "gelu" {
            return Err(config_err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                c.hidden_act
            )));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(config_err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size, c.num_attention_heads
            )));
        }
        let mut tokenizer =
            Tokenizer::from_file(path("tokenizer.json")).map_err(|e| LoadError::Tokenizer {
                file: shown("tokenizer.json"),
                reason: e.to_string(),
            })?;
        let max_tokens = MAX_TOKENS.min(c.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| LoadError::Tokenizer {
                file: shown("tokenizer.json"),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(None);

        let file = shown("model.safetensors");
        let weights_err = |reason: String| LoadError::Weights {
            file: file.clone(),
            reason,
        };
        let handle = std::fs::File::open(path("model.safetensors"))
            .map_err(|e| weights_err(e.to_string()))?;
        // SAFETY: the weights file is mapped read-only and feedloop never writes it;
        // every tensor is copied out before `load` returns.
        let map = unsafe { memmap2::Mmap::map(&handle) }.map_err(|e| weights_err(e.to_string()))?;
        let (header, meta) =
            SafeTensors::read_metadata(&map).map_err(|e| weights_err(e.to_string()))?;
        // A fine-tuned BertFor* checkpoint keeps the encoder under `bert.`.
        let prefix = if meta.info("embeddings.word_embeddings.weight").is_some() {
            ""
        } else {
            "bert."
        };
        let w = Weights {
            map,
            // The 8-byte length, then the JSON header, then the data.
            header_len: 8 + header,
            meta,
            prefix,
            file,
        };
        let d = c.hidden_size;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let [q, k, v] = ["query", "key", "value"]
                .map(|n| w.dense(&format!("{p}.attention.self.{n}"), d, d));
            let (q, k, v) = (q?, k?, v?);
            layers.push(Layer {
                qkv: Dense {
                    w: [q.w, k.w, v.w].concat(),
                    b: [q.b, k.b, v.b].concat(),
                    n_in: d,
                    n_out: 3 * d,
                },
                attn_out: w.dense(&format!("{p}.attention.output.dense"), d, d)?,
                attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), d)?,
                up: w.dense(&format!("{p}.intermediate.dense"), c.intermediate_size, d)?,
                down: w.dense(&format!("{p}.output.dense"), d, c.intermediate_size)?,
                out_norm: w.norm(&format!("{p}.output.LayerNorm"), d)?,
            });
        }
        Ok(MiniLm {
            // The file may pad its vocabulary beyond the tokenizer's: any row count.
            word: w.get("embeddings.word_embeddings.weight", &[0, d])?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, d],
            )?,
            // Every text is segment 0: its row is all that is ever added.
            token_type: w.get("embeddings.token_type_embeddings.weight", &[0, d])?[..d].to_vec(),
            embed_norm: w.norm("embeddings.LayerNorm", d)?,
            layers,
            tokenizer,
            dim: d,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps as f32,
        })
    }

    /// The last layer's token states for texts packed back to back: `rows[i]` is the
    /// range of text `i`'s rows in the returned `tokens × dim` matrix.
    fn forward(&self, ids: &[&[u32]]) -> Result<(Vec<f32>, Vec<Range<usize>>), EncodeError> {
        let d = self.dim;
        let vocab = self.word.len() / d;
        let mut rows = Vec::with_capacity(ids.len());
        let mut x = Vec::with_capacity(ids.iter().map(|i| i.len()).sum::<usize>() * d);
        for seq in ids {
            let start = x.len() / d;
            for (p, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(EncodeError(format!(
                        "token id {id} is outside the model's vocabulary of {vocab}"
                    )));
                }
                let (w, pos) = (&self.word[id * d..][..d], &self.position[p * d..][..d]);
                x.extend(
                    w.iter()
                        .zip(pos)
                        .zip(&self.token_type)
                        .map(|((a, b), c)| a + b + c),
                );
            }
            rows.push(start..x.len() / d);
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

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, EncodeError> {
        self.tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EncodeError(format!("tokenizing: {e}")))
    }

    /// Cut texts (in order) into forward passes of at most [`PASS_TOKENS`] tokens and run
    /// them, in parallel when rayon has more than one thread. Each text's numbers do not
    /// depend on its neighbours in a pass, so the split changes nothing but speed.
    fn run<T: Send>(
        &self,
        encodings: &[Encoding],
        each: impl Fn(usize, &[f32]) -> T + Sync,
    ) -> Result<Vec<T>, EncodeError> {
        let mut passes: Vec<Range<usize>> = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, e) in encodings.iter().enumerate() {
            let len = e.get_ids().len();
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
                .map(|e| e.get_ids())
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

impl SentenceEncoder for MiniLm {
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
    /// truncation point) is encoded on its own.
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
            let offsets = encodings[i].get_offsets();
            let special = encodings[i].get_special_tokens_mask();
            let whole = mean_pool(states, d, |_| true).unwrap_or_else(|| vec![0.0; d]);
            let of_parts: Vec<Option<Vec<f32>>> = parts
                .get(i)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            mean_pool(states, d, |t| {
                                special[t] == 0
                                    && offsets[t].0 >= p.start
                                    && offsets[t].1 <= p.end
                                    && offsets[t].1 > offsets[t].0
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            (whole, of_parts)
        })?;
        let mut missing: Vec<(usize, usize)> = Vec::new();
        for (i, (_, ps)) in pooled.iter().enumerate() {
            for (j, p) in ps.iter().enumerate() {
                if p.is_none() {
                    missing.push((i, j));
                }
            }
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
            .map(|(whole, ps)| PartVectors {
                whole,
                parts: ps.into_iter().map(|p| p.unwrap_or_default()).collect(),
            })
            .collect())
    }
}
