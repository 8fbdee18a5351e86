//! XLM-R's SentencePiece unigram tokenizer, rebuilt from the pieces, their scores and
//! the per-character normalisation table the E5S1 file carries: normalise, collapse
//! runs of spaces, metaspace (`▁`) with one prepended, then the most likely split
//! (Viterbi over piece log-probabilities). Offsets point into the caller's text.

use rustc_hash::FxHashMap;

use crate::tokens::Tokens;

/// SentencePiece's word-boundary marker.
const META: char = '\u{2581}';

/// What the file says about the vocabulary.
pub struct Vocab {
    pub pieces: Vec<Vec<u8>>,
    pub scores: Vec<f32>,
    pub bos: u32,
    pub eos: u32,
    pub unk: u32,
    /// Characters the normaliser replaces (with zero or more characters).
    pub normalise: Vec<(char, Vec<char>)>,
}

pub struct Unigram {
    pieces: FxHashMap<Vec<u8>, u32>,
    scores: Vec<f32>,
    bos: u32,
    eos: u32,
    unk: u32,
    /// An unknown character costs more than any piece, so it is the last resort.
    unk_score: f32,
    max_piece_bytes: usize,
    normalise: FxHashMap<char, Vec<char>>,
}

/// One character of the normalised text and the bytes of `prefix + text` it came from.
#[derive(Clone, Copy)]
struct NormChar {
    c: char,
    start: usize,
    end: usize,
}

impl Unigram {
    pub fn new(v: Vocab) -> Unigram {
        let min = v.scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max_piece_bytes = v.pieces.iter().map(Vec::len).max().unwrap_or(1);
        let pieces = v
            .pieces
            .into_iter()
            .enumerate()
            .filter(|(i, p)| !p.is_empty() && *i as u32 != v.unk)
            .map(|(i, p)| (p, i as u32))
            .collect();
        Unigram {
            pieces,
            scores: v.scores,
            bos: v.bos,
            eos: v.eos,
            unk: v.unk,
            unk_score: if min.is_finite() { min - 10.0 } else { -100.0 },
            max_piece_bytes,
            normalise: v.normalise.into_iter().collect(),
        }
    }

    /// `<s> prefix+text </s>`, at most `max_tokens` ids in all (the end of the text is
    /// dropped, as a truncating tokenizer would). The prefix's tokens are marked special
    /// so a sentence never pools them; offsets are into `text`.
    pub fn encode(&self, prefix: &str, text: &str, max_tokens: usize) -> Tokens {
        let chars = self.normalised(prefix, text);
        let split = self.viterbi(&chars);
        let room = max_tokens.saturating_sub(2);
        let mut t = Tokens::with_capacity(split.len().min(room) + 2);
        t.push(self.bos, (0, 0), true);
        for (id, range) in split.into_iter().take(room) {
            let span = &chars[range];
            // A leading `▁` is the space before the word, not part of it.
            let first = span.iter().position(|n| n.c != META);
            let in_prefix = span.last().is_some_and(|n| n.end <= prefix.len());
            let offsets = match first {
                Some(f) if !in_prefix => {
                    let start = span[f].start.max(prefix.len()) - prefix.len();
                    let end = span.last().map_or(start, |n| n.end - prefix.len());
                    (start, end.max(start))
                }
                _ => (0, 0),
            };
            t.push(id, offsets, in_prefix);
        }
        t.push(self.eos, (0, 0), true);
        t
    }

    fn normalised(&self, prefix: &str, text: &str) -> Vec<NormChar> {
        let mut out: Vec<NormChar> = Vec::with_capacity(prefix.len() + text.len() + 1);
        let chars = prefix
            .char_indices()
            .chain(text.char_indices().map(|(i, c)| (prefix.len() + i, c)));
        for (start, c) in chars {
            let end = start + c.len_utf8();
            let mut push = |c: char| {
                // Runs of spaces collapse into their first.
                if c == ' ' && out.last().is_some_and(|n| n.c == META) {
                    return;
                }
                out.push(NormChar {
                    c: if c == ' ' { META } else { c },
                    start,
                    end,
                });
            };
            match self.normalise.get(&c) {
                Some(replacement) => replacement.iter().for_each(|&r| push(r)),
                None => push(c),
            }
        }
        if out.first().is_none_or(|n| n.c != META) {
            out.insert(
                0,
                NormChar {
                    c: META,
                    start: 0,
                    end: 0,
                },
            );
        }
        out
    }

    /// The most likely split of `chars` into pieces: `(id, char range)` in order.
    fn viterbi(&self, chars: &[NormChar]) -> Vec<(u32, std::ops::Range<usize>)> {
        let n = chars.len();
        let mut bytes: Vec<u8> = Vec::with_capacity(n * 3);
        let mut starts: Vec<usize> = Vec::with_capacity(n + 1);
        let mut buf = [0u8; 4];
        for nc in chars {
            starts.push(bytes.len());
            bytes.extend_from_slice(nc.c.encode_utf8(&mut buf).as_bytes());
        }
        starts.push(bytes.len());
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        // (piece id or unk, start char) of the best split ending at each char.
        let mut back = vec![(self.unk, 0usize); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let len = starts[e] - starts[i];
                if len > self.max_piece_bytes {
                    break;
                }
                if let Some(&id) = self.pieces.get(&bytes[starts[i]..starts[e]]) {
                    let s = best[i] + self.scores[id as usize];
                    if s > best[e] {
                        best[e] = s;
                        back[e] = (id, i);
                    }
                }
            }
            let s = best[i] + self.unk_score;
            if s > best[i + 1] {
                best[i + 1] = s;
                back[i + 1] = (self.unk, i);
            }
        }
        let mut out = Vec::new();
        let mut e = n;
        while e > 0 {
            let (id, s) = back[e];
            out.push((id, s..e));
            e = s;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Unigram {
        let pieces = [
            "<s>", "<pad>", "</s>", "<unk>", "▁", "▁hal", "lo", "▁hallo", "▁w", "elt", "a",
        ];
        let scores = [0.0, 0.0, 0.0, 0.0, -3.0, -6.0, -5.0, -4.0, -5.0, -6.0, -2.0];
        Unigram::new(Vocab {
            pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
            scores: scores.to_vec(),
            bos: 0,
            eos: 2,
            unk: 3,
            normalise: vec![('\u{200b}', vec![]), ('Ä', vec!['a']), ('\t', vec![' '])],
        })
    }

    #[test]
    fn the_likeliest_split_wins_and_offsets_skip_the_space() {
        let t = toy().encode("", "hallo  welt", 16);
        assert_eq!(t.ids, [0, 7, 8, 9, 2]);
        assert_eq!(t.offsets, [(0, 0), (0, 5), (7, 8), (8, 11), (0, 0)]);
        assert_eq!(t.special, [true, false, false, false, true]);
    }

    #[test]
    fn normalisation_deletes_and_replaces_and_unknowns_are_one_char_each() {
        let t = toy().encode("", "Ä\u{200b}\tz", 16);
        // ▁ a ▁ z: "▁" then "a", "▁" (from the tab), z unknown
        assert_eq!(t.ids, [0, 4, 10, 4, 3, 2]);
        assert_eq!(t.offsets[2], (0, 2));
        assert_eq!(t.offsets[4], (6, 7));
    }

    #[test]
    fn the_prefix_is_special_and_truncation_keeps_the_end_marker() {
        let t = toy().encode("a ", "hallo", 16);
        assert_eq!(t.ids, [0, 4, 10, 7, 2]);
        assert_eq!(t.special, [true, true, true, false, true]);
        assert_eq!(t.offsets[3], (0, 5));
        let cut = toy().encode("", &"a".repeat(10_000), 8);
        assert_eq!(cut.ids.len(), 8);
        assert_eq!(cut.ids.last(), Some(&2));
    }
}
