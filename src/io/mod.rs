//! Files out (and back in): NIfTI images and label maps, the Parquet manifest, nnU-Net v2 layout,
//! `labels.json`, the preview mosaic, hashes and atomic writes.
//!
//! Encoders return bytes rather than writing, so the engine can hash exactly what it writes and
//! hand the bytes to [`write_atomic`]; a killed run then never leaves a truncated file under a
//! final name.

use std::path::PathBuf;

pub mod atomic;
pub mod bounded;
pub mod dicom;
pub mod hash;
pub mod labels_json;
pub mod manifest;
pub mod nifti;
pub mod nnunet;
pub mod npy;
pub mod preview;

pub use atomic::write_atomic;
pub use hash::{sha256_file, sha256_hex};
pub use labels_json::{label_colour, labels_json, LabelEntry};
pub use manifest::{encode_manifest, manifest_schema, read_manifest, LesionRow, ManifestRow};
pub use nifti::{encode_image, encode_labels, is_gz_path, read_image, read_labels, ImageDtype};
pub use nnunet::{
    check_nnunet_labels, consecutive_labels, dataset_json, nnunet_image_path, nnunet_label_path,
};
pub use preview::{render_mosaic, PreviewTile};

/// Every failure of this module, naming the file (where there is one) and what went wrong.
#[derive(thiserror::Error, Debug)]
pub enum IoError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading NIfTI {}: {source}", path.display())]
    NiftiRead {
        path: PathBuf,
        #[source]
        source: ::nifti::NiftiError,
    },
    #[error("NIfTI {}: {reason}", path.display())]
    BadNifti { path: PathBuf, reason: String },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("writing Parquet manifest: {0}")]
    ManifestWrite(#[source] parquet::errors::ParquetError),
    #[error("reading Parquet manifest {}: {reason}", path.display())]
    ManifestRead { path: PathBuf, reason: String },
    #[error("{what} {}: larger than {max_bytes} bytes, the limit for such a file", path.display())]
    TooLarge {
        what: String,
        path: PathBuf,
        max_bytes: u64,
    },
    #[error("{what} {}: {reason}", path.display())]
    BadText {
        what: String,
        path: PathBuf,
        reason: String,
    },
    #[error("encoding PNG preview: {0}")]
    Png(#[from] png::EncodingError),
}

impl IoError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn encode(what: &'static str, reason: impl Into<String>) -> Self {
        IoError::Encode {
            what,
            reason: reason.into(),
        }
    }
}
