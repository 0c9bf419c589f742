//! The pipeline language: types, loading, validation and the generated JSON Schema.
//!
//! Loading runs in five passes, each reporting every problem it finds with its field path
//! and position: YAML syntax → `acquisition.defaults` merged into each arm → JSON Schema
//! (types, ranges, enums, unknown fields) → typed serde → cross-field rules and arm
//! resolution. Nothing is written before all of them pass.

pub mod arm;
pub mod error;
pub mod prompt;
pub mod schema;
pub mod spec;
pub mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use arm::{Arm, PropertyMap, Protocol};
pub use error::{PipelineError, Problem};
pub use spec::Pipeline;

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
    let (mut doc, locs) = yaml::parse(text).map_err(|issues| {
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

    // 2. `acquisition.defaults` into every arm, so each arm is checked whole; a problem in a
    // field from the defaults is reported where the defaults say it.
    let (origins, merge_problems) = arm::merge_defaults(&mut doc);
    let placed = |problems: Vec<Problem>| -> Vec<Problem> {
        let mut out: Vec<Problem> = problems
            .into_iter()
            .map(|p| {
                let path = origins.locate(&p.path);
                let pos = if p.message.starts_with("unknown field") {
                    locs.find_key(&path)
                } else {
                    locs.find(&path)
                };
                Problem { path, pos, ..p }
            })
            .collect();
        // Defaults merged into several arms report one problem once.
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| seen.insert((p.path.clone(), p.message.clone())));
        out
    };

    // 3. JSON Schema
    let mut schema_problems = merge_problems;
    schema_problems.extend(
        schema::check(&doc)
            .into_iter()
            .map(|(path, message)| Problem::at(path, message)),
    );
    if !schema_problems.is_empty() {
        return Err(invalid(placed(schema_problems)));
    }

    // 4. typed
    let spec: Pipeline = serde_path_to_error::deserialize(&doc).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        invalid(vec![Problem {
            pos: locs.find(&path),
            path,
            message: e.inner().to_string(),
        }])
    })?;

    // 5. cross-field rules, arms resolved into their protocols
    let (arms, problems) = validate::check(&spec, base_dir);
    if !problems.is_empty() {
        return Err(invalid(placed(problems)));
    }

    Ok(Resolved {
        spec,
        arms,
        base_dir: base_dir.to_path_buf(),
        sha256: hex::encode(Sha256::digest(bytes)),
        source: bytes.to_vec(),
    })
}
