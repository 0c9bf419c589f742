//! A real chest CT with a heart mask becomes the `chest` atlas label map.
//!
//! The chest CT in the reference data has no organ segmentation, only a heart mask. The
//! structures a chest needs are segmented here from the CT by documented Hounsfield rules,
//! counted in [`ChestReport`]; the result then goes through [`super::derive::derive`] like a
//! segmentation, which adds the body outline, fat, muscle and gas by its windows.
//!
//! - **air tree**: the largest 6-connected part of HU ≤ −500 inside the body (lungs and
//!   airways; the body is closed per slice as in `derive`).
//! - **airways** (`trachea`: trachea and bronchi): the part of the air tree below
//!   [`AIRWAY_LUMEN_HU`] connected to the air tree's topmost slice near the midline (the
//!   tracheal lumen is air; lung parenchyma at inspiration reads −900…−750 HU).
//! - **lungs** (`lung_left`, `lung_right`): the air tree without the airways; its two largest
//!   parts, the one further toward +x the right (RAS+: +x is the patient's right). If they
//!   touch, the split is at the airways' midline; small air parts left over go to the
//!   derivation (gas).
//! - **pulmonary vessels**: voxels above −500 HU enclosed by a lung on their axial slice
//!   (vessels and fissures inside the lung's outline).
//! - **heart**: the mask.
//! - **great vessels** (contrast blood pool outside the heart: aorta, pulmonary trunk, cavae,
//!   arch branches): HU [`BLOOD_MIN_HU`]…[`BLOOD_MAX_HU`], opened by the 6-neighbour cross
//!   (cutting the one-voxel partial-volume bridges where the aorta touches the spine),
//!   connected to the heart.
//! - **bone**: HU > [`BONE_MIN_HU`] outside the heart and blood pool (ribs, spine, sternum,
//!   scapulae, clavicles; one class, the CT does not say which bone is which).

use std::collections::VecDeque;

use serde::Serialize;

use super::super::ontology::{
    BONE, GREAT_VESSELS, HEART, LUNG_LEFT, LUNG_RIGHT, PULMONARY_VESSELS, TRACHEA,
};
use super::derive::{close_slices, components, flood_2d, largest_component, BODY_HU};
use crate::volume::{neighbours6, Grid, Volume};

/// Airway lumen: below this (HU) in the air tree.
pub const AIRWAY_LUMEN_HU: f32 = -925.0;
/// Airway seeds: air-tree voxels on the topmost slice within this of the body's centre line
/// (mm).
pub const AIRWAY_SEED_MM: f64 = 40.0;
/// Contrast blood pool window (HU): enhanced blood at CT angiography reads 250–600 HU; the
/// upper limit keeps cortical bone out.
pub const BLOOD_MIN_HU: f32 = 200.0;
pub const BLOOD_MAX_HU: f32 = 900.0;
/// Bone: above this (HU) outside the blood pool.
pub const BONE_MIN_HU: f32 = 250.0;

/// What the segmentation painted (voxel counts).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChestReport {
    pub air_tree_voxels: usize,
    pub airway_voxels: usize,
    pub lung_left_voxels: usize,
    pub lung_right_voxels: usize,
    pub pulmonary_vessel_voxels: usize,
    pub heart_voxels: usize,
    pub great_vessel_voxels: usize,
    pub bone_voxels: usize,
    /// True when the lungs touched after the airways were removed and were split at the
    /// airways' midline.
    pub split_at_midline: bool,
}

#[derive(thiserror::Error, Debug)]
pub enum ChestError {
    #[error("the CT and the heart mask are on different grids: {0:?} vs {1:?}")]
    GridMismatch(Box<Grid>, Box<Grid>),
    #[error("no air inside the body: not a chest CT")]
    NoLungs,
}

/// Segments a chest CT (HU) with its heart mask (non-zero = heart) into ontology ids on the
/// CT's grid; 0 where [`super::derive::derive`] decides.
pub fn segment_chest(
    ct: &Volume<f32>,
    heart: &Volume<u16>,
) -> Result<(Volume<u16>, ChestReport), ChestError> {
    if ct.grid != heart.grid {
        return Err(ChestError::GridMismatch(
            Box::new(ct.grid.clone()),
            Box::new(heart.grid.clone()),
        ));
    }
    let g = &ct.grid;
    let [nx, ny, nz] = g.dims;
    let plane = nx * ny;
    let mut rep = ChestReport::default();
    let hu = |v: usize| ct.data[v];

    // Body, closed per slice (as the atlas derivation does).
    let mut body = close_slices(g, |v| hu(v) > BODY_HU);
    largest_component(g, &mut body);

    // Air tree: lungs and airways.
    let mut tree: Vec<bool> = (0..g.len()).map(|v| body[v] && hu(v) <= BODY_HU).collect();
    rep.air_tree_voxels = largest_component(g, &mut tree).0;
    if rep.air_tree_voxels == 0 {
        return Err(ChestError::NoLungs);
    }

    // Airways: lumen grown from the top of the tree near the midline.
    let k_top = (0..nz)
        .rev()
        .find(|&k| (0..plane).any(|p| tree[k * plane + p]))
        .unwrap_or(0);
    let top_slice: Vec<usize> = (k_top * plane..(k_top + 1) * plane).collect();
    let centre_x = mean_x(g, top_slice.into_iter().filter(|&v| body[v])).unwrap_or(0.0);
    let mut airway = vec![false; g.len()];
    let mut queue = VecDeque::new();
    for v in k_top * plane..(k_top + 1) * plane {
        let [i, j, k] = g.ijk(v);
        if tree[v]
            && hu(v) < AIRWAY_LUMEN_HU
            && (g.world(i, j, k)[0] - centre_x).abs() <= AIRWAY_SEED_MM
        {
            airway[v] = true;
            queue.push_back(v);
        }
    }
    while let Some(v) = queue.pop_front() {
        for q in neighbours6(g, v) {
            if !airway[q] && tree[q] && hu(q) < AIRWAY_LUMEN_HU {
                airway[q] = true;
                queue.push_back(q);
            }
        }
    }

    // Lungs: the two largest parts of the rest, by side.
    let rest: Vec<bool> = (0..g.len()).map(|v| tree[v] && !airway[v]).collect();
    let (comp, sizes) = components(g, &rest);
    let mut order: Vec<usize> = (1..sizes.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(sizes[c]));
    let mut side = vec![0u16; g.len()];
    let centroid_x = |c: u32| mean_x(g, (0..g.len()).filter(|&v| comp[v] == c)).unwrap_or(0.0);
    let airway_x = mean_x(g, (0..g.len()).filter(|&v| airway[v])).unwrap_or(centre_x);
    let two_parts = order.len() >= 2 && sizes[order[1]] * 5 >= sizes[order[0]];
    if two_parts {
        // The part further toward +x is the right lung.
        let (a, b) = (order[0], order[1]);
        let right = if centroid_x(a as u32) >= centroid_x(b as u32) {
            a
        } else {
            b
        };
        for &c in &order[..2] {
            let id = if c == right { LUNG_RIGHT } else { LUNG_LEFT };
            for (v, &cv) in comp.iter().enumerate() {
                if cv == c as u32 {
                    side[v] = id;
                }
            }
        }
    } else if let Some(&c) = order.first() {
        rep.split_at_midline = true;
        for (v, &cv) in comp.iter().enumerate() {
            if cv == c as u32 {
                let [i, j, k] = g.ijk(v);
                side[v] = if g.world(i, j, k)[0] > airway_x {
                    LUNG_RIGHT
                } else {
                    LUNG_LEFT
                };
            }
        }
    }

    let mut labels = vec![0u16; g.len()];
    for v in 0..g.len() {
        if heart.data[v] != 0 {
            labels[v] = HEART;
        } else if airway[v] {
            labels[v] = TRACHEA;
        } else if side[v] != 0 {
            labels[v] = side[v];
        }
    }

    // Pulmonary vessels: non-air inside a lung's outline on its slice.
    for k in 0..nz {
        for lung in [LUNG_LEFT, LUNG_RIGHT] {
            let wall: Vec<bool> = (0..plane).map(|p| side[k * plane + p] == lung).collect();
            if !wall.iter().any(|&w| w) {
                continue;
            }
            // Outside the lung's outline: reached from the border without crossing the lung.
            let outside = flood_2d(nx, ny, &wall);
            for (p, &out) in outside.iter().enumerate() {
                let v = k * plane + p;
                if !out && labels[v] == 0 && hu(v) > BODY_HU {
                    labels[v] = PULMONARY_VESSELS;
                }
            }
        }
    }

    // Great vessels: the opened contrast blood pool connected to the heart.
    let pool: Vec<bool> = (0..g.len())
        .map(|v| labels[v] == 0 && body[v] && (BLOOD_MIN_HU..BLOOD_MAX_HU).contains(&hu(v)))
        .collect();
    let pool = open_3d(g, &pool);
    let mut seen = vec![false; g.len()];
    let mut queue: VecDeque<usize> = (0..g.len()).filter(|&v| heart.data[v] != 0).collect();
    for &v in &queue {
        seen[v] = true;
    }
    while let Some(v) = queue.pop_front() {
        for q in neighbours6(g, v) {
            if !seen[q] && pool[q] {
                seen[q] = true;
                labels[q] = GREAT_VESSELS;
                queue.push_back(q);
            }
        }
    }

    // Bone: what is left above the bone threshold.
    for v in 0..g.len() {
        if labels[v] == 0 && body[v] && hu(v) > BONE_MIN_HU {
            labels[v] = BONE;
        }
    }
    for &l in &labels {
        match l {
            TRACHEA => rep.airway_voxels += 1,
            LUNG_LEFT => rep.lung_left_voxels += 1,
            LUNG_RIGHT => rep.lung_right_voxels += 1,
            PULMONARY_VESSELS => rep.pulmonary_vessel_voxels += 1,
            HEART => rep.heart_voxels += 1,
            GREAT_VESSELS => rep.great_vessel_voxels += 1,
            BONE => rep.bone_voxels += 1,
            _ => {}
        }
    }
    Ok((Volume::from_vec(g.clone(), labels), rep))
}

/// Binary opening by the 6-neighbour cross.
fn open_3d(g: &Grid, m: &[bool]) -> Vec<bool> {
    let interior = |v: usize| neighbours6(g, v).count() == 6;
    let eroded: Vec<bool> = (0..m.len())
        .map(|v| m[v] && interior(v) && neighbours6(g, v).all(|q| m[q]))
        .collect();
    (0..m.len())
        .map(|v| eroded[v] || (m[v] && neighbours6(g, v).any(|q| eroded[q])))
        .collect()
}

/// Mean world x (mm) of the voxels `vs`; None for none.
fn mean_x(g: &Grid, vs: impl Iterator<Item = usize>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for v in vs {
        let [i, j, k] = g.ijk(v);
        s += g.world(i, j, k)[0];
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic chest on a 2 mm grid: a soft-tissue body (40 HU) holding two lungs
    /// (−850 HU ellipsoids, the right one at +x, each with a 60 HU vessel), a trachea (−1000 HU)
    /// from the top slice down to the carina, a heart (mask, 450 HU blood) with an aorta (450 HU
    /// tube) rising from it, and a spine (700 HU) behind. Each rule finds its structure.
    #[test]
    fn each_rule_finds_its_structure() {
        let g = Grid::centered([100, 80, 70], [2.0; 3]);
        let mut ct = Volume::filled(g.clone(), -1000.0f32);
        let mut heart = Volume::filled(g.clone(), 0u16);
        for v in 0..g.len() {
            let [i, j, k] = g.ijk(v);
            let [x, y, z] = g.world(i, j, k);
            let inside_ell = |c: [f64; 3], r: [f64; 3]| {
                ((x - c[0]) / r[0]).powi(2)
                    + ((y - c[1]) / r[1]).powi(2)
                    + ((z - c[2]) / r[2]).powi(2)
                    <= 1.0
            };
            if (x / 90.0).powi(2) + (y / 70.0).powi(2) > 1.0 {
                continue; // air outside the body
            }
            let mut hu = 40.0;
            for side in [-1.0, 1.0] {
                if inside_ell([side * 40.0, 0.0, 0.0], [28.0, 45.0, 55.0]) {
                    hu = -850.0;
                    if ((x - side * 40.0).powi(2) + (y - 10.0).powi(2)).sqrt() < 3.0 {
                        hu = 60.0; // a vessel running through the lung
                    }
                }
            }
            if x.hypot(y + 10.0) < 7.0 && z > 20.0 {
                hu = -1000.0; // trachea from the carina up
            }
            if z > 20.0 && z < 24.0 && (x.abs() < 34.0) && (y + 10.0).abs() < 4.0 {
                hu = -1000.0; // main bronchi into each lung
            }
            if inside_ell([-5.0, 35.0, -25.0], [22.0, 20.0, 22.0]) {
                hu = 450.0;
                heart.data[v] = 1;
            }
            if (x + 5.0).hypot(y - 25.0) < 6.0 && z > -25.0 && z < 40.0 && heart.data[v] == 0 {
                hu = 450.0; // aorta rising from the heart
            }
            if x.hypot(y + 50.0) < 10.0 {
                hu = 700.0; // spine
            }
            ct.data[v] = hu as f32;
        }
        let (lab, rep) = segment_chest(&ct, &heart).unwrap();
        let at = |p: [f64; 3]| lab.sample_nearest(p).unwrap();
        assert_eq!(at([40.0, -20.0, 0.0]), LUNG_RIGHT, "{rep:?}");
        assert_eq!(at([-40.0, -20.0, 0.0]), LUNG_LEFT);
        assert_eq!(at([0.0, -10.0, 60.0]), TRACHEA);
        assert_eq!(at([40.0, 10.0, 0.0]), PULMONARY_VESSELS);
        assert_eq!(at([-5.0, 35.0, -25.0]), HEART);
        assert_eq!(at([-5.0, 25.0, 30.0]), GREAT_VESSELS);
        assert_eq!(at([0.0, -50.0, 0.0]), BONE);
        // Soft tissue is left to the derivation's windows.
        assert_eq!(at([0.0, 60.0, -50.0]), 0);
        assert!(!rep.split_at_midline);
    }
}
