//! The Brown corpus genre task: passages of the bundled Brown documents labelled with their
//! document's genre (15 genres, `data/brown_genres`), split by document into train,
//! validation and test.
//!
//! The split is fixed and stratified: within each genre, documents in file-id order, the
//! document of rank `r` goes to test when `r % 10` is 0 or 5, to validation when it is 3, to
//! train otherwise (about 70/10/20; every genre has at least one validation and one test
//! document). Validation and test documents are held out of pretraining: build the
//! pretraining corpus with [`pretraining_corpus`].

use std::collections::BTreeSet;

use super::{LabelledData, LabelledText, Subset};
use crate::corpus::{Corpus, DocumentBoundary, bundled_data_dir, read_utf8};
use crate::error::Error;

/// `(document name, genre, split)` for every Brown document, names as the corpus gives them
/// (`brown/ca01.txt`).
pub fn brown_genres() -> crate::Result<Vec<(String, String, Subset)>> {
    let path = bundled_data_dir().join("brown_genres");
    let text = read_utf8(&path)?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(id), Some(genre), None) => rows.push((id.to_string(), genre.to_string())),
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "{}:{}: expected `file-id genre`, got {line:?}",
                    path.display(),
                    i + 1
                )));
            }
        }
    }
    rows.sort();
    let mut rank_in_genre = std::collections::BTreeMap::<String, usize>::new();
    Ok(rows
        .into_iter()
        .map(|(id, genre)| {
            let rank = rank_in_genre.entry(genre.clone()).or_insert(0);
            let split = Subset::of_rank(*rank);
            *rank += 1;
            (format!("brown/{id}.txt"), genre, split)
        })
        .collect())
}

/// The documents held out of pretraining: the genre task's validation and test documents.
pub fn held_out_documents() -> crate::Result<BTreeSet<String>> {
    Ok(brown_genres()?
        .into_iter()
        .filter(|(_, _, split)| *split != Subset::Train)
        .map(|(name, _, _)| name)
        .collect())
}

/// The bundled corpus without the held-out documents: what pretraining reads when the genre
/// task is to measure it.
pub fn pretraining_corpus() -> crate::Result<Corpus> {
    let held_out = held_out_documents()?;
    let mut corpus = Corpus::bundled()?;
    corpus.documents.retain(|d| !held_out.contains(&d.name));
    Ok(corpus)
}

/// The genre task: every Brown document cut into passages of whole consecutive sentences of
/// at most `max_words` words (a longer sentence is a passage alone), labelled with its genre.
pub fn load(max_words: usize) -> crate::Result<LabelledData> {
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
                label,
            });
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

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
