//! Reading files a user may not control (label-name tables, `prompts.jsonl`, `dataset.json`,
//! configs) with a size bound: a file past its bound is refused before it is read whole, so a
//! 1 GB "config" costs no more memory than the bound.

use std::io::Read;
use std::path::Path;

use super::IoError;

/// Label-name tables, model configs and other small text files.
pub const SMALL_TEXT_BYTES: u64 = 1 << 20;
/// Per-case lists that grow with a dataset (`prompts.jsonl`, `dataset.json`).
pub const DATASET_TEXT_BYTES: u64 = 64 << 20;

/// Reads `path` as UTF-8 text of at most `max_bytes`; `what` names the file's role in errors.
pub fn read_text(path: &Path, max_bytes: u64, what: &str) -> Result<String, IoError> {
    let too_big = || IoError::TooLarge {
        what: what.to_string(),
        path: path.to_path_buf(),
        max_bytes,
    };
    let file = std::fs::File::open(path).map_err(|e| IoError::io("reading", path, e))?;
    if file.metadata().is_ok_and(|m| m.len() > max_bytes) {
        return Err(too_big());
    }
    // The size can change (or be unknown: a pipe), so the read itself is bounded too.
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| IoError::io("reading", path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| IoError::BadText {
        what: what.to_string(),
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_past_the_bound_are_refused_with_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("names.txt");
        std::fs::write(&p, "1 spleen\n").unwrap();
        assert_eq!(read_text(&p, 9, "label-name table").unwrap(), "1 spleen\n");
        let e = read_text(&p, 8, "label-name table")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label-name table") && e.contains("8 bytes"),
            "{e}"
        );
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(read_text(&p, 8, "x")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        // A device that never ends is cut at the bound.
        let e = read_text(Path::new("/dev/zero"), 1000, "config").unwrap_err();
        assert!(matches!(e, IoError::TooLarge { .. }), "{e}");
    }
}
