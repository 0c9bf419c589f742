//! Unlabeled images for the autoencoder (`unlabeled_images` in the training config): CT
//! volumes without a segmentation. Their label map is the atlas's labelling of a body's
//! unsegmented voxels by Hounsfield window (body outline, subcutaneous and torso fat, skeletal
//! muscle, soft tissue, intestinal gas: [`crate::anatomy::atlas::derive`]), so the autoencoder
//! is conditioned on them as on labelled data. Organs come out as muscle or soft tissue, which
//! is why the denoiser (which learns where organs lie) and the class statistics never see them.

use std::path::{Path, PathBuf};

use super::err;
use crate::anatomy::atlas::derive::derive;
use crate::anatomy::ontology;
use crate::lab::LabError;
use crate::volume::Volume;

/// One unlabeled image as the model card lists it.
#[derive(Clone, Debug)]
pub struct Unlabeled {
    pub path: PathBuf,
    pub sha256: String,
    /// The file's own grid (before any `resample_mm`).
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
}

/// `paths` with relative ones taken from `base` (the training config's folder).
pub fn resolve(paths: &[PathBuf], base: &Path) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        })
        .collect()
}

/// The HU-window tissue labels (ontology ids) of an unsegmented CT, on the CT's own grid.
pub fn tissue_labels(ct: &Volume<f32>, path: &Path) -> Result<Volume<u16>, LabError> {
    let none = Volume::filled(ct.grid.clone(), 0u16);
    let (padded, _) = derive(ct, &none).map_err(|e| err(format!("{}: {e}", path.display())))?;
    // `derive` pads x and y to complete outlines a field of view cut; the image's voxels sit
    // at a whole-voxel offset inside that grid.
    let off = [0, 1, 2].map(|a| {
        ((ct.grid.origin_mm[a] - padded.grid.origin_mm[a]) / ct.grid.spacing_mm[a]).round() as usize
    });
    let [nx, ny, nz] = ct.grid.dims;
    let mut out = Vec::with_capacity(ct.grid.len());
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                out.push(padded.get(i + off[0], j + off[1], k + off[2]));
            }
        }
    }
    Ok(Volume::from_vec(ct.grid.clone(), out))
}

/// Model class of each voxel of an ontology label map, by name; a tissue the model has no
/// class for is background.
pub fn to_classes(labels: &[u16], classes: &[String]) -> Vec<u8> {
    let mut lut: Vec<(u16, u8)> = Vec::new();
    labels
        .iter()
        .map(|&id| {
            if let Some(&(_, c)) = lut.iter().find(|(l, _)| *l == id) {
                return c;
            }
            let c = ontology::label_by_id(id)
                .and_then(|l| classes.iter().position(|k| k == l.name))
                .unwrap_or(0) as u8;
            lut.push((id, c));
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A body of air-bounded fat around muscle, with gas inside: fat near the skin is
    /// subcutaneous fat, the muscle skeletal muscle, the gas intestinal gas, outside is
    /// background; names the model lacks (torso fat here) are background too.
    #[test]
    fn hu_windows_label_fat_muscle_and_gas_by_the_models_names() {
        let g = Grid::centered([40, 36, 3], [3.0, 3.0, 3.0]);
        let mut ct = Volume::filled(g.clone(), -1000.0f32);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let p = g.world(i, j, k);
            let r = (p[0] / 45.0).hypot(p[1] / 40.0);
            if r <= 1.0 {
                ct.data[idx] = if r > 0.75 { -100.0 } else { 50.0 };
            }
            if p[0].hypot(p[1]) < 6.0 {
                ct.data[idx] = -900.0;
            }
        }
        let labels = tissue_labels(&ct, Path::new("ct.nii.gz")).unwrap();
        assert_eq!(labels.grid, g);
        let classes: Vec<String> = [
            "background",
            "liver",
            "subcutaneous_fat",
            "skeletal_muscle",
            "intestinal_gas",
        ]
        .map(String::from)
        .to_vec();
        let c = Volume::from_vec(g.clone(), to_classes(&labels.data, &classes));
        let at = |x: f64, y: f64| c.sample_nearest([x, y, 0.0]).unwrap();
        assert_eq!(at(0.0, 36.0), 2, "fat ring");
        assert_eq!(at(25.0, 0.0), 3, "muscle");
        assert_eq!(at(0.0, 0.0), 4, "gas");
        assert_eq!(at(58.0, 52.0), 0, "air");
        assert!(!c.data.contains(&1), "no liver without a segmentation");
        // Without a subcutaneous fat class the ring is background.
        let c = to_classes(&labels.data, &classes[..2]);
        assert!(c.iter().all(|&v| v == 0));
    }
}
