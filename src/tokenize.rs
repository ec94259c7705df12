//! Tokenization: a thin wrapper over the `tokenizers` crate that trains a WordPiece vocabulary
//! offline, loads and saves `tokenizer.json`, and gives each token's word start.
//!
//! Word starts come from the tokenizer's own word ids (one per pre-tokenized word), not from the
//! `##` prefix, so whole-word and span masking also work for vocabularies without it.

use std::path::{Path, PathBuf};

use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Model};

use crate::error::{Error, Result};

/// The special tokens every `pretext` tokenizer must have, in the order they take the first ids
/// of a vocabulary trained here.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Ids of the special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Padding, never attended to and never a target.
    pub pad: u32,
    /// Unknown piece.
    pub unk: u32,
    /// Start of a sequence (its state is the pooled one).
    pub cls: u32,
    /// End of a segment; also the end-of-text token of causal LM.
    pub sep: u32,
    /// The `[MASK]` that masked LM puts in place of hidden tokens. A tokenizer without one
    /// (GPT-2's) gives its unknown token here and [`Tokenizer::has_mask`] is false: objectives
    /// that mask refuse it ([`crate::recipe::ObjectiveSettings::masks`]).
    pub mask: u32,
}

/// Token ids of a text (without special tokens) together with which of them start a word: a
/// [`Segment`].
pub type Encoded = Segment;

/// A tokenizer with the special tokens `pretext` relies on.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialTokens,
    has_mask: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

fn tk_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Wraps a `tokenizers::Tokenizer`, finding its special tokens by role under the names
    /// BERT (`[CLS]` …) or RoBERTa (`<s>` …) gives them. Its own padding and truncation are
    /// turned off (a `tokenizer.json` saved for inference often pads every text to a fixed
    /// length): pretext frames, cuts and pads examples itself.
    pub fn new(inner: tokenizers::Tokenizer) -> Result<Self> {
        Self::with_roles(inner, &Roles::default())
    }

    /// Wraps a `tokenizers::Tokenizer` whose special tokens are named in `declared` (what a
    /// `tokenizer_config.json` says), each role falling back to BERT's then RoBERTa's name.
    /// The special tokens are marked special in `inner`, so that `[MASK]` in a text is the
    /// mask token, not three pieces. As `transformers` does for GPT-2, a tokenizer without a
    /// padding token pads with its end token; one without a mask token has none
    /// ([`Tokenizer::has_mask`]).
    pub fn with_roles(mut inner: tokenizers::Tokenizer, declared: &Roles) -> Result<Self> {
        inner.with_padding(None);
        inner.with_truncation(None).map_err(tk_err)?;
        let mut id = |role: &'static str| -> Result<u32> {
            let candidates = declared.candidates(role);
            let (token, id) = candidates
                .iter()
                .find_map(|t| inner.token_to_id(t).map(|id| (t.clone(), id)))
                .ok_or_else(|| Error::MissingSpecialToken(role.to_string()))?;
            let marked = inner
                .get_added_tokens_decoder()
                .get(&id)
                .is_some_and(|t| t.special);
            if !marked {
                inner.add_special_tokens(&[AddedToken::from(token, true)]);
            }
            Ok(id)
        };
        let (unk, cls, sep) = (id("unk")?, id("cls")?, id("sep")?);
        let pad = id("pad").unwrap_or(sep);
        let mask = id("mask").ok();
        let special = SpecialTokens {
            pad,
            unk,
            cls,
            sep,
            mask: mask.unwrap_or(unk),
        };
        Ok(Self {
            inner,
            special,
            has_mask: mask.is_some(),
        })
    }

    /// Loads a `tokenizer.json`, or a BERT `vocab.txt` (a WordPiece vocabulary, one token a
    /// line, under BERT's normalisation: lower-cased unless `do_lower_case` is false). Special
    /// tokens are found by role as the `tokenizer_config.json` and `special_tokens_map.json`
    /// beside the file name them (see [`Tokenizer::with_roles`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new("."));
        let roles = Roles::read(dir)?;
        if path.extension().is_some_and(|e| e == "txt") {
            return Self::from_vocab_txt(path, &roles);
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::with_roles(inner, &roles)
    }

    /// The tokenizer of a Hugging Face model directory: its `tokenizer.json`, else its
    /// `vocab.txt`.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        Self::from_file(model_dir_file(dir))
    }

    fn from_vocab_txt(path: &Path, roles: &Roles) -> Result<Self> {
        let unk = roles
            .candidates("unk")
            .into_iter()
            .next()
            .unwrap_or_else(|| "[UNK]".into());
        let model = WordPiece::from_file(&path.to_string_lossy())
            .unk_token(unk)
            .build()
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        if model.get_vocab_size() == 0 {
            return Err(Error::Tokenizer(format!("{}: no tokens", path.display())));
        }
        let mut inner = tokenizers::Tokenizer::new(model);
        let lowercase = roles.lowercase.unwrap_or(true);
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
        Self::with_roles(inner, roles)
    }

    /// The tokenizer bundled with the crate (`data/tokenizer.json`, 8192 WordPiece tokens
    /// trained on the bundled corpus, lower-cased).
    pub fn bundled() -> Result<Self> {
        Self::from_file(crate::corpus::bundled_data_dir().join("tokenizer.json"))
    }

    /// Trains a lower-casing BERT-style WordPiece vocabulary of at most `vocab_size` tokens on
    /// the given text files, with [`SPECIAL_TOKENS`] as ids 0 to 4. Runs offline.
    pub fn train_wordpiece<P: AsRef<Path>>(files: &[P], vocab_size: usize) -> Result<Self> {
        if vocab_size <= SPECIAL_TOKENS.len() {
            return Err(Error::InvalidConfig(format!(
                "a vocabulary of {vocab_size} tokens has no room beyond the special tokens"
            )));
        }
        let files: Vec<String> = files
            .iter()
            .map(|f| f.as_ref().to_string_lossy().into_owned())
            .collect();
        if files.is_empty() {
            return Err(Error::EmptyCorpus(
                "no files to train a tokenizer on".into(),
            ));
        }
        let model = WordPiece::builder()
            .unk_token("[UNK]".into())
            .build()
            .map_err(tk_err)?;
        let mut inner = tokenizers::Tokenizer::new(model);
        inner.with_normalizer(Some(BertNormalizer::default()));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
        let trainer = WordPieceTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(SPECIAL_TOKENS.map(|t| AddedToken::from(t, true)).to_vec())
            .build();
        let mut trainer = TrainerWrapper::WordPieceTrainer(trainer);
        inner
            .train_from_files(&mut trainer, files)
            .map_err(tk_err)?;
        Self::new(inner)
    }

    /// Saves as `tokenizer.json`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.inner.save(path.as_ref(), false).map_err(tk_err)
    }

    /// Saves as `dir/tokenizer.json` beside a `tokenizer_config.json` naming its special tokens
    /// by role, so that [`Tokenizer::from_model_dir`] reads back this very tokenizer (the same
    /// [`fingerprint`](Self::fingerprint)) whatever names they have.
    pub fn save_to_dir(&self, dir: &Path) -> Result<()> {
        self.save(dir.join("tokenizer.json"))?;
        let roles = self.role_names(self.has_mask).to_string();
        crate::util::atomic_file::write(&dir.join("tokenizer_config.json"), roles)
    }

    /// The special tokens' names by role, as `tokenizer_config.json` declares them
    /// (`pad_token`, `unk_token`, `cls_token`, `sep_token`, and `mask_token` with `mask`).
    pub(crate) fn role_names(&self, mask: bool) -> serde_json::Value {
        let name = |id| self.inner.id_to_token(id).unwrap_or_default();
        let s = self.special;
        let mut roles = serde_json::json!({
            "pad_token": name(s.pad),
            "unk_token": name(s.unk),
            "cls_token": name(s.cls),
            "sep_token": name(s.sep),
        });
        if mask {
            roles["mask_token"] = name(s.mask).into();
        }
        roles
    }

    /// Saves as `tokenizer.json` for `transformers`: with BERT's framing as its post-processor
    /// (`[CLS] A [SEP]`, `[CLS] A [SEP] B [SEP]` with segments 0 and 1, under this tokenizer's
    /// names for the two) unless it has one, so that `transformers` frames texts as pretext
    /// does. With `open_end` (a causal LM's tokenizer) a text is `[CLS] A`, the start a
    /// generation continues from, as pretext's causal runs read prompts.
    pub fn save_framed(&self, path: impl AsRef<Path>, open_end: bool) -> Result<()> {
        let mut inner = self.inner.clone();
        if inner.get_post_processor().is_none() {
            let name = |id| self.inner.id_to_token(id).unwrap_or_default();
            let (cls, sep) = (name(self.special.cls), name(self.special.sep));
            let (single, pair) = match open_end {
                true => (format!("{cls} $A"), format!("{cls} $A:0 $B:1")),
                false => (
                    format!("{cls} $A {sep}"),
                    format!("{cls} $A:0 {sep}:0 $B:1 {sep}:1"),
                ),
            };
            let framing = TemplateProcessing::builder()
                .try_single(single)
                .and_then(|b| b.try_pair(pair))
                .map_err(tk_err)?
                .special_tokens(vec![
                    (cls.clone(), self.special.cls),
                    (sep.clone(), self.special.sep),
                ])
                .build()
                .map_err(tk_err)?;
            inner.with_post_processor(Some(framing));
        }
        inner.save(path.as_ref(), false).map_err(tk_err)
    }

    /// Vocabulary size, added tokens included: the `vocab_size` a model needs.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Whether the tokenizer has a mask token (GPT-2's has none).
    pub fn has_mask(&self) -> bool {
        self.has_mask
    }

    /// Ids of the special tokens.
    pub fn special(&self) -> SpecialTokens {
        self.special
    }

    /// Whether `id` is one of the special (added) tokens.
    pub fn is_special(&self, id: u32) -> bool {
        let s = self.special;
        id == s.pad || id == s.unk || id == s.cls || id == s.sep || id == s.mask
    }

    /// This tokenizer with T5's sentinel tokens `<extra_id_0>` … `<extra_id_{n-1}>` added as
    /// special tokens at the end of the vocabulary, `<extra_id_0>` last (T5 counts sentinels
    /// down from the last id). Sentinels it already has are kept, not added twice.
    pub fn with_sentinels(mut self, n: usize) -> Result<Self> {
        let missing: Vec<AddedToken> = (0..n)
            .rev()
            .map(sentinel)
            .filter(|t| self.inner.token_to_id(t).is_none())
            .map(|t| AddedToken::from(t, true))
            .collect();
        self.inner.add_special_tokens(&missing);
        let found = self.sentinels().len();
        if found < n {
            return Err(Error::NotEnoughSentinels { needed: n, found });
        }
        Ok(self)
    }

    /// Ids of the sentinel tokens `<extra_id_0>`, `<extra_id_1>`, … as far as they run
    /// without a gap.
    pub fn sentinels(&self) -> Vec<u32> {
        (0..)
            .map_while(|k| self.inner.token_to_id(&sentinel(k)))
            .collect()
    }

    /// The wrapped `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Tokenizes one text, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let encoding = self.inner.encode(text, false).map_err(tk_err)?;
        Ok(from_encoding(&encoding))
    }

    /// The tokens this tokenizer's own framing puts before a text (`[CLS]` for BERT's, `<s>`
    /// for RoBERTa's, none for GPT-2's): what a causal model's prompts start with.
    pub fn start_tokens(&self) -> Result<Vec<u32>> {
        let probe = "a";
        let framed = self.inner.encode(probe, true).map_err(tk_err)?;
        let plain = self.inner.encode(probe, false).map_err(tk_err)?;
        let (framed, plain) = (framed.get_ids(), plain.get_ids());
        let at = (0..=framed.len().saturating_sub(plain.len()))
            .find(|&i| framed[i..].starts_with(plain))
            .unwrap_or(0);
        Ok(framed[..at].to_vec())
    }

    /// A fingerprint of how this tokenizer maps text to ids: its vocabulary in id order, its
    /// special tokens, normaliser and pre-tokeniser, hashed (64 bits, hex). Token ids stored
    /// for later runs carry it, so that a run with another tokenizer is refused rather than
    /// trained on ids that mean other tokens.
    pub fn fingerprint(&self) -> String {
        let mut vocab: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        vocab.sort_by_key(|(_, id)| *id);
        let mut hash = crate::util::rng::FNV_OFFSET;
        let mut feed = |bytes: &[u8]| {
            hash = crate::util::rng::splitmix64(crate::util::rng::fnv1a(hash, bytes));
        };
        for (token, id) in &vocab {
            feed(&id.to_le_bytes());
            feed(token.as_bytes());
        }
        feed(format!("{:?}", self.special).as_bytes());
        feed(format!("{:?}", self.inner.get_normalizer()).as_bytes());
        feed(format!("{:?}", self.inner.get_pre_tokenizer()).as_bytes());
        format!("{hash:016x}")
    }

    /// Where this tokenizer reads text differently from `other`, if anywhere: the vocabulary
    /// (its size, or the first token whose id differs) or the special tokens' ids.
    pub fn difference(&self, other: &Tokenizer) -> Option<String> {
        if self.vocab_size() != other.vocab_size() {
            return Some(format!(
                "{} tokens against {}",
                self.vocab_size(),
                other.vocab_size()
            ));
        }
        let theirs = other.inner.get_vocab(true);
        let mut ours: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        ours.sort_by_key(|(_, id)| *id);
        if let Some((token, id)) = ours
            .iter()
            .find(|(token, id)| theirs.get(token) != Some(id))
        {
            return Some(format!(
                "token {token:?} is id {id} in one and not in the other"
            ));
        }
        (self.special != other.special).then(|| {
            format!(
                "special tokens {:?} against {:?}",
                self.special, other.special
            )
        })
    }

    /// Tokenizes many texts in parallel.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), false)
            .map_err(tk_err)?;
        Ok(encodings.iter().map(from_encoding).collect())
    }

    /// Turns ids back into text, leaving out special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(tk_err)
    }

    /// Turns ids back into text, special tokens (`[MASK]`, sentinels) included but `[PAD]`,
    /// `[CLS]` and `[SEP]` left out: how a corrupted input reads.
    pub fn decode_keeping_specials(&self, ids: &[u32]) -> Result<String> {
        let s = self.special;
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| id != s.pad && id != s.cls && id != s.sep)
            .collect();
        self.inner.decode(&kept, false).map_err(tk_err)
    }

    /// The token string of `id`, if any (special tokens included).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

/// The file a Hugging Face model directory's tokenizer is read from: `tokenizer.json`, else
/// `vocab.txt` (the first when neither exists, for the error to name).
pub fn model_dir_file(dir: &Path) -> PathBuf {
    let json = dir.join("tokenizer.json");
    let vocab = dir.join("vocab.txt");
    if !json.exists() && vocab.exists() {
        vocab
    } else {
        json
    }
}

/// The special tokens a tokenizer's configuration names, by role, and whether it lower-cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    /// Token names by role (`cls`, `sep`, `pad`, `unk`, `mask`, `bos`, `eos`).
    pub declared: Vec<(String, String)>,
    /// `do_lower_case`, if the configuration says.
    pub lowercase: Option<bool>,
}

impl Roles {
    /// The roles `tokenizer_config.json` and `special_tokens_map.json` in `dir` declare (either
    /// may be absent; the first wins where both name a role).
    pub fn read(dir: &Path) -> Result<Self> {
        let mut roles = Self::default();
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
                    path: path.clone(),
                    line: e.line(),
                    column: e.column(),
                    reason: e.to_string(),
                })?;
            for role in ["cls", "sep", "pad", "unk", "mask", "bos", "eos"] {
                // A token is a string, or an object with its `content` (an AddedToken).
                let token = &value[format!("{role}_token")];
                let token = token.as_str().or_else(|| token["content"].as_str());
                if let Some(token) = token
                    && roles.declared.iter().all(|(r, _)| r != role)
                {
                    roles.declared.push((role.into(), token.into()));
                }
            }
            if roles.lowercase.is_none() {
                roles.lowercase = value["do_lower_case"].as_bool();
            }
        }
        Ok(roles)
    }

    /// The names to look for, in order, for `role`: what is declared for it (for `cls` and
    /// `sep`, then what is declared for `bos` and `eos`), then BERT's and RoBERTa's names.
    fn candidates(&self, role: &'static str) -> Vec<String> {
        let declared = |r: &'static str| {
            self.declared
                .iter()
                .filter(move |(name, _)| name == r)
                .map(|(_, token)| token.clone())
        };
        let (fallback, defaults): (&str, [&str; 2]) = match role {
            "pad" => ("", ["[PAD]", "<pad>"]),
            "unk" => ("", ["[UNK]", "<unk>"]),
            "cls" => ("bos", ["[CLS]", "<s>"]),
            "sep" => ("eos", ["[SEP]", "</s>"]),
            _ => ("", ["[MASK]", "<mask>"]),
        };
        declared(role)
            .chain(declared(fallback))
            .chain(defaults.iter().map(|t| t.to_string()))
            .collect()
    }
}

/// T5's name of sentinel `k`.
fn sentinel(k: usize) -> String {
    format!("<extra_id_{k}>")
}

fn from_encoding(encoding: &tokenizers::Encoding) -> Encoded {
    let mut previous = None;
    let word_starts = encoding
        .get_word_ids()
        .iter()
        .map(|w| {
            let start = w.is_none() || *w != previous;
            previous = *w;
            start
        })
        .collect();
    Encoded {
        ids: encoding.get_ids().to_vec(),
        word_starts,
    }
}

/// A run of tokens (no special tokens) with which of them start a word: a tokenized text, or
/// part of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Token ids (no special tokens).
    pub ids: Vec<u32>,
    /// Which tokens start a word.
    pub word_starts: Vec<bool>,
}

impl Segment {
    /// `[CLS] ids [SEP]`, with the specials counted as word starts.
    pub fn framed(&self, cls: u32, sep: u32) -> (Vec<u32>, Vec<bool>) {
        let ids = [&[cls][..], &self.ids[..], &[sep][..]].concat();
        let starts = [&[true][..], &self.word_starts[..], &[true][..]].concat();
        (ids, starts)
    }

    /// Appends tokens with their word starts.
    pub fn push(&mut self, ids: &[u32], starts: &[bool]) {
        self.ids.extend_from_slice(ids);
        self.word_starts.extend_from_slice(starts);
    }

    /// `[start, end)` token ranges of the words; a segment that opens mid-word (after a
    /// rotation, say) opens with a word.
    pub fn words(&self) -> Vec<(usize, usize)> {
        let mut words: Vec<(usize, usize)> = Vec::new();
        for (i, &start) in self.word_starts.iter().enumerate() {
            match words.last_mut() {
                Some(w) if !start => w.1 = i + 1,
                _ => words.push((i, i + 1)),
            }
        }
        words
    }

    /// The segments one after the other.
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Segment>) -> Segment {
        let mut out = Segment::default();
        for part in parts {
            out.push(&part.ids, &part.word_starts);
        }
        out
    }

    /// Keeps only tokens `range`; a token left first counts as a word start.
    pub fn keep(&mut self, range: std::ops::Range<usize>) {
        self.ids.truncate(range.end);
        self.word_starts.truncate(range.end);
        self.ids.drain(..range.start);
        self.word_starts.drain(..range.start);
        if let Some(first) = self.word_starts.first_mut() {
            *first = true;
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_tokenizer() -> Tokenizer {
        let dir = std::env::temp_dir().join(format!(
            "pretext-tok-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("text.txt");
        let text =
            "the temperate wind blows. the temperature falls. winds are temperate.\n".repeat(50);
        std::fs::write(&file, text).unwrap();
        let tok = Tokenizer::train_wordpiece(&[&file], 60).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        tok
    }

    #[test]
    fn a_tokenizer_saved_to_pad_and_truncate_does_neither_here() {
        use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};
        let mut inner = Tokenizer::bundled().unwrap().inner().clone();
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(16),
            ..Default::default()
        }));
        inner
            .with_truncation(Some(TruncationParams {
                max_length: 8,
                ..Default::default()
            }))
            .unwrap();
        let tok = Tokenizer::new(inner).unwrap();
        assert_eq!(tok.encode("the cat sat").unwrap().len(), 3);
        assert!(
            tok.encode(&"the cat sat on the mat. ".repeat(5))
                .unwrap()
                .len()
                > 16
        );
    }

    #[test]
    fn trained_vocabulary_has_the_specials_first() {
        let tok = tiny_tokenizer();
        let s = tok.special();
        assert_eq!([s.pad, s.unk, s.cls, s.sep, s.mask], [0, 1, 2, 3, 4]);
        assert!(tok.vocab_size() <= 60);
    }

    #[test]
    fn word_starts_follow_words_not_pieces() {
        let tok = tiny_tokenizer();
        let e = tok.encode("Temperate winds.").unwrap();
        assert_eq!(e.ids.len(), e.word_starts.len());
        assert!(e.word_starts[0]);
        // "temperate" and "winds" may be several pieces each, "." is its own word: 3 words.
        assert_eq!(e.word_starts.iter().filter(|&&s| s).count(), 3);
    }

    #[test]
    fn sentinels_are_added_at_the_end_counting_down_and_only_once() {
        let tok = tiny_tokenizer();
        let vocab = tok.vocab_size();
        assert!(tok.sentinels().is_empty());
        let tok = tok.with_sentinels(3).unwrap();
        assert_eq!(tok.vocab_size(), vocab + 3);
        let last = (vocab + 2) as u32;
        assert_eq!(tok.sentinels(), vec![last, last - 1, last - 2]);
        assert_eq!(tok.id_to_token(last).as_deref(), Some("<extra_id_0>"));
        // Sentinels are whole tokens, and never split by the model.
        assert_eq!(tok.encode("<extra_id_1>").unwrap().ids, vec![last - 1]);
        let again = tok.with_sentinels(3).unwrap();
        assert_eq!(again.vocab_size(), vocab + 3);
    }

    #[test]
    fn a_tokenizer_without_the_special_tokens_is_rejected() {
        let err = Tokenizer::new(tokenizers::Tokenizer::new(WordPiece::default())).unwrap_err();
        assert!(
            matches!(err, Error::MissingSpecialToken(ref t) if t == "unk"),
            "{err}"
        );
    }
}
