//! The Brown corpus genre task: passages of the bundled Brown documents labelled with their
//! document's genre (15 genres, `data/brown_genres`), split by document into train,
//! validation and test.
//!
//! The split is fixed and stratified: within each genre, documents in file-id order, the
//! document of rank `r` goes to test when `r % 10` is 0 or 5, to validation when it is 3, to
//! train otherwise (about 70/10/20; every genre has at least one validation and one test
//! document). Validation and test documents are held out of pretraining: build the
//! pretraining corpus with [`pretraining_corpus`](crate::dataset::bundled::pretraining_corpus).

use std::collections::BTreeSet;

use super::{LabelledData, LabelledText};
use crate::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use crate::dataset::bundled::brown_genres;
use crate::error::{Error, Result};

/// The genre task: every Brown document cut into passages of whole consecutive sentences of
/// at most `max_words` words (a longer sentence is a passage alone), labelled with its genre.
pub fn load(max_words: usize) -> Result<LabelledData> {
    if max_words == 0 {
        return Err(Error::InvalidConfig(
            "passages need room for at least one word".into(),
        ));
    }
    let genres = brown_genres()?;
    let labels: Vec<String> = genres
        .iter()
        .map(|(_, g, _)| g.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let corpus = Corpus::from_dir(bundled_data_dir().join("brown"), DocumentBoundary::File)?;
    let mut data = LabelledData {
        labels,
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
    };
    for (name, genre, split) in &genres {
        let document = corpus
            .documents
            .iter()
            .find(|d| &d.name == name)
            .ok_or_else(|| {
                Error::EmptyCorpus(format!("{name} is in brown_genres but not in data/"))
            })?;
        let label = data.labels.iter().position(|l| l == genre).expect("listed") as u32;
        let side = data.subset_mut(*split);
        let mut passage = String::new();
        let mut words = 0;
        for sentence in &document.sentences {
            let n = sentence.split_whitespace().count();
            if words > 0 && words + n > max_words {
                side.push(LabelledText {
                    document: name.clone(),
                    text: std::mem::take(&mut passage),
                    pair: None,
                    label,
                });
                words = 0;
            }
            if words > 0 {
                passage.push(' ');
            }
            passage.push_str(sentence);
            words += n;
        }
        if words > 0 {
            side.push(LabelledText {
                document: name.clone(),
                text: passage,
                pair: None,
                label,
            });
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::labelled::Subset;

    #[test]
    fn every_genre_has_validation_and_test_documents() {
        let genres = brown_genres().unwrap();
        assert_eq!(genres.len(), 500);
        let names: BTreeSet<&String> = genres.iter().map(|(_, g, _)| g).collect();
        assert_eq!(names.len(), 15);
        for genre in names {
            for split in [Subset::Valid, Subset::Test, Subset::Train] {
                assert!(
                    genres.iter().any(|(_, g, s)| g == genre && *s == split),
                    "{genre} has no {split:?} document"
                );
            }
        }
        let test = genres.iter().filter(|g| g.2 == Subset::Test).count();
        let valid = genres.iter().filter(|g| g.2 == Subset::Valid).count();
        assert!(
            (90..=110).contains(&test) && (40..=60).contains(&valid),
            "{test} {valid}"
        );
    }
}
