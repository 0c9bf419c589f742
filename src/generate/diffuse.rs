//! Diffuse diseases that no label map expresses — only the prompt names them — so a model
//! trained on procedural cohorts has to read the text to reproduce them.
//!
//! Each effect acts on the voxels of its host tissue (by tissue class of the label), after
//! texture and partial-volume smoothing:
//! - steatosis: liver attenuation lowered by `severity` HU (fat replaces parenchyma);
//! - emphysema: `severity` of the lung volume becomes low-attenuation patches (bullae,
//!   −990 to −960 HU), and the rest of the lung loses 20 HU of density;
//! - osteopenia: bone attenuation (above water) scaled by `1 − severity`;
//! - white-matter hyperintensity: `severity` of white matter in patches with T2 ×1.8, T1 ×1.3,
//!   PD ×1.1 (FLAIR-bright, T1-dark) and −6 HU on CT.
//!
//! Patches are the top quantile of a smoothed random field inside the host tissue, so their
//! size follows `PATCH_MM` and their total volume is exactly the requested fraction.

use rand_distr::{Distribution, StandardNormal};

use super::blur;
use crate::anatomy::ontology;
use crate::rng::{self, Stage};
use crate::tissue;
use crate::volume::Volume;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffuseKind {
    Steatosis,
    Emphysema,
    Osteopenia,
    WmHyperintensity,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffuseEffect {
    pub kind: DiffuseKind,
    pub severity: f64,
}

/// Correlation length of the patch field (Gaussian SD), mm.
const PATCH_MM: f64 = 5.0;

/// Host-tissue mask of a diffuse kind, from tissue classes of the labels.
fn host_mask(labels: &Volume<u16>, kind: DiffuseKind) -> Vec<bool> {
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let hosts: Vec<bool> = (0..=max)
        .map(|id| {
            let name = ontology::label_by_id(id as u16).map_or("", |l| l.name);
            let t = tissue::tissue_for_label(name).name;
            match kind {
                DiffuseKind::Steatosis => t == "liver",
                DiffuseKind::Emphysema => t == "lung",
                DiffuseKind::Osteopenia => t.contains("bone"),
                DiffuseKind::WmHyperintensity => t == "white_matter",
            }
        })
        .collect();
    labels.data.iter().map(|&l| hosts[l as usize]).collect()
}

/// Patches covering `fraction` of the masked voxels (top quantile of a smooth field).
fn patches(labels: &Volume<u16>, mask: &[bool], fraction: f64, seed: u64, sub: u64) -> Vec<bool> {
    let grid = &labels.grid;
    let mut r = rng::stream(seed, Stage::Generate, (1 << 40) + sub);
    let mut field: Vec<f32> = (0..grid.len())
        .map(|_| StandardNormal.sample(&mut r))
        .collect();
    blur::gaussian(&mut field, grid, [PATCH_MM; 3]);
    let mut inside: Vec<f32> = field
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&v, _)| v)
        .collect();
    if inside.is_empty() || fraction <= 0.0 {
        return vec![false; grid.len()];
    }
    let k = ((1.0 - fraction.clamp(0.0, 1.0)) * inside.len() as f64) as usize;
    let k = k.min(inside.len() - 1);
    let (_, &mut threshold, _) = inside.select_nth_unstable_by(k, f32::total_cmp);
    field
        .iter()
        .zip(mask)
        .map(|(&v, &m)| m && v >= threshold)
        .collect()
}

/// Applies the CT side of the effects to HU and density (density follows HU within the
/// voxel's material, as in the renderer).
pub fn apply_ct(
    hu: &mut [f32],
    density: &mut [f32],
    labels: &Volume<u16>,
    effects: &[DiffuseEffect],
    seed: u64,
) {
    for (i, e) in effects.iter().enumerate() {
        let mask = host_mask(labels, e.kind);
        let set = |hu: &mut f32, rho: &mut f32, new: f32| {
            if *hu > -999.0 {
                *rho *= ((1000.0 + new) / (1000.0 + *hu)).max(0.0);
            }
            *hu = new;
        };
        match e.kind {
            DiffuseKind::Steatosis => {
                for (j, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
                    let new = hu[j] - e.severity as f32;
                    set(&mut hu[j], &mut density[j], new);
                }
            }
            DiffuseKind::Osteopenia => {
                let s = (1.0 - e.severity) as f32;
                for (j, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
                    if hu[j] > 0.0 {
                        let new = hu[j] * s;
                        set(&mut hu[j], &mut density[j], new);
                    }
                }
            }
            DiffuseKind::Emphysema => {
                let p = patches(labels, &mask, e.severity, seed, i as u64);
                for j in 0..hu.len() {
                    if p[j] {
                        // Bullae: nearly air; keep a little of the texture as wall remnants.
                        let new = -990.0 + 0.2 * (hu[j] + 850.0).clamp(-50.0, 150.0);
                        set(&mut hu[j], &mut density[j], new);
                    } else if mask[j] {
                        let new = hu[j] - 20.0;
                        set(&mut hu[j], &mut density[j], new);
                    }
                }
            }
            DiffuseKind::WmHyperintensity => {
                let p = patches(labels, &mask, e.severity, seed, i as u64);
                for j in (0..hu.len()).filter(|&j| p[j]) {
                    let new = hu[j] - 6.0;
                    set(&mut hu[j], &mut density[j], new);
                }
            }
        }
    }
}

/// Applies the MRI side of the effects (white-matter hyperintensities).
pub fn apply_mri(
    maps: [&mut [f32]; 4],
    labels: &Volume<u16>,
    effects: &[DiffuseEffect],
    seed: u64,
) {
    let [pd, t1, t2, t2s] = maps;
    for (i, e) in effects.iter().enumerate() {
        if e.kind != DiffuseKind::WmHyperintensity {
            continue;
        }
        let mask = host_mask(labels, e.kind);
        let p = patches(labels, &mask, e.severity, seed, i as u64);
        for j in (0..p.len()).filter(|&j| p[j]) {
            pd[j] *= 1.1;
            t1[j] *= 1.3;
            // T2* keeps the tissue's reversible dephasing T2′.
            let t2p = 1.0 / (1.0 / t2s[j] - 1.0 / t2[j]).max(1e-6);
            t2[j] *= 1.8;
            t2s[j] = 1.0 / (1.0 / t2[j] + 1.0 / t2p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    fn liver_and_lung() -> Volume<u16> {
        let grid = Grid::centered([32, 32, 16], [2.0; 3]);
        let liver = ontology::label_by_name("liver").unwrap().id;
        let lung = ontology::label_by_name("lung_upper_lobe_left").unwrap().id;
        let data = (0..grid.len())
            .map(|i| if i % 32 < 16 { liver } else { lung })
            .collect();
        Volume::from_vec(grid, data)
    }

    #[test]
    fn steatosis_shifts_only_the_liver_by_the_severity() {
        let labels = liver_and_lung();
        let n = labels.grid.len();
        let mut hu: Vec<f32> = (0..n)
            .map(|i| if i % 32 < 16 { 60.0 } else { -850.0 })
            .collect();
        let mut rho = vec![1.06f32; n];
        let e = [DiffuseEffect {
            kind: DiffuseKind::Steatosis,
            severity: 40.0,
        }];
        apply_ct(&mut hu, &mut rho, &labels, &e, 1);
        assert!(hu.iter().enumerate().all(|(i, &h)| if i % 32 < 16 {
            h == 20.0
        } else {
            h == -850.0
        }));
        // Density follows HU: (1000 + 20) / (1000 + 60).
        assert!((rho[0] - 1.06 * 1020.0 / 1060.0).abs() < 1e-5);
    }

    #[test]
    fn emphysema_patches_cover_the_requested_fraction_of_lung() {
        let labels = liver_and_lung();
        let n = labels.grid.len();
        let mut hu: Vec<f32> = (0..n)
            .map(|i| if i % 32 < 16 { 60.0 } else { -850.0 })
            .collect();
        let mut rho = vec![0.26f32; n];
        let e = [DiffuseEffect {
            kind: DiffuseKind::Emphysema,
            severity: 0.2,
        }];
        apply_ct(&mut hu, &mut rho, &labels, &e, 7);
        let lung: Vec<f32> = hu
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 32 >= 16)
            .map(|(_, &h)| h)
            .collect();
        // LAA-950 (the clinical emphysema index) equals the requested fraction.
        let laa = lung.iter().filter(|&&h| h < -950.0).count() as f64 / lung.len() as f64;
        assert!((laa - 0.2).abs() < 0.01, "LAA-950 {laa}");
        assert!(hu
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 32 < 16)
            .all(|(_, &h)| h == 60.0));
    }
}
