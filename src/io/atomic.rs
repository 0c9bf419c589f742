//! Write-to-temp-then-rename, so a file under its final name is always complete.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::IoError;

/// Writes `bytes` to `path` atomically: parent folders are created, the bytes go to a
/// uniquely named `.{file_name}.*.tmp` in the same folder (same filesystem, so the rename is
/// atomic; `tempfile` picks the name and removes the file if anything fails), the temp file is
/// fsynced, then persisted over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let file_name = path.file_name().ok_or_else(|| {
        IoError::io(
            "writing",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| IoError::io("creating folder", &dir, e))?;

    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| IoError::io("creating a temp file in", &dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| IoError::io("writing", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| IoError::io("renaming temp file to", path, e.error))?;
    // The rename is only durable once the folder entry is; best effort, since some
    // filesystems refuse to fsync a directory.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_creates_parents_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["out.bin".to_string()]);
    }

    #[test]
    fn failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        // A regular file where a folder should be: create_dir_all must fail.
        let err = write_atomic(&blocker.join("sub/out.bin"), b"y").unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
