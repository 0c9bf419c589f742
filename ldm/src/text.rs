//! Prompt conditioning: a word-level tokenizer built from the training prompts (saved with
//! the checkpoint) and a small transformer encoder trained jointly with the denoiser.

use std::collections::BTreeMap;

use burn::config::Config;
use burn::module::Module;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
pub const UNK: u32 = 3;
const SPECIAL: [&str; 4] = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"];

/// Splits a prompt into pieces: lower-case words, compounds split at `_`/`-` (so
/// `solid_nodule` and `solid nodule` read the same), numbers as single digits (so an age
/// never seen in training is still made of known tokens).
pub fn pieces(prompt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<String>| {
        if !w.is_empty() {
            out.push(std::mem::take(w));
        }
    };
    for ch in prompt.chars().flat_map(|c| c.to_lowercase()) {
        if ch.is_ascii_digit() {
            flush(&mut word, &mut out);
            out.push(ch.to_string());
        } else if ch.is_alphanumeric() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Word-piece vocabulary. Unknown words map to the closest known word when the spelling
/// is near (edit distance ≤ 2, or a shared stem of ≥ 6 letters: "steatotic" → "steatosis"),
/// otherwise to `[UNK]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tokenizer {
    pub vocab: Vec<String>,
    pub max_len: usize,
}

impl Tokenizer {
    pub fn build<'a>(prompts: impl IntoIterator<Item = &'a str>, max_len: usize) -> Self {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for p in prompts {
            for w in pieces(p) {
                *counts.entry(w).or_default() += 1;
            }
        }
        for d in 0..10 {
            counts.entry(d.to_string()).or_default();
        }
        let vocab = SPECIAL
            .iter()
            .map(|s| s.to_string())
            .chain(counts.into_keys())
            .collect();
        Self { vocab, max_len }
    }

    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    fn lookup(&self, word: &str) -> u32 {
        if let Some(i) = self.vocab.iter().position(|v| v == word) {
            return i as u32;
        }
        let known = self.vocab.iter().enumerate().skip(SPECIAL.len());
        let best = known
            .map(|(i, v)| (edit_distance(word, v), i, common_prefix(word, v)))
            .min_by_key(|&(d, i, _)| (d, i));
        match best {
            Some((d, i, _)) if d <= 2 && word.len() > 3 => i as u32,
            _ => self
                .vocab
                .iter()
                .enumerate()
                .skip(SPECIAL.len())
                .map(|(i, v)| (common_prefix(word, v), i))
                .filter(|&(p, _)| p >= 6)
                .max_by_key(|&(p, i)| (p, usize::MAX - i))
                .map(|(_, i)| i as u32)
                .unwrap_or(UNK),
        }
    }

    /// `[BOS] tokens… [EOS]`, truncated to `max_len`, not padded.
    pub fn encode(&self, prompt: &str) -> Vec<u32> {
        let mut ids = vec![BOS];
        ids.extend(pieces(prompt).iter().map(|w| self.lookup(w)));
        ids.truncate(self.max_len - 1);
        ids.push(EOS);
        ids
    }

    /// Batch of token ids `[b, t]` padded with `[PAD]` and the padding mask (true = pad).
    pub fn batch<B: Backend>(&self, prompts: &[&str], device: &B::Device) -> TextBatch<B> {
        let enc: Vec<Vec<u32>> = prompts.iter().map(|p| self.encode(p)).collect();
        let t = enc.iter().map(Vec::len).max().unwrap_or(2);
        let mut ids = Vec::with_capacity(enc.len() * t);
        let mut pad = Vec::with_capacity(enc.len() * t);
        for e in &enc {
            for k in 0..t {
                ids.push(e.get(k).copied().unwrap_or(PAD) as i64);
                pad.push(k >= e.len());
            }
        }
        let shape = [enc.len(), t];
        TextBatch {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            pad: Tensor::from_data(TensorData::new(pad, shape), device),
        }
    }
}

pub struct TextBatch<B: Backend> {
    pub ids: Tensor<B, 2, Int>,
    pub pad: Tensor<B, 2, Bool>,
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Config, Debug)]
pub struct TextEncoderConfig {
    /// Vocabulary size (from the tokenizer).
    pub vocab: usize,
    /// Longest token sequence, `[BOS]` and `[EOS]` included.
    #[config(default = 32)]
    pub max_len: usize,
    #[config(default = 64)]
    pub d_model: usize,
    #[config(default = 2)]
    pub layers: usize,
    #[config(default = 4)]
    pub heads: usize,
}

impl TextEncoderConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TextEncoder<B> {
        assert!(
            self.d_model % self.heads == 0,
            "text encoder: d_model {} is not a multiple of heads {}",
            self.d_model,
            self.heads
        );
        TextEncoder {
            tokens: EmbeddingConfig::new(self.vocab, self.d_model).init(device),
            positions: EmbeddingConfig::new(self.max_len, self.d_model).init(device),
            encoder: TransformerEncoderConfig::new(
                self.d_model,
                2 * self.d_model,
                self.heads,
                self.layers,
            )
            .with_dropout(0.0)
            .with_norm_first(true)
            .init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct TextEncoder<B: Backend> {
    tokens: Embedding<B>,
    positions: Embedding<B>,
    encoder: TransformerEncoder<B>,
}

impl<B: Backend> TextEncoder<B> {
    /// `[b, t]` token ids → `[b, t, d_model]`.
    pub fn forward(&self, batch: &TextBatch<B>) -> Tensor<B, 3> {
        let [b, t] = batch.ids.dims();
        let device = batch.ids.device();
        let pos = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .expand([b, t]);
        let x = self.tokens.forward(batch.ids.clone()) + self.positions.forward(pos);
        self.encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(batch.pad.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;

    #[test]
    fn pieces_split_compounds_and_digits() {
        assert_eq!(
            pieces("Chest CT, female, 63 years, solid_nodule"),
            ["chest", "ct", "female", "6", "3", "years", "solid", "nodule"]
        );
    }

    #[test]
    fn unknown_words_map_to_near_spellings_or_unk() {
        let tok = Tokenizer::build(
            ["chest CT, male, hepatic steatosis", "chest CT, female"],
            16,
        );
        let id = |w: &str| tok.vocab.iter().position(|v| v == w).unwrap() as u32;
        let enc = tok.encode("Chest CT femal steatotic liver 7");
        assert_eq!(
            enc,
            vec![
                BOS,
                id("chest"),
                id("ct"),
                id("female"),
                id("steatosis"),
                UNK,
                id("7"),
                EOS
            ]
        );
    }

    #[test]
    fn long_prompts_are_truncated_and_batches_padded() {
        let tok = Tokenizer::build(["a b c d e f g h"], 5);
        assert_eq!(tok.encode("a b c d e f g h").len(), 5);
        let b = tok.batch::<Cpu>(&["a", "a b c"], &Default::default());
        assert_eq!(b.ids.dims(), [2, 5]);
        let pad = b.pad.into_data().to_vec::<bool>().unwrap();
        assert_eq!(
            pad,
            [false, false, false, true, true, false, false, false, false, false]
        );
    }

    #[test]
    fn encoder_output_shape() {
        let dev = Default::default();
        let tok = Tokenizer::build(["chest ct male", "head mri"], 32);
        let enc = crate::model::init_with_seed(&dev, 1, || {
            TextEncoderConfig::new(tok.len()).init::<Cpu>(&dev)
        });
        let out = enc.forward(&tok.batch(&["chest ct", "head mri female"], &dev));
        assert_eq!(out.dims(), [2, 5, 64]);
    }
}
