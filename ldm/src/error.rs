//! The crate's one error type.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LdmError {
    #[error("model configuration: {0}")]
    Config(String),
    #[error("model weights: {0}")]
    Weights(String),
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl LdmError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        LdmError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
