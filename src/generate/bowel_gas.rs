//! Gas in the stomach and bowel lumen. On a supine CT, swallowed and colonic gas collects on
//! the anterior (non-dependent) side of each loop above a flat gas–fluid level; a colon or
//! stomach without gas is one of the first things that makes a synthetic abdomen look
//! unreal. Each cross-section of a gut label in an axial slice gets a gas level: the top
//! (most anterior) fraction g of it is gas, with g from a smooth random field (tens of mm
//! across, so neighbouring slices of one loop agree) scaled by the segment's typical filling:
//! colon 0–60 %, stomach 0–40 %, small bowel and duodenum mostly collapsed or fluid-filled.
//! World +y is anterior (RAS), as in the templates and NIfTI label maps.

use std::f64::consts::TAU;

use rand::RngExt;

use crate::anatomy::ontology;
use crate::rng::{self, Stage};
use crate::volume::Volume;

/// Largest gas fraction of a cross-section, by gut segment; `None`: not gut lumen.
fn max_gas_fraction(label: u16) -> Option<f64> {
    match ontology::label_by_id(label)?.name {
        "colon" => Some(0.6),
        "stomach" => Some(0.4),
        "small_bowel" | "duodenum" => Some(0.25),
        _ => None,
    }
}

/// Smallest cross-section (voxels) that gets gas: thinner slivers are loop walls and tips.
const MIN_SECTION: usize = 6;

/// A smooth field in [0, 1]: the mean of a few random plane waves, wavelengths 60–200 mm.
struct Field {
    waves: Vec<([f64; 3], f64)>,
}

impl Field {
    fn new(seed: u64) -> Field {
        let mut r = rng::stream(seed, Stage::Generate, 0x6A5_0000_0000);
        let waves = (0..6)
            .map(|_| {
                let lambda = r.random_range(60.0..200.0);
                let (th, ph) = (
                    r.random_range(0.0..TAU),
                    r.random_range(-1.0f64..1.0).acos(),
                );
                let k = TAU / lambda;
                let dir = [ph.sin() * th.cos(), ph.sin() * th.sin(), ph.cos()];
                (dir.map(|d| d * k), r.random_range(0.0..TAU))
            })
            .collect();
        Field { waves }
    }

    fn at(&self, p: [f64; 3]) -> f64 {
        let s: f64 = self
            .waves
            .iter()
            .map(|(k, phi)| (k[0] * p[0] + k[1] * p[1] + k[2] * p[2] + phi).sin())
            .sum();
        // Six unit sines have SD ≈ 1.7; map ±1.7 to 0–1 and clip the tails.
        (0.5 + s / (2.0 * 1.7)).clamp(0.0, 1.0)
    }
}

/// Which voxels of the label map are gut gas (true) for the subject `seed`.
pub fn gas_mask(labels: &Volume<u16>, seed: u64) -> Vec<bool> {
    let g = &labels.grid;
    let [nx, ny, nz] = g.dims;
    let mut gas = vec![false; labels.data.len()];
    let max_label = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let frac: Vec<Option<f64>> = (0..=max_label)
        .map(|l| max_gas_fraction(l as u16))
        .collect();
    if frac.iter().all(Option::is_none) {
        return gas;
    }
    let field = Field::new(seed);
    let mut seen = vec![false; nx * ny];
    let mut stack = Vec::new();
    for z in 0..nz {
        let slice = &labels.data[z * nx * ny..(z + 1) * nx * ny];
        seen.iter_mut().for_each(|s| *s = false);
        for start in 0..nx * ny {
            let l = slice[start];
            let Some(max_g) = frac[l as usize] else {
                continue;
            };
            if seen[start] {
                continue;
            }
            // One cross-section: the 4-connected component of this label in this slice.
            let mut section = Vec::new();
            seen[start] = true;
            stack.push(start);
            while let Some(i) = stack.pop() {
                section.push(i);
                for j in crate::volume::neighbours4(i, nx, ny) {
                    if !seen[j] && slice[j] == l {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            if section.len() < MIN_SECTION {
                continue;
            }
            // The gas level: the anterior fraction g of the section's y extent.
            let world = |i: usize| g.world(i % nx, i / nx, z);
            let n = section.len() as f64;
            let c = section.iter().fold([0.0; 3], |a, &i| {
                let w = world(i);
                [a[0] + w[0] / n, a[1] + w[1] / n, a[2] + w[2] / n]
            });
            let frac_gas = max_g * field.at(c);
            let (lo, hi) = section.iter().fold((f64::MAX, f64::MIN), |(a, b), &i| {
                let y = world(i)[1];
                (a.min(y), b.max(y))
            });
            let level = hi - frac_gas * (hi - lo + g.spacing_mm[1]);
            for &i in &section {
                if world(i)[1] > level {
                    gas[z * nx * ny + i] = true;
                }
            }
        }
    }
    gas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn gas_rises_anteriorly_above_a_flat_level_and_only_in_gut() {
        let colon = ontology::label_by_name("colon").unwrap().id;
        let liver = ontology::label_by_name("liver").unwrap().id;
        // A colon tube along z (radius 20 mm) beside a liver block, 2 mm voxels.
        let g = Grid::centered([60, 60, 40], [2.0, 2.0, 2.0]);
        let mut v = Volume::filled(g.clone(), 0u16);
        for idx in 0..g.len() {
            let [i, j, k] = g.ijk(idx);
            let w = g.world(i, j, k);
            if (w[0] + 25.0).powi(2) + w[1].powi(2) < 400.0 {
                v.data[idx] = colon;
            } else if w[0] > 10.0 && w[0] < 50.0 && w[1].abs() < 20.0 {
                v.data[idx] = liver;
            }
        }
        let mut any = 0;
        for seed in 0..8 {
            let gas = gas_mask(&v, seed);
            for (idx, &is_gas) in gas.iter().enumerate() {
                if is_gas {
                    assert_eq!(v.data[idx], colon, "gas outside the gut");
                }
            }
            // Per slice: every gas voxel lies anterior to every fluid voxel of the section.
            for k in 0..40 {
                let (mut top_fluid, mut low_gas) = (f64::MIN, f64::MAX);
                for j in 0..60 {
                    for i in 0..60 {
                        let idx = g.index(i, j, k);
                        if v.data[idx] != colon {
                            continue;
                        }
                        let y = g.world(i, j, k)[1];
                        if gas[idx] {
                            low_gas = low_gas.min(y);
                            any += 1;
                        } else {
                            top_fluid = top_fluid.max(y);
                        }
                    }
                }
                assert!(
                    low_gas > top_fluid,
                    "seed {seed} slice {k}: gas below fluid"
                );
            }
            let n_colon = v.data.iter().filter(|&&l| l == colon).count();
            let n_gas = gas.iter().filter(|&&b| b).count();
            assert!(
                n_gas as f64 <= 0.61 * n_colon as f64,
                "{n_gas} of {n_colon}"
            );
        }
        assert!(any > 0, "no seed put any gas in the colon");
    }
}
