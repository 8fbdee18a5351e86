//! Loading a BERT encoder from a Hugging Face folder (`config.json`, `tokenizer.json`,
//! `model.safetensors`): all-MiniLM-L6-v2 as `make model` fetches it, or a user's own.

use std::path::Path;

use safetensors::tensor::{Dtype, Metadata, SafeTensors};
use tokenizers::{TruncationParams, TruncationStrategy};

use crate::encoder::{BertEncoder, Layer, Norm, TextTokenizer, WordTable, MAX_TOKENS};
use crate::kernels::Dense;
use crate::model_dir::check_model_dir;
use crate::LoadError;

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

/// Load a BERT sentence encoder from a Hugging Face folder.
pub fn load(dir: &Path) -> Result<BertEncoder, LoadError> {
    check_model_dir(dir)?;
    let path = |f: &str| dir.join(f);
    let shown = |f: &str| path(f).display().to_string();
    let raw = std::fs::read_to_string(path("config.json")).map_err(|source| LoadError::Read {
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
    let mut tokenizer = tokenizers::Tokenizer::from_file(path("tokenizer.json")).map_err(|e| {
        LoadError::Tokenizer {
            file: shown("tokenizer.json"),
            reason: e.to_string(),
        }
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
    let handle =
        std::fs::File::open(path("model.safetensors")).map_err(|e| weights_err(e.to_string()))?;
    // SAFETY: the weights file is mapped read-only and feedloop never writes it;
    // every tensor is copied out before `load` returns.
    #[allow(unsafe_code)]
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
        let [q, k, v] =
            ["query", "key", "value"].map(|n| w.dense(&format!("{p}.attention.self.{n}"), d, d));
        layers.push(Layer {
            qkv: Dense::stacked([q?, k?, v?]),
            attn_out: w.dense(&format!("{p}.attention.output.dense"), d, d)?,
            attn_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), d)?,
            up: w.dense(&format!("{p}.intermediate.dense"), c.intermediate_size, d)?,
            down: w.dense(&format!("{p}.output.dense"), d, c.intermediate_size)?,
            out_norm: w.norm(&format!("{p}.output.LayerNorm"), d)?,
        });
    }
    Ok(BertEncoder {
        // The file may pad its vocabulary beyond the tokenizer's: any row count.
        word: WordTable::F32(w.get("embeddings.word_embeddings.weight", &[0, d])?),
        position: w.get(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, d],
        )?,
        // Every text is segment 0: its row is all that is ever added.
        token_type: w.get("embeddings.token_type_embeddings.weight", &[0, d])?[..d].to_vec(),
        embed_norm: w.norm("embeddings.LayerNorm", d)?,
        layers,
        tokenizer: TextTokenizer::WordPiece(Box::new(tokenizer)),
        max_tokens,
        dim: d,
        heads: c.num_attention_heads,
        eps: c.layer_norm_eps as f32,
    })
}
