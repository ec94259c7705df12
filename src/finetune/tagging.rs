//! Token classification data: sentences given as words with one class a word, framed as
//! `[CLS] tokens [SEP]` with each word's class on its first token, as BERT's tagging
//! fine-tuning does (the word's other pieces and the special tokens are not scored).

use crate::data::{TokenExample, TokenSource, TokenTaskOf};
use crate::dataset::labelled::TaggedSentence;
use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// Tagged sentences, tokenized word by word and cut to the sequence length.
pub type TaggingTask = TokenTaskOf<TaggedTokens>;

/// Tagged sentences as framed token ids and per-token targets: the examples of a
/// [`TaggingTask`].
#[derive(Debug, Clone)]
pub struct TaggedTokens(Vec<(Vec<u32>, Vec<i64>)>);

impl TaggingTask {
    /// `sentences` over `tokenizer`, tags below `num_classes`, at most `seq_len` tokens each
    /// (words past the end are dropped, not scored).
    pub fn new(
        sentences: &[TaggedSentence],
        tokenizer: &Tokenizer,
        num_classes: usize,
        seq_len: usize,
    ) -> Result<Self> {
        if sentences.is_empty() {
            return Err(Error::EmptyCorpus(
                "no tagged sentence to learn from".into(),
            ));
        }
        let room = crate::data::body_len(seq_len)?;
        let special = tokenizer.special();
        let mut examples = Vec::with_capacity(sentences.len());
        for s in sentences {
            if s.words.len() != s.tags.len() {
                return Err(Error::InvalidConfig(format!(
                    "a sentence of {} has {} words and {} tags",
                    s.document,
                    s.words.len(),
                    s.tags.len()
                )));
            }
            if let Some(&bad) = s.tags.iter().find(|&&t| t as usize >= num_classes) {
                return Err(Error::InvalidConfig(format!(
                    "a sentence of {} has tag {bad}, but the task has {num_classes} classes",
                    s.document
                )));
            }
            let words: Vec<&str> = s.words.iter().map(String::as_str).collect();
            let mut ids = vec![special.cls];
            let mut targets = vec![IGNORE_INDEX];
            for (pieces, &tag) in tokenizer.encode_batch(&words)?.iter().zip(&s.tags) {
                let fits = pieces.ids.len().min(room + 1 - ids.len());
                for (k, &id) in pieces.ids[..fits].iter().enumerate() {
                    ids.push(id);
                    targets.push(if k == 0 { tag as i64 } else { IGNORE_INDEX });
                }
                if ids.len() > room {
                    break;
                }
            }
            ids.push(special.sep);
            targets.push(IGNORE_INDEX);
            examples.push((ids, targets));
        }
        Ok(Self::of(TaggedTokens(examples), special.pad))
    }
}

impl TokenSource for TaggedTokens {
    fn num_examples(&self) -> usize {
        self.0.len()
    }

    fn token_example(&self, index: usize, _rng: &mut ExampleRng) -> Result<TokenExample> {
        let (ids, targets) = &self.0[index];
        Ok(TokenExample::plain(ids.clone(), targets.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Task;
    use crate::util::rng::example_rng;

    fn sentence(words: &[&str], tags: &[u32]) -> TaggedSentence {
        TaggedSentence {
            document: "d".into(),
            words: words.iter().map(|w| w.to_string()).collect(),
            tags: tags.to_vec(),
        }
    }

    #[test]
    fn each_word_is_scored_once_on_its_first_piece() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let s = tokenizer.special();
        // "Atlanta's" is several pieces; each word's tag sits on its first.
        let words = [
            "The",
            "jury",
            "praised",
            "Atlanta's",
            "unprecedentedly",
            ".",
        ];
        let tags = [1, 2, 3, 2, 4, 0];
        let task = TaggingTask::new(&[sentence(&words, &tags)], &tokenizer, 5, 64).unwrap();
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(e.input_ids.len(), e.targets.len());
        assert_eq!(
            (e.input_ids[0], *e.input_ids.last().unwrap()),
            (s.cls, s.sep)
        );
        let scored: Vec<i64> = e
            .targets
            .iter()
            .copied()
            .filter(|&t| t != IGNORE_INDEX)
            .collect();
        assert_eq!(scored, vec![1, 2, 3, 2, 4, 0]);
        assert!(
            e.input_ids.len() > words.len() + 2,
            "some word has several pieces"
        );
        // Each scored position starts its word: the first piece of that word alone.
        let mut k = 1;
        for (word, tag) in words.iter().zip(tags) {
            let pieces = tokenizer.encode(word).unwrap().ids;
            assert_eq!(e.input_ids[k], pieces[0]);
            assert_eq!(e.targets[k], tag as i64);
            k += pieces.len();
        }
    }

    #[test]
    fn long_sentences_are_cut_and_bad_tags_refused() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let words: Vec<String> = (0..40).map(|i| format!("word{i}")).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let task = TaggingTask::new(&[sentence(&words, &[1; 40])], &tokenizer, 2, 16).unwrap();
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(e.input_ids.len(), 16);
        for bad in [sentence(&["a", "b"], &[0]), sentence(&["a"], &[7])] {
            let err = TaggingTask::new(&[bad], &tokenizer, 2, 16).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        }
    }
}
