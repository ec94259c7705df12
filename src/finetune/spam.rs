//! The SpamAssassin task: e-mail bodies labelled spam or ham (`data/spam_assassin.jsonl`,
//! 750 of each, built by `scripts/build_spam.py`; see `data/README.md`).
//!
//! The file carries its own fixed split (70/10/20 by rank within each class, the rule of
//! [`Subset::of_rank`]). None of the e-mails is in the pretraining corpus, so no document
//! has to be held out of pretraining for this task.

use std::path::Path;

use serde::Deserialize;

use crate::corpus::bundled_data_dir;
use crate::dataset::labelled::{LabelledData, LabelledText, Subset, json_lines, line_fault};
use crate::error::Result;

/// The classes, in label order.
pub const LABELS: [&str; 2] = ["ham", "spam"];

/// One line of the file.
#[derive(Deserialize)]
struct Message {
    id: String,
    label: String,
    split: String,
    text: String,
}

/// The bundled e-mails.
pub fn load() -> Result<LabelledData> {
    load_from(&bundled_data_dir().join("spam_assassin.jsonl"))
}

/// E-mails from a file in the bundled format: one JSON object a line with `id`, `label`
/// (`ham` or `spam`), `split` (`train`, `valid` or `test`) and `text`.
pub fn load_from(path: &Path) -> Result<LabelledData> {
    let mut data = LabelledData {
        labels: LABELS.iter().map(|l| l.to_string()).collect(),
        ..LabelledData::default()
    };
    for (line, message) in json_lines::<Message>(path)? {
        let fault = |m: String| line_fault(path, line, m);
        let label = LABELS
            .iter()
            .position(|l| *l == message.label)
            .ok_or_else(|| fault(format!("label {:?} is not ham or spam", message.label)))?;
        let subset = Subset::parse(&message.split).map_err(fault)?;
        data.subset_mut(subset).push(LabelledText {
            document: message.id,
            text: message.text,
            pair: None,
            label: label as u32,
        });
    }
    data.check_nonempty(path)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn the_bundled_emails_are_balanced_and_split() {
        let data = load().unwrap();
        for (texts, n) in [(&data.train, 1050), (&data.valid, 150), (&data.test, 300)] {
            assert_eq!(texts.len(), n);
            let spam = texts.iter().filter(|t| t.label == 1).count();
            assert_eq!(2 * spam, n, "half of each subset is spam");
            assert!(texts.iter().all(|t| !t.text.trim().is_empty()));
        }
        // No e-mail is in two subsets.
        let mut ids: Vec<&str> = [&data.train, &data.valid, &data.test]
            .iter()
            .flat_map(|s| s.iter().map(|t| t.document.as_str()))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1500);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = std::env::temp_dir().join(format!("pretext-spam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.jsonl");
        let good = r#"{"id":"a","group":"g","label":"ham","split":"train","text":"hi"}"#;
        for (second, expect) in [
            (
                r#"{"id":"b","label":"eggs","split":"train","text":"x"}"#,
                "line 2: label",
            ),
            (
                r#"{"id":"b","label":"spam","split":"dev","text":"x"}"#,
                "line 2: split",
            ),
            ("{not json", "line 2:"),
        ] {
            std::fs::write(&path, format!("{good}\n{second}\n")).unwrap();
            let err = load_from(&path).unwrap_err();
            assert!(
                matches!(err, Error::Json { .. }) && err.to_string().contains(expect),
                "{err}"
            );
        }
        std::fs::write(&path, format!("{good}\n")).unwrap();
        assert!(matches!(load_from(&path), Err(Error::EmptyCorpus(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
