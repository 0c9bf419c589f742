//! The training cases as raw files in the model folder (`<out>/cache/`), written one case at a
//! time — read, resampled, labels mapped to the model's classes — and read back by crops
//! ([`DiskCases`]), so `synthcohort train` holds about one case, not the dataset.

use std::path::{Path, PathBuf};

use synthcohort_ldm::train::{CaseParts, DiskCaseWriter, DiskCases};

use super::unlabeled::{self, Unlabeled};
use super::{class_lut, err, resample_case, Listing, RawCase};
use crate::io;
use crate::lab::LabError;

/// The cache folder's name inside the model folder.
pub const CACHE_DIR: &str = "cache";

/// The cache folder, removed when dropped: at the end of a run, successful or not (a run
/// killed outright leaves it, and the next run in that folder clears it).
pub struct CacheDir(PathBuf);

impl CacheDir {
    /// `<out>/cache`, emptied of an earlier run's cache. Refuses a folder holding anything
    /// a cache does not, rather than delete what is not ours.
    pub fn create(out: &Path) -> Result<Self, LabError> {
        let dir = out.join(CACHE_DIR);
        if dir.exists() {
            let entries = std::fs::read_dir(&dir).map_err(LabError::file("cannot read", &dir))?;
            for e in entries {
                let e = e.map_err(LabError::file("cannot read", &dir))?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                let ours = name.starts_with("index.json")
                    || [".f32", ".u8"].iter().any(|x| {
                        name.strip_suffix(x)
                            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
                    });
                if !ours || !e.path().is_file() {
                    return Err(err(format!(
                        "{}: holds {name}, which is not a training cache's; move it away (train writes its case cache there)",
                        dir.display()
                    )));
                }
            }
            std::fs::remove_dir_all(&dir).map_err(LabError::file("cannot remove", &dir))?;
        }
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a prepared cache holds beyond the cases.
pub struct Prepared {
    pub cases: DiskCases,
    /// The unlabeled images written (after the labelled cases), for the model card.
    pub unlabeled: Vec<Unlabeled>,
}

/// Writes the `train` subjects (then the unlabeled images, marked so) into `dir`, one at a
/// time, each resampled to `resample` when given and its labels mapped to `classes`.
/// `unlabeled`: (path, SHA-256 hex) of each unlabeled image. `progress(k)` after each.
pub fn prepare(
    listing: &Listing,
    train: &[usize],
    classes: &[String],
    resample: Option<[f64; 3]>,
    unlabeled: &[(PathBuf, String)],
    dir: &Path,
    progress: &mut dyn FnMut(usize),
) -> Result<Prepared, LabError> {
    let channels = listing.subjects.first().map_or(1, |s| s.images.len());
    let mut w = DiskCaseWriter::create(dir, channels)?;
    let lut = class_lut(&listing.class_of_id, classes);
    for (k, &i) in train.iter().enumerate() {
        let mut raw = listing.read_case(i)?;
        if let Some(s) = resample {
            resample_case(&mut raw, s)?;
        }
        let mapped: Vec<u8> = raw.labels.data.iter().map(|&l| lut[l as usize]).collect();
        write(&mut w, &raw, &mapped, true)?;
        progress(k + 1);
    }
    let mut listed = Vec::new();
    for (k, (path, sha256)) in unlabeled.iter().enumerate() {
        let ct =
            io::nifti::read_image(path).map_err(|e| err(format!("`unlabeled_images`: {e}")))?;
        listed.push(Unlabeled {
            path: path.clone(),
            sha256: sha256.clone(),
            dims: ct.grid.dims,
            spacing_mm: ct.grid.spacing_mm,
        });
        let labels = unlabeled::tissue_labels(&ct, path)?;
        let mut raw = RawCase {
            name: path.display().to_string(),
            channels: vec![ct],
            labels,
            prompt: String::new(),
        };
        if let Some(s) = resample {
            resample_case(&mut raw, s)?;
        }
        let mapped = unlabeled::to_classes(&raw.labels.data, classes);
        write(&mut w, &raw, &mapped, false)?;
        progress(train.len() + k + 1);
    }
    Ok(Prepared {
        cases: w.finish()?,
        unlabeled: listed,
    })
}

fn write(
    w: &mut DiskCaseWriter,
    raw: &RawCase,
    classes: &[u8],
    labelled: bool,
) -> Result<(), LabError> {
    let channels: Vec<&[f32]> = raw.channels.iter().map(|c| &c.data[..]).collect();
    let g = &raw.labels.grid;
    w.add(&CaseParts {
        channels: &channels,
        classes,
        dims: g.dims,
        spacing_mm: g.spacing_mm.map(|s| s as f32),
        prompt: &raw.prompt,
        labelled,
    })?;
    Ok(())
}
