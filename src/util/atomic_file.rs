//! Files written whole or not at all: a run's `config.json`, a PPO run's state, a dataset's
//! manifest and its preparation checkpoint, an exported model's files, weights saved alone,
//! a dataset's cached index. A crash or a kill leaves the old file or the new one, never half
//! of one, so that what reads them after (a resume, a check) can trust them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary sibling (`NAME.tmp`), flushed to disk, then
/// renamed over `path`.
pub(crate) fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(name);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    commit(&tmp, path)
}

/// Puts the finished file `tmp` in the place of `path`: flushed to disk, then renamed, so that
/// `path` holds the old file or the new one. For files another writer makes (burn's
/// `save_file`, a streamed index).
pub(crate) fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(tmp, e))?;
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = std::env::temp_dir().join(format!("pretext-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        write(&path, "{\"a\": 1}").unwrap();
        write(&path, b"{\"a\": 2}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": 2}");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"]);
        // Into a directory that does not exist: an error naming the file, not a panic.
        let err = write(&dir.join("missing/config.json"), "x").unwrap_err();
        assert!(err.to_string().contains("config.json.tmp"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
