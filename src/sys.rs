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

/// Hands the heap's free pages back to the system (glibc `malloc_trim`); the engine calls it
/// after each arm and each subject. glibc keeps freed mid-size buffers (below its dynamic mmap threshold, which rises
/// to 32 MiB) in each thread's arena, so without this a process's peak grows with every
/// subject it makes (`brain_dwi`, 16 subjects on 2 jobs: 456 MiB for about 200 MiB a
/// subject). A fixed low mmap threshold bounds it too, but costs every large allocation
/// fresh pages (+20 % time on the quickstart). A no-op on other C libraries.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
