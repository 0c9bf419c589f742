//! The pipeline language: types, loading, validation and the generated JSON Schema.
//!
//! Loading runs in four passes, each reporting every problem it finds with its field path
//! and position: YAML syntax → JSON Schema (types, ranges, enums, unknown fields) → typed
//! serde → cross-field rules. Nothing is written before all four pass.

pub mod error;
pub mod schema;
pub mod spec;
pub mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::{PipelineError, Problem};
pub use spec::Pipeline;
pub use validate::{Arm, Protocol};

/// A pipeline that passed every check, with its arms resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub spec: Pipeline,
    pub arms: Vec<Arm>,
    /// Folder of the pipeline file; relative input paths resolve against it.
    pub base_dir: PathBuf,
    /// sha256 of the pipeline file's bytes.
    pub sha256: String,
    /// The pipeline file's bytes (kept with a run so shards can be merged and checked).
    pub source: Vec<u8>,
}

impl Resolved {
    pub fn resolve_input(&self, p: &str) -> PathBuf {
        self.base_dir.join(p)
    }
}

/// Reads and validates a pipeline file.
pub fn load(path: &Path) -> Result<Resolved, PipelineError> {
    let read_err = |source| PipelineError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Read at most one byte past the limit, so a huge (or endless, like /dev/zero) file costs
    // no more memory than the limit before `parse` refuses it.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(yaml::Limits::PIPELINE.max_bytes as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(read_err)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&bytes, &path.display().to_string(), &base_dir)
}

/// Validates pipeline bytes; `file` names the source in messages.
pub fn parse(bytes: &[u8], file: &str, base_dir: &Path) -> Result<Resolved, PipelineError> {
    let invalid = |problems: Vec<Problem>| PipelineError::Invalid {
        file: file.to_string(),
        problems,
    };
    if bytes.len() > yaml::Limits::PIPELINE.max_bytes {
        return Err(invalid(vec![Problem {
            path: String::new(),
            pos: None,
            message: yaml::too_large(yaml::Limits::PIPELINE.max_bytes),
        }]));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            return Err(invalid(vec![Problem {
                path: String::new(),
                pos: Some(yaml::Pos { line, col }),
                message: "the file is not valid UTF-8 text".into(),
            }]));
        }
    };

    // 1. YAML
    let (doc, locs) = yaml::parse(text).map_err(|issues| {
        invalid(
            issues
                .into_iter()
                .map(|i| Problem {
                    path: i.path,
                    pos: i.pos,
                    message: i.message,
                })
                .collect(),
        )
    })?;

    // 2. JSON Schema
    let schema_problems: Vec<Problem> = schema::check(&doc)
        .into_iter()
        .map(|(path, message)| {
            let pos = if message.starts_with("unknown field") {
                locs.find_key(&path)
            } else {
                locs.find(&path)
            };
            Problem { path, pos, message }
        })
        .collect();
    if !schema_problems.is_empty() {
        return Err(invalid(schema_problems));
    }

    // 3. typed
    let spec: Pipeline = serde_path_to_error::deserialize(&doc).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        invalid(vec![Problem {
            pos: locs.find(&path),
            path,
            message: e.inner().to_string(),
        }])
    })?;

    // 4. cross-field rules
    let (arms, mut problems) = validate::check(&spec, base_dir);
    if !problems.is_empty() {
        for p in &mut problems {
            p.pos = locs.find(&p.path);
        }
        return Err(invalid(problems));
    }

    Ok(Resolved {
        spec,
        arms,
        base_dir: base_dir.to_path_buf(),
        sha256: hex::encode(Sha256::digest(bytes)),
        source: bytes.to_vec(),
    })
}
