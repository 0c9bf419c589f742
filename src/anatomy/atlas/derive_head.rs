//! A real brain template becomes the `head` atlas label map.
//!
//! Input: a skull-stripped T1-weighted template with grey- and white-matter probability maps on
//! one grid (the ICBM 2009a nonlinear symmetric MNI152 template and its tissue maps). Every
//! voxel is painted by a documented rule and counted in [`HeadReport`]:
//!
//! - **brain mask**: T1 > 0 (the template is skull-stripped).
//! - **grey / white matter**: inside the mask where p(GM) + p(WM) ≥ 0.5, the larger of the two
//!   (maximum a posteriori over the two tissue maps).
//! - **CSF**: inside the mask where p(GM) + p(WM) < 0.5 (sulci, cisterns, ventricles).
//! - **lateral ventricles**: CSF parts (6-connected) that come nowhere nearer the mask's edge
//!   than [`VENTRICLE_MIN_DEPTH_MM`]: the ventricular system is enclosed by brain, sulcal and
//!   cisternal CSF opens onto the surface.
//! - Added procedurally, as the template has no skull: shells by distance outside the mask —
//!   subarachnoid **CSF** to [`CSF_SHELL_MM`], **skull** to [`SKULL_OUTER_MM`], **scalp** to
//!   [`SCALP_OUTER_MM`] — on a grid padded by [`BASE_PAD_MM`] below the template's last slice,
//!   so the skull closes under the cerebellum (the real skull base, foramina and face are not
//!   modelled).

use serde::Serialize;

use super::super::lesion::edt_dense;
use super::super::ontology::{CSF, GREY_MATTER, LATERAL_VENTRICLES, SCALP, SKULL, WHITE_MATTER};
use super::derive::components;
use crate::volume::{Grid, Volume};

/// CSF parts whose every voxel lies deeper than this inside the brain mask are ventricles (mm).
/// On the MNI152 2009a template the lateral ventricles' part comes no nearer than 16 mm; the
/// largest part that opens onto the surface (sulci and cisterns) reaches 1 mm.
pub const VENTRICLE_MIN_DEPTH_MM: f64 = 3.0;
/// Subarachnoid CSF between brain and skull (mm).
pub const CSF_SHELL_MM: f64 = 2.5;
/// Outer surface of the skull (mm from the brain): a 6.5 mm calvarium, within the 5–8 mm
/// measured in adults (Lillie et al., Forensic Sci Int 2016, mean about 6–7 mm).
pub const SKULL_OUTER_MM: f64 = 9.0;
/// Outer surface of the scalp (mm from the brain): 5 mm of scalp over the skull.
pub const SCALP_OUTER_MM: f64 = 14.0;
/// Slices added below the template so the shells close under it (mm).
pub const BASE_PAD_MM: f64 = 15.0;

/// What the derivation painted (voxel counts).
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeadReport {
    pub brain_mask_voxels: usize,
    pub grey_matter_voxels: usize,
    pub white_matter_voxels: usize,
    pub csf_in_mask_voxels: usize,
    pub ventricle_voxels: usize,
    pub csf_shell_voxels: usize,
    pub skull_voxels: usize,
    pub scalp_voxels: usize,
    pub pad_slices_below: usize,
}

#[derive(thiserror::Error, Debug)]
pub enum HeadDeriveError {
    #[error("the T1, GM and WM maps must share one grid; got {0:?}, {1:?}, {2:?}")]
    GridMismatch(Box<Grid>, Box<Grid>, Box<Grid>),
    #[error("the T1 template has no voxel above 0: not a skull-stripped brain")]
    EmptyMask,
}

/// The head atlas label map from a skull-stripped T1 and GM/WM probabilities (0–1).
pub fn derive_head(
    t1: &Volume<f32>,
    gm: &Volume<f32>,
    wm: &Volume<f32>,
) -> Result<(Volume<u16>, HeadReport), HeadDeriveError> {
    if t1.grid != gm.grid || t1.grid != wm.grid {
        return Err(HeadDeriveError::GridMismatch(
            Box::new(t1.grid.clone()),
            Box::new(gm.grid.clone()),
            Box::new(wm.grid.clone()),
        ));
    }
    let src = &t1.grid;
    let pad = (BASE_PAD_MM / src.spacing_mm[2]).ceil() as usize;
    let [nx, ny, nz0] = src.dims;
    let grid = Grid {
        dims: [nx, ny, nz0 + pad],
        spacing_mm: src.spacing_mm,
        origin_mm: [
            src.origin_mm[0],
            src.origin_mm[1],
            src.origin_mm[2] - pad as f64 * src.spacing_mm[2],
        ],
    };
    let plane = nx * ny;
    let mut report = HeadReport {
        pad_slices_below: pad,
        ..HeadReport::default()
    };
    let mut labels = Volume::filled(grid.clone(), 0u16);
    let mut mask = vec![false; grid.len()];
    for s in 0..t1.data.len() {
        if t1.data[s] <= 0.0 {
            continue;
        }
        let d = s + pad * plane;
        mask[d] = true;
        let (g, w) = (gm.data[s], wm.data[s]);
        labels.data[d] = if g + w < 0.5 {
            CSF
        } else if g >= w {
            GREY_MATTER
        } else {
            WHITE_MATTER
        };
    }
    report.brain_mask_voxels = mask.iter().filter(|&&m| m).count();
    if report.brain_mask_voxels == 0 {
        return Err(HeadDeriveError::EmptyMask);
    }

    // Depth of every mask voxel below the mask's edge; CSF parts that stay deep are ventricles.
    let depth = dense_edt(&grid, &mask);
    let min_depth_sq = VENTRICLE_MIN_DEPTH_MM * VENTRICLE_MIN_DEPTH_MM;
    let csf: Vec<bool> = labels.data.iter().map(|&l| l == CSF).collect();
    let (part, sizes) = components(&grid, &csf);
    let mut deep = vec![true; sizes.len()];
    for (v, &c) in part.iter().enumerate() {
        if c != 0 && depth[v] <= min_depth_sq {
            deep[c as usize] = false;
        }
    }
    for (l, &c) in labels.data.iter_mut().zip(&part) {
        if c != 0 && deep[c as usize] {
            *l = LATERAL_VENTRICLES;
        }
    }

    // Shells outside the brain by distance from it, computed on a grid with a margin wider
    // than the scalp: the transform counts beyond-the-grid as "brain", which the margin keeps
    // further away than any shell reaches.
    let m = (SCALP_OUTER_MM / grid.spacing_mm.iter().cloned().fold(f64::MAX, f64::min)).ceil()
        as usize
        + 2;
    let big = Grid {
        dims: grid.dims.map(|n| n + 2 * m),
        spacing_mm: grid.spacing_mm,
        origin_mm: [0, 1, 2].map(|a| grid.origin_mm[a] - m as f64 * grid.spacing_mm[a]),
    };
    let mut outside = vec![true; big.len()];
    for (v, &inside) in mask.iter().enumerate() {
        if inside {
            let [i, j, k] = grid.ijk(v);
            outside[big.index(i + m, j + m, k + m)] = false;
        }
    }
    let dist_big = dense_edt(&big, &outside);
    drop(outside);
    for (v, (label, &inside)) in labels.data.iter_mut().zip(&mask).enumerate() {
        if inside {
            continue;
        }
        let [i, j, k] = grid.ijk(v);
        let d = dist_big[big.index(i + m, j + m, k + m)].sqrt();
        *label = if d <= CSF_SHELL_MM {
            CSF
        } else if d <= SKULL_OUTER_MM {
            SKULL
        } else if d <= SCALP_OUTER_MM {
            SCALP
        } else {
            0
        };
    }
    for (v, &l) in labels.data.iter().enumerate() {
        match l {
            GREY_MATTER => report.grey_matter_voxels += 1,
            WHITE_MATTER => report.white_matter_voxels += 1,
            LATERAL_VENTRICLES => report.ventricle_voxels += 1,
            CSF if mask[v] => report.csf_in_mask_voxels += 1,
            CSF => report.csf_shell_voxels += 1,
            SKULL => report.skull_voxels += 1,
            SCALP => report.scalp_voxels += 1,
            _ => {}
        }
    }
    Ok((labels, report))
}

/// Squared distance (mm²) from every voxel of `mask` to the nearest voxel outside it, on the
/// whole grid (0 outside the mask).
fn dense_edt(grid: &Grid, mask: &[bool]) -> Vec<f64> {
    edt_dense(grid, mask, |d2| d2).unwrap_or_else(|| vec![0.0; grid.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic "brain": a 40 mm ball of GM around a 25 mm WM ball holding a 6 mm CSF
    /// cavity (a ventricle), with a CSF groove cut in from the surface (a sulcus). The cavity
    /// becomes a ventricle, the groove stays CSF, and the shells sit at their distances.
    #[test]
    fn ventricles_are_enclosed_csf_and_shells_sit_at_their_distances() {
        let g = Grid::centered([80, 80, 72], [1.5; 3]);
        let (mut t1, mut gm, mut wm) = (
            Volume::filled(g.clone(), 0.0f32),
            Volume::filled(g.clone(), 0.0f32),
            Volume::filled(g.clone(), 0.0f32),
        );
        for v in 0..g.len() {
            let [i, j, k] = g.ijk(v);
            let p = g.world(i, j, k);
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            if r > 40.0 {
                continue;
            }
            t1.data[v] = 100.0;
            let groove = p[0].abs() < 2.0 && p[1] > 25.0;
            if r < 6.0 || groove {
                continue; // CSF: both probabilities 0
            }
            if r < 25.0 {
                wm.data[v] = 0.9;
                gm.data[v] = 0.1;
            } else {
                gm.data[v] = 0.8;
                wm.data[v] = 0.1;
            }
        }
        let (lab, rep) = derive_head(&t1, &gm, &wm).unwrap();
        let at = |p: [f64; 3]| lab.sample_nearest(p).unwrap();
        assert_eq!(at([0.0, 0.0, 0.0]), LATERAL_VENTRICLES);
        assert_eq!(
            at([0.0, 35.0, 0.0]),
            CSF,
            "the groove opens onto the surface"
        );
        assert_eq!(at([0.0, 0.0, 15.0]), WHITE_MATTER);
        assert_eq!(at([0.0, 0.0, 32.0]), GREY_MATTER);
        assert_eq!(at([0.0, -41.5, 0.0]), CSF);
        assert_eq!(at([0.0, -46.0, 0.0]), SKULL);
        assert_eq!(at([0.0, -51.5, 0.0]), SCALP);
        assert_eq!(at([0.0, -56.0, 0.0]), 0);
        // The padding closes the shells below the template's first slice.
        assert_eq!(rep.pad_slices_below, 10);
        assert!(rep.ventricle_voxels > 0 && rep.skull_voxels > rep.scalp_voxels / 2);
    }
}
