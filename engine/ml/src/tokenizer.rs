//! The tokenizer: a wrapper around the `tokenizers` crate that knows the chat control
//! tokens, plus the builder that reconstructs a byte-level BPE tokenizer from GGUF
//! metadata (Candle's own GGUF tokenizer adds a prefix space, which SmolLM2 does not).

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use super::{MlError, Result};

pub const IM_END: &str = "<|im_end|>";

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    end_of_turn: u32,
    pad: u32,
    stop_ids: Vec<u32>,
}

fn tok_err(e: impl std::fmt::Display) -> MlError {
    MlError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Wraps a ready `tokenizers` tokenizer for a chat template whose turns end with the
    /// control token `end_of_turn` (which must be one token of the vocabulary). Generation
    /// stops there, at `extra_stop` (a model's other end-of-sequence ids) and at
    /// `<|endoftext|>` where the vocabulary has it.
    pub fn from_inner(inner: tokenizers::Tokenizer, end_of_turn: &str, extra_stop: &[u32]) -> Result<Self> {
        let ids = inner.encode(end_of_turn, false).map_err(tok_err)?.get_ids().to_vec();
        let [eot] = ids[..] else {
            return Err(MlError::Tokenizer(format!(
                "the chat template ends a turn with {end_of_turn:?}, which is not one control token of the vocabulary"
            )));
        };
        let mut stop_ids = vec![eot];
        let eot_text = inner.token_to_id("<|endoftext|>");
        for s in extra_stop.iter().copied().chain(eot_text) {
            if !stop_ids.contains(&s) {
                stop_ids.push(s);
            }
        }
        // Padding never reaches the loss or the attention, so any id works; the
        // end-of-text token keeps it inside the vocabulary of every model.
        let pad = eot_text.unwrap_or(eot);
        Ok(Tokenizer { inner, end_of_turn: eot, pad, stop_ids })
    }

    /// Builds the tokenizer a GGUF file describes: byte-level BPE with its vocabulary and
    /// merges, SmolLM's pre-tokenizer (single digits, then the GPT-2 byte-level regex) and
    /// the control tokens (token type 3) as special added tokens.
    pub fn from_gguf_parts(
        tokens: &[String],
        merges: &[String],
        token_types: &[i32],
        end_of_turn: &str,
        extra_stop: &[u32],
    ) -> Result<Self> {
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .map(|m| {
                let mut it = m.splitn(2, ' ');
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                    _ => Err(MlError::Tokenizer(format!("malformed merge {m:?}"))),
                }
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(tok_err)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let pre = Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]);
        inner.with_pre_tokenizer(Some(pre));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(token_types.iter().chain(std::iter::repeat(&1)))
            .filter(|(_, &ty)| ty == 3)
            .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false))
            .collect();
        inner.add_special_tokens(specials).map_err(tok_err)?;
        Self::from_inner(inner, end_of_turn, extra_stop)
    }

    /// Token ids of plain text; control tokens written literally in the text are
    /// recognised, as Hugging Face's chat templates do.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, false).map_err(tok_err)?.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// The id of the control token closing a turn (`<|im_end|>` in ChatML).
    pub fn end_of_turn(&self) -> u32 {
        self.end_of_turn
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Ids that end a generated answer (the end-of-turn token first).
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
