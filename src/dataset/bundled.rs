//! The bundled corpus as pretraining reads it: the Brown documents' genres and their fixed
//! train / validation / test split, and the corpus less the documents the genre task holds
//! out, so that no pretraining run has seen what fine-tuning is scored on.
//!
//! The split is stratified: within each genre, documents in file-id order, the document of
//! rank `r` goes to test when `r % 10` is 0 or 5, to validation when it is 3, to train
//! otherwise (about 70/10/20).

use std::collections::BTreeSet;

use crate::corpus::{Corpus, bundled_data_dir, read_utf8};
use crate::dataset::labelled::Subset;
use crate::error::{Error, Result};

/// `(document name, genre, split)` for every Brown document, names as the corpus gives them
/// (`brown/ca01.txt`).
pub fn brown_genres() -> Result<Vec<(String, String, Subset)>> {
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
pub fn held_out_documents() -> Result<BTreeSet<String>> {
    Ok(brown_genres()?
        .into_iter()
        .filter(|(_, _, split)| *split != Subset::Train)
        .map(|(name, _, _)| name)
        .collect())
}

/// The bundled corpus without the held-out documents: what pretraining reads when the genre
/// task is to measure it.
pub fn pretraining_corpus() -> Result<Corpus> {
    let held_out = held_out_documents()?;
    let mut corpus = Corpus::bundled()?;
    corpus.documents.retain(|d| !held_out.contains(&d.name));
    Ok(corpus)
}
