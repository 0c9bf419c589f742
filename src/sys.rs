//! What this machine can give: memory now available (used to refuse work — a run, a file
//! read — that would not fit, before it starts), and where the shipped models and atlases are.

use std::path::{Path, PathBuf};

/// Where shipped models and atlases live: `$SYNTHCOHORT_MODELS`, else the crate's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SYNTHCOHORT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// Memory the system can still give (MemAvailable), in bytes; None where unknown.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
