//! A tokenised text as the forward pass and the pooling read it, whichever tokenizer
//! made it.

pub struct Tokens {
    pub ids: Vec<u32>,
    /// Byte range of each token in the caller's text; empty for special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// Tokens a sentence never pools: `<s>`, `</s>`, `[CLS]`, a model's prompt prefix.
    pub special: Vec<bool>,
}

impl Tokens {
    pub fn with_capacity(n: usize) -> Tokens {
        Tokens {
            ids: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
            special: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, id: u32, offsets: (usize, usize), special: bool) {
        self.ids.push(id);
        self.offsets.push(offsets);
        self.special.push(special);
    }

    pub fn from_encoding(e: &tokenizers::Encoding) -> Tokens {
        Tokens {
            ids: e.get_ids().to_vec(),
            offsets: e.get_offsets().to_vec(),
            special: e
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m != 0)
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether token `t` lies inside `part` (a byte range of the text).
    pub fn within(&self, t: usize, part: &std::ops::Range<usize>) -> bool {
        let (s, e) = self.offsets[t];
        !self.special[t] && s >= part.start && e <= part.end && e > s
    }
}
