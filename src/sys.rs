//! What this machine can give: memory now available. Used to refuse work (a run, a file read)
//! that would not fit, before it starts.

/// Memory the system can still give (MemAvailable), in bytes; None where unknown.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
