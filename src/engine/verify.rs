//! `synthcohort verify`: re-hashes every file of a run folder against its checksum list
//! and manifest, and reports missing, corrupt and unexpected files.

use super::*;

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    pub checked: usize,
    pub missing: Vec<String>,
    pub corrupt: Vec<String>,
    pub extra: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.extra.is_empty()
    }
}

/// Files a run folder may hold that no checksum covers.
fn unlisted_ok(rel: &str) -> bool {
    rel == CHECKSUMS
        || rel == "provenance.json"
        || rel.starts_with(STATE_DIR)
        || rel.starts_with("manifests/")
        // Trial results are derived from the images (`synthcohort trial` recomputes them);
        // the twin images themselves are listed.
        || (rel.starts_with("trial/") && !rel.starts_with("trial/twins/"))
}

pub fn verify(dir: &Path) -> Result<VerifyReport, EngineError> {
    let list_path = dir.join(CHECKSUMS);
    let text = std::fs::read_to_string(&list_path).map_err(|e| EngineError::NotARun {
        dir: dir.to_path_buf(),
        reason: format!("{}: {e}", list_path.display()),
    })?;
    let mut listed = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let Some((sha, rel)) = line.split_once("  ") else {
            return Err(EngineError::BadRecord {
                path: list_path.clone(),
                line: n + 1,
                reason: "not `sha256  path`".into(),
            });
        };
        listed.insert(rel.to_string(), sha.to_string());
    }
    let mut report = VerifyReport::default();
    for (rel, sha) in &listed {
        let path = dir.join(rel);
        match io::hash::sha256_file(&path) {
            Err(_) => report.missing.push(rel.clone()),
            Ok(h) if &h != sha => report.corrupt.push(rel.clone()),
            Ok(_) => {}
        }
        report.checked += 1;
    }
    // The manifest's own hashes must agree with the list (a consistent forgery of one file
    // and the list would still disagree with the manifest, and vice versa).
    if !report.corrupt.iter().any(|c| c == "manifest.parquet")
        && listed.contains_key("manifest.parquet")
    {
        for r in io::manifest::read_manifest(&dir.join("manifest.parquet"))? {
            for (rel, sha) in [
                (&r.image_path, &r.image_sha256),
                (&r.label_path, &r.label_sha256),
            ] {
                if listed.get(rel) != Some(sha)
                    && !report.corrupt.contains(rel)
                    && !report.missing.contains(rel)
                {
                    report.corrupt.push(rel.clone());
                }
            }
        }
    }
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = d.read_dir() else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut present = Vec::new();
    walk(dir, dir, &mut present);
    for rel in present {
        if !listed.contains_key(&rel) && !unlisted_ok(&rel) {
            report.extra.push(rel);
        }
    }
    report.missing.sort();
    report.corrupt.sort();
    report.corrupt.dedup();
    report.extra.sort();
    Ok(report)
}
