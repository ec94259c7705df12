//! The part-of-speech task: Brown sentences tagged with 12 universal parts of speech
//! (`data/brown_pos.jsonl`, built by `scripts/build_pos.py`; see `data/README.md`).
//!
//! Its sentences come only from the documents the genre task holds out of pretraining, so the
//! pretrained models have never read them.

use std::path::Path;

use serde::Deserialize;

use super::TaggedSentence;
use crate::corpus::bundled_data_dir;
use crate::dataset::labelled::{LabelledData, Subset, json_lines, line_fault};
use crate::error::Result;

/// The tags, in label order.
pub const TAGS: [&str; 12] = [
    ".", "ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", "X",
];

/// One line of the file.
#[derive(Deserialize)]
struct Line {
    document: String,
    split: String,
    words: Vec<String>,
    tags: Vec<String>,
}

/// The bundled tagged sentences.
pub fn load() -> Result<LabelledData<TaggedSentence>> {
    load_from(&bundled_data_dir().join("brown_pos.jsonl"))
}

/// Tagged sentences from a file in the bundled format: one JSON object a line with
/// `document`, `split` (`train`, `valid` or `test`), `words` and `tags` (one of [`TAGS`] a
/// word).
pub fn load_from(path: &Path) -> Result<LabelledData<TaggedSentence>> {
    let mut data = LabelledData {
        labels: TAGS.iter().map(|t| t.to_string()).collect(),
        ..LabelledData::default()
    };
    for (line, parsed) in json_lines::<Line>(path)? {
        let fault = |m: String| line_fault(path, line, m);
        let subset = Subset::parse(&parsed.split).map_err(fault)?;
        let tags = parsed
            .tags
            .iter()
            .map(|t| {
                TAGS.iter()
                    .position(|known| known == t)
                    .map(|p| p as u32)
                    .ok_or_else(|| fault(format!("tag {t:?} is not one of {TAGS:?}")))
            })
            .collect::<Result<Vec<u32>>>()?;
        if tags.len() != parsed.words.len() {
            return Err(fault(format!(
                "{} words but {} tags",
                parsed.words.len(),
                tags.len()
            )));
        }
        data.subset_mut(subset).push(TaggedSentence {
            document: parsed.document,
            words: parsed.words,
            tags,
        });
    }
    data.check_nonempty(path)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tagged_sentences_come_from_held_out_documents() {
        let data = load().unwrap();
        assert_eq!(
            (data.train.len(), data.valid.len(), data.test.len()),
            (1458, 162, 1260)
        );
        let held_out = crate::dataset::bundled::held_out_documents().unwrap();
        for s in data.train.iter().chain(&data.valid).chain(&data.test) {
            assert!(held_out.contains(&s.document), "{}", s.document);
            assert_eq!(s.words.len(), s.tags.len());
        }
        // Every tag occurs in training.
        for tag in 0..TAGS.len() as u32 {
            assert!(
                data.train.iter().any(|s| s.tags.contains(&tag)),
                "{}",
                TAGS[tag as usize]
            );
        }
    }

    #[test]
    fn a_bad_tag_is_named_with_its_line() {
        let dir = std::env::temp_dir().join(format!("pretext-pos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.jsonl");
        std::fs::write(
            &path,
            "{\"document\":\"d\",\"split\":\"train\",\"words\":[\"a\"],\"tags\":[\"NOUN\"]}\n\
             {\"document\":\"d\",\"split\":\"test\",\"words\":[\"a\"],\"tags\":[\"NN\"]}\n",
        )
        .unwrap();
        let err = load_from(&path).unwrap_err();
        assert!(err.to_string().contains("line 2: tag \"NN\""), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
