//! An external reader (any AI detector): ROIs go to a folder as NIfTI (`roi_00000.nii.gz`,
//! …) or DICOM (`roi_00000.dcm`, …), the user's command gets the folder and a CSV path and
//! writes `file,score` rows.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Roi, TrialError};
use crate::io::{self, ImageDtype};
use crate::volume::{Grid, Volume};

/// What a DICOM ROI of an arm carries: a synthetic patient/study for the arm's ROIs (each ROI
/// its own series) and the arm's acquisition attributes.
#[derive(Clone, Debug)]
pub struct DicomRois {
    pub study: io::dicom::StudyInfo,
    pub acquisition: io::dicom::SeriesAcquisition,
}

/// How the ROI files are written.
pub enum RoiFiles<'a> {
    /// NIfTI, with this description.
    Nifti(&'a str),
    Dicom(&'a DicomRois),
}

impl RoiFiles<'_> {
    fn name(&self, i: usize) -> String {
        match self {
            RoiFiles::Nifti(_) => format!("roi_{i:05}.nii.gz"),
            RoiFiles::Dicom(_) => format!("roi_{i:05}.dcm"),
        }
    }
}

/// Scores `rois` with `command`, working in `dir`.
pub fn external_scores(
    command: &str,
    dir: &Path,
    rois: &[Roi],
    spacing: [f64; 3],
    files: &RoiFiles,
) -> Result<Vec<f64>, TrialError> {
    let roi_dir = dir.join("rois");
    let _ = std::fs::remove_dir_all(&roi_dir);
    for (i, r) in rois.iter().enumerate() {
        let g = Grid::centered([r.size, r.size, 1], spacing);
        let v = Volume::from_vec(g, r.pixels.clone());
        let bytes = match files {
            RoiFiles::Nifti(descrip) => {
                io::nifti::encode_image(&v, ImageDtype::Float32, true, descrip)?
            }
            RoiFiles::Dicom(d) => {
                let key = format!("roi-{i:05}");
                let mut series = io::dicom::encode_series(
                    &v,
                    &d.study,
                    &key,
                    i as u32 + 1,
                    &format!("trial ROI {i}"),
                    &d.acquisition,
                )?;
                series.remove(0).bytes
            }
        };
        io::atomic::write_atomic(&roi_dir.join(files.name(i)), &bytes)?;
    }
    let csv = dir.join("external_scores.csv");
    let failed = |reason: String| TrialError::External {
        command: command.to_string(),
        reason,
    };
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$0\" \"$1\""))
        .arg(&roi_dir)
        .arg(&csv)
        .status()
        .map_err(|e| failed(format!("did not start: {e}")))?;
    if !status.success() {
        return Err(failed(format!("failed ({status})")));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(&csv)
        .map_err(|e| failed(format!("wrote no {}: {e}", csv.display())))?;
    let mut by_file = BTreeMap::new();
    for (n, record) in reader.records().enumerate() {
        let at = |what: String| failed(format!("{}:{}: {what}", csv.display(), n + 1));
        let record = record.map_err(|e| at(e.to_string()))?;
        let fields: Vec<&str> = record.iter().collect();
        match fields.as_slice() {
            [] | [""] => continue,
            [f, _] if n == 0 && f.eq_ignore_ascii_case("file") => continue,
            [f, s] => {
                let score: f64 = s
                    .parse()
                    .map_err(|_| at(format!("`{s}` is not a number")))?;
                let name = Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                by_file.insert(name, score);
            }
            _ => return Err(at("expected `file,score`".into())),
        }
    }
    (0..rois.len())
        .map(|i| {
            let name = files.name(i);
            by_file
                .get(&name)
                .copied()
                .ok_or_else(|| failed(format!("gave no score for {name}")))
        })
        .collect()
}
