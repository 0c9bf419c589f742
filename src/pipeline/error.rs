//! Pipeline errors: every problem names its field path and, where the file has it, the line
//! and column. All problems found are reported together.

use std::fmt;
use std::path::PathBuf;

pub use super::yaml::Pos;

/// One thing wrong with a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Dotted field path, e.g. `cohort.conditions[1].lesion.diameter_mm.max` (empty = whole file).
    pub path: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl Problem {
    /// A problem at `path`; the position is filled in from the file's locations later.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            pos: None,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read pipeline {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl PipelineError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            PipelineError::Invalid { problems, .. } => problems,
            PipelineError::Read { .. } => &[],
        }
    }
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        let what = if p.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", p.path)
        };
        out.push_str(&format!("error: {what}{}\n", p.message));
        match p.pos {
            Some(pos) => out.push_str(&format!("  --> {file}:{}:{}\n", pos.line, pos.col)),
            None => out.push_str(&format!("  --> {file}\n")),
        }
    }
    let n = problems.len();
    out.push_str(&format!(
        "{n} problem{} in {file}; nothing was written",
        if n == 1 { "" } else { "s" }
    ));
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", p.line, p.col, self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}
