//! Indexes over documents (where each segment or sentence-pair chunk starts): fixed-width rows
//! of `u64`, built in one pass so that a task finds example `i` in O(1). Over a prepared
//! dataset an index is cached beside it (`index/NAME-KEY.bin`) and memory-mapped, as
//! Megatron caches its sample indexes: built once, then opened in no time and resident only
//! where a batch reads it.
//!
//! A file holds the rows, then a trailer of four `u64`: rows, an extra value of the index's
//! own (such as the longest segment), [`MAGIC`], and the width.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::documents::Documents;
use super::store::{Bytes, ReadCounter, TokenStore, map_random, u64_at};
use crate::error::{Error, Result};

/// The subfolder of a prepared dataset its indexes are cached in.
pub(crate) const INDEX_DIR: &str = "index";

/// Marks an index file as complete and of this layout.
const MAGIC: u64 = u64::from_le_bytes(*b"ptxidx01");

/// Rows of `width` `u64`s.
#[derive(Debug)]
pub(crate) struct Table {
    bytes: Bytes,
    width: usize,
    rows: usize,
    extra: u64,
    reads: ReadCounter,
}

/// Where [`Table::build`]'s pass puts rows.
pub(crate) struct RowSink<'a> {
    out: &'a mut dyn Write,
    width: usize,
    rows: usize,
    place: &'a Path,
    /// The store the pass reads, whose mapped pages it gives back as it goes.
    store: &'a TokenStore,
}

/// Rows between two returns of the pages a pass has read: a few megabytes of offsets, so that
/// indexing a corpus of any size keeps the process's peak memory flat.
const RELEASE_EVERY: usize = 1 << 16;

impl RowSink<'_> {
    /// Appends a row of the table's width.
    pub fn push(&mut self, row: &[u64]) -> Result<()> {
        debug_assert_eq!(row.len(), self.width);
        for value in row {
            self.out
                .write_all(&value.to_le_bytes())
                .map_err(|e| Error::io(self.place, e))?;
        }
        self.rows += 1;
        if self.rows.is_multiple_of(RELEASE_EVERY) {
            self.store.release();
        }
        Ok(())
    }
}

impl Table {
    /// The index `name` (which must say every parameter it depends on) over `documents`:
    /// read from the cache when there, else built by `fill`, which pushes the rows and returns
    /// the extra value. Documents in memory keep their index in memory, and so does a
    /// read-only dataset, whose cache cannot be written.
    pub fn build(
        documents: &Documents,
        name: &str,
        width: usize,
        fill: impl FnOnce(&mut RowSink) -> Result<u64>,
    ) -> Result<Self> {
        let cached = documents.store().dir.as_deref().map(|dir| {
            dir.join(INDEX_DIR)
                .join(format!("{name}-{:016x}.bin", documents.key()))
        });
        if let Some(path) = &cached {
            if let Some(table) = Self::open(path, width) {
                return Ok(table);
            }
            let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
            let created = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::File::create(&tmp));
            if let Ok(file) = created {
                let table = Self::write(file, &tmp, path, width, documents.store(), fill)?;
                documents.store().release();
                return Ok(table);
            }
        }
        let mut bytes = Vec::new();
        let mut sink = RowSink {
            out: &mut bytes,
            width,
            rows: 0,
            place: Path::new("memory"),
            store: documents.store(),
        };
        let extra = fill(&mut sink)?;
        let rows = sink.rows;
        Ok(Self {
            bytes: Bytes::Owned(bytes),
            width,
            rows,
            extra,
            reads: ReadCounter::default(),
        })
    }

    /// The cached index at `path`, if it is there and whole.
    fn open(path: &Path, width: usize) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        let map = map_random(&file).ok()?;
        let words = map.len() / 8;
        if !map.len().is_multiple_of(8) || words < 4 {
            return None;
        }
        let trailer = |k: usize| u64_at(&map, words - 4 + k);
        let rows = trailer(0) as usize;
        if trailer(2) != MAGIC || trailer(3) as usize != width || rows * width + 4 != words {
            return None;
        }
        let extra = trailer(1);
        Some(Self {
            bytes: map,
            width,
            rows,
            extra,
            reads: ReadCounter::default(),
        })
    }

    /// Builds the index into `file` (at `tmp`), then puts it in the place of `path`.
    fn write(
        file: std::fs::File,
        tmp: &Path,
        path: &Path,
        width: usize,
        store: &TokenStore,
        fill: impl FnOnce(&mut RowSink) -> Result<u64>,
    ) -> Result<Self> {
        let mut out = BufWriter::new(file);
        let mut sink = RowSink {
            out: &mut out,
            width,
            rows: 0,
            place: tmp,
            store,
        };
        let extra = fill(&mut sink)?;
        let rows = sink.rows;
        for value in [rows as u64, extra, MAGIC, width as u64] {
            out.write_all(&value.to_le_bytes())
                .map_err(|e| Error::io(tmp, e))?;
        }
        out.into_inner()
            .map_err(|e| Error::io(tmp, e.into_error()))?;
        crate::util::atomic_file::commit(tmp, path)?;
        Self::open(path, width)
            .ok_or_else(|| Error::io(path, std::io::Error::other("unreadable after writing")))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Column `col` of row `row`.
    pub fn get(&self, row: usize, col: usize) -> u64 {
        if self.reads.tick() {
            self.bytes.release();
        }
        u64_at(&self.bytes, row * self.width + col)
    }

    /// The index's extra value.
    pub fn extra(&self) -> u64 {
        self.extra
    }
}
