//! Atlas templates: label maps derived from real scans ([`derive`]), shipped under
//! `models/atlas-<region>/`, and varied per subject by [`warp`].
//!
//! An atlas is read once per process. Its frame is the real scan's, centred on the world
//! origin like an imported label map (RAS+, mm).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::ontology::{label_by_name, GREY_MATTER, SUBCUTANEOUS_FAT, TORSO_FAT, WHITE_MATTER};
use super::{AnatomyError, Template};
use crate::volume::{Grid, Volume};

pub mod derive;
pub mod derive_chest;
pub mod derive_head;
pub(crate) mod habitus;
pub(crate) mod visceral;
pub(crate) mod warp;

pub use warp::SubjectWarp;

/// An organ the atlas scales to literature norms.
#[derive(Clone, Debug)]
pub struct AtlasOrgan {
    pub id: u16,
    pub name: &'static str,
    /// Centroid (mm, atlas frame).
    pub centroid: [f64; 3],
    /// Volume inside the atlas (mL).
    pub volume_ml: f64,
    /// Radius of the ball of the same volume (mm).
    pub r_eq_mm: f64,
    /// True when the atlas holds only part of the organ's norm volume: the field cut it (it
    /// reaches the first or last slice), or it is a lung, scanned at the patient's breath-hold
    /// rather than at capacity.
    pub cut: bool,
    /// The organ's whole volume (mL) as the atlas takes it: what is in the field, or for a cut
    /// organ the larger of that and the literature mean for the reference adult (so a subject's
    /// organ is the atlas's scaled by the norm's ratio between subject and reference).
    pub full_ml: f64,
}

/// A loaded atlas.
#[derive(Debug)]
pub struct Atlas {
    pub template: Template,
    pub labels: Volume<u16>,
    pub habitus: habitus::Habitus,
    /// The visceral fat's flow field, when the map has torso fat and a subcutaneous band.
    pub visceral: Option<visceral::Visceral>,
    /// Label ids present (sorted, no background), read once: validation asks for them per
    /// lesion condition.
    pub label_ids: Vec<u16>,
    pub organs: Vec<AtlasOrgan>,
    /// `response[i][j]`: organ i's volume changes by k^(3·response[i][j]) when organ j's bump
    /// scales by k (measured once on the atlas). The diagonal is below 1 because a bump tapers;
    /// off-diagonal terms are neighbours caught in a bump (the liver's reaches the right kidney).
    pub response: Vec<Vec<f64>>,
    /// Grey + white matter volume (mL) of a head atlas: the whole head scales to the subject's
    /// brain norm instead of height and organ bumps.
    pub brain_ml: Option<f64>,
}

/// Folder (under the models directory) an atlas template ships in.
pub fn folder(t: Template) -> Option<&'static str> {
    match t {
        Template::Abdomen => Some("atlas-abdomen"),
        Template::Head => Some("atlas-head"),
        Template::Chest => Some("atlas-chest"),
        _ => None,
    }
}

/// The shipped label map of an atlas template.
pub fn labels_path(t: Template) -> Option<PathBuf> {
    folder(t).map(|f| crate::sys::models_dir().join(f).join("labels.nii.gz"))
}

/// The atlas of a template, read once; an error when the template is not an atlas or its file
/// cannot be read.
pub fn load(t: Template) -> Result<&'static Atlas, AnatomyError> {
    static ABDOMEN: OnceLock<Result<Atlas, AnatomyError>> = OnceLock::new();
    static HEAD: OnceLock<Result<Atlas, AnatomyError>> = OnceLock::new();
    static CHEST: OnceLock<Result<Atlas, AnatomyError>> = OnceLock::new();
    let cell = match t {
        Template::Chest => &CHEST,
        Template::Abdomen => &ABDOMEN,
        Template::Head => &HEAD,
        _ => {
            return Err(AnatomyError::Atlas(format!(
                "`{}` is not an atlas template",
                t.name()
            )))
        }
    };
    cell.get_or_init(|| {
        let path = labels_path(t).expect("atlas template has a folder");
        let mut labels = read_shipped(&path)?;
        labels.grid = Grid::centered(labels.grid.dims, labels.grid.spacing_mm);
        Ok(from_labels(t, labels))
    })
    .as_ref()
    .map_err(|e| AnatomyError::Atlas(e.to_string()))
}

/// Reads a shipped atlas label map. These files are written by `synthcohort atlas` (axis-
/// aligned RAS+, positive spacing), so this reader accepts only that; user files go through
/// `io::nifti`, which reorients anything (anatomy sits below io and cannot use it).
fn read_shipped(path: &Path) -> Result<Volume<u16>, AnatomyError> {
    use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
    let err = |what: String| AnatomyError::Atlas(format!("{}: {what}", path.display()));
    let obj = ReaderOptions::new()
        .read_file(path)
        .map_err(|e| err(e.to_string()))?;
    let h = obj.header().clone();
    let dims = [1, 2, 3].map(|a| h.dim[a] as usize);
    let spacing_mm = [1, 2, 3].map(|a| f64::from(h.pixdim[a]));
    let rows = [h.srow_x, h.srow_y, h.srow_z];
    let aligned = (0..3).all(|r| {
        (0..3).all(|c| {
            if r == c {
                rows[r][c] > 0.0
            } else {
                rows[r][c] == 0.0
            }
        })
    });
    if h.sform_code == 0 || !aligned || h.dim[0] != 3 {
        return Err(err(
            "not an axis-aligned RAS+ 3-D label map as `synthcohort atlas` writes".into(),
        ));
    }
    let data: Vec<u16> = obj
        .into_volume()
        .into_ndarray::<u16>()
        .map_err(|e| err(e.to_string()))?
        .reversed_axes()
        .iter()
        .copied()
        .collect();
    if data.len() != dims.iter().product::<usize>() {
        return Err(err(format!("{} voxels for dims {dims:?}", data.len())));
    }
    let origin_mm = [0, 1, 2].map(|a| f64::from(rows[a][3]));
    Ok(Volume::from_vec(
        Grid {
            dims,
            spacing_mm,
            origin_mm,
        },
        data,
    ))
}

/// Builds the per-subject machinery (organ table, habitus geometry) for a label map.
pub fn from_labels(template: Template, labels: Volume<u16>) -> Atlas {
    let habitus = habitus::Habitus::measure(&labels, SUBCUTANEOUS_FAT);
    let organs = measure_organs(&labels);
    // Only where a band stretches with BMI does the visceral fat have anything to follow.
    let organ_ids: Vec<u16> = organs.iter().map(|o| o.id).collect();
    let visceral = (habitus.median_band_mm >= warp::MIN_STRETCHABLE_BAND_MM)
        .then(|| visceral::Visceral::measure(&labels, &habitus, TORSO_FAT, &organ_ids))
        .flatten();
    let response = organs
        .iter()
        .map(|o| warp::bump_response(&labels, o, &organs))
        .collect::<Vec<_>>();
    // Rows per bump → rows per organ.
    let response = (0..organs.len())
        .map(|i| (0..organs.len()).map(|j| response[j][i]).collect())
        .collect();
    let mut label_ids: Vec<u16> = labels.data.iter().copied().filter(|&l| l != 0).collect();
    label_ids.sort_unstable();
    label_ids.dedup();
    let brain_ml = label_ids.contains(&GREY_MATTER).then(|| {
        let n = labels
            .data
            .iter()
            .filter(|&&l| l == GREY_MATTER || l == WHITE_MATTER)
            .count();
        n as f64 * labels.grid.voxel_ml()
    });
    Atlas {
        template,
        labels,
        habitus,
        visceral,
        label_ids,
        organs,
        response,
        brain_ml,
    }
}

fn measure_organs(labels: &Volume<u16>) -> Vec<AtlasOrgan> {
    let g = &labels.grid;
    let mut sums: BTreeMap<u16, ([f64; 3], usize, bool)> = BTreeMap::new();
    let wanted: Vec<(u16, &'static str)> = super::norms::ORGANS
        .iter()
        .filter_map(|n| label_by_name(n).map(|l| (l.id, l.name)))
        .collect();
    for (idx, &l) in labels.data.iter().enumerate() {
        let Some(&(_, name)) = wanted.iter().find(|w| w.0 == l) else {
            continue;
        };
        let [i, j, k] = g.ijk(idx);
        let p = g.world(i, j, k);
        let e = sums.entry(l).or_insert(([0.0; 3], 0, false));
        for (acc, x) in e.0.iter_mut().zip(p) {
            *acc += x;
        }
        e.1 += 1;
        e.2 |= k == 0 || k + 1 == g.dims[2] || name.starts_with("lung");
    }
    wanted
        .into_iter()
        .filter_map(|(id, name)| {
            let (s, n, cut) = *sums.get(&id)?;
            let volume_ml = n as f64 * g.voxel_ml();
            Some(AtlasOrgan {
                id,
                name,
                centroid: s.map(|v| v / n as f64),
                volume_ml,
                r_eq_mm: (3.0 * volume_ml * 1000.0 / (4.0 * std::f64::consts::PI)).cbrt(),
                cut,
                full_ml: if cut {
                    super::norms::organ_norm(name, &super::BodySize::median())
                        .map_or(volume_ml, |n| n.mean_ml.max(volume_ml))
                } else {
                    volume_ml
                },
            })
        })
        .collect()
}
