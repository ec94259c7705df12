//! Documents, read and tokenized once: corpus sources in several formats, token stores in
//! memory or memory-mapped from disk, [`Documents`] over them with their cached indexes,
//! prepared datasets (tokenized once, resumably, then mapped by every run), the bundled
//! corpus's split, and the data files of fine-tuning and alignment (labelled texts and tagged
//! sentences of one's own, instruction pairs, preference rankings); and grayscale images with
//! their labels (Fashion-MNIST).

pub mod bundled;
pub mod documents;
pub mod images;
pub(crate) mod index;
pub mod instructions;
pub mod labelled;
pub mod labelled_files;
pub mod preferences;
pub mod prepare;
pub mod prepared;
pub mod sources;
pub mod store;
pub mod tokenized;

pub use documents::Documents;
pub use images::Images;
pub use prepared::{Manifest, Prepared};
pub use sources::{Format, Position, Reader, Skipped, Source, list_sources};
pub use store::TokenStore;
pub use tokenized::{TokenizedDocument, tokenize_corpus};
