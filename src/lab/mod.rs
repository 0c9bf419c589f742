//! The model lab: tools around the latent diffusion model rather than stages of a run —
//! loading training datasets (nnU-Net layout, any label spelling), training (`synthcohort
//! train`) and evaluation (`synthcohort eval-model`). It sits beside the engine at the top of
//! the crate and may use every stage.

pub mod anatomy_check;
pub mod data;
pub mod eval;
pub mod fidelity;
pub mod loss_log;
pub mod train;

use std::path::PathBuf;

/// Why a lab command failed. `Input` problems (a dataset or config that cannot be used) are
/// the user's to fix and exit 2; the rest are failures while running.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Model(#[from] synthcohort_ldm::LdmError),
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    #[error("{op} {}: {source}", path.display())]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl LabError {
    /// The error is in what the user gave (exit code 2), not in running.
    pub fn is_input(&self) -> bool {
        matches!(self, LabError::Input(_) | LabError::Io(_))
    }

    pub(crate) fn file(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.to_path_buf();
        move |source| LabError::File { op, path, source }
    }
}
