//! The procedural renderer: tissue tables + spatially correlated texture + partial-volume
//! smoothing. No model, no training: fast, exact, and the baseline the diffusion model is
//! trained on.

use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{
    blur, diffuse, Capabilities, CtMaps, GenerateError, Generator, MriMaps, Request, TissueObject,
};
use crate::anatomy::ontology;
use crate::rng::{self, Stage};
use crate::tissue::{self, Tissue};
use crate::volume::{Grid, Volume};

/// Settings of the procedural renderer (from the pipeline's `generator` section).
#[derive(Clone, Debug, PartialEq)]
pub struct Procedural {
    /// Correlation length (Gaussian SD) of within-tissue texture, mm.
    pub texture_mm: f64,
    /// Multiplier on the tables' texture SDs.
    pub texture_strength: f64,
    /// Partial-volume blur SD, mm.
    pub partial_volume_mm: f64,
    /// Gas above a gas–fluid level in the stomach and bowel lumen (`bowel_gas`).
    pub bowel_gas: bool,
}

impl Default for Procedural {
    fn default() -> Self {
        Procedural {
            texture_mm: 4.0,
            texture_strength: 1.0,
            partial_volume_mm: 0.6,
            bowel_gas: true,
        }
    }
}

/// Texture SD inside focal lesions (HU); lesions are more homogeneous than parenchyma.
const LESION_TEXTURE_HU: f64 = 6.0;

/// Per-label properties, looked up by label id.
struct LabelTable {
    tissue: Vec<Option<&'static Tissue>>,
    lesion: Vec<Option<super::LesionTissue>>,
}

impl LabelTable {
    fn new(labels: &Volume<u16>, lesions: &[super::LesionTissue]) -> Self {
        let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
        let mut tissue = vec![None; max + 1];
        let mut lesion = vec![None; max + 1];
        for (id, slot) in tissue.iter_mut().enumerate() {
            let name = if id == 0 {
                "background"
            } else {
                ontology::label_by_id(id as u16).map_or("", |l| l.name)
            };
            *slot = Some(tissue::tissue_for_label(name));
        }
        for l in lesions {
            if (l.label_id as usize) <= max {
                lesion[l.label_id as usize] = Some(*l);
            }
        }
        LabelTable { tissue, lesion }
    }
}

impl Procedural {
    /// Unit-SD texture with the configured correlation length, drawn slice by slice from
    /// per-slice streams (parallel and still deterministic).
    fn texture(&self, grid: &Grid, seed: u64) -> Vec<f32> {
        let n = grid.dims[0] * grid.dims[1];
        let mut t = vec![0.0f32; grid.len()];
        t.par_chunks_mut(n).enumerate().for_each(|(k, slab)| {
            let mut r = rng::stream(seed, Stage::Generate, k as u64);
            for v in slab.iter_mut() {
                *v = StandardNormal.sample(&mut r);
            }
        });
        let s = [self.texture_mm; 3];
        blur::gaussian(&mut t, grid, s);
        let gain = blur::noise_gain(grid, s) as f32;
        if gain > 0.0 {
            t.par_iter_mut().for_each(|v| *v /= gain);
        }
        t
    }

    fn smooth(&self, v: &mut Vec<f32>, grid: &Grid) {
        blur::gaussian(v, grid, [self.partial_volume_mm; 3]);
    }
}

impl Generator for Procedural {
    fn name(&self) -> String {
        "procedural".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ct: true,
            mri: true,
        }
    }

    fn generate(&self, req: &Request) -> Result<TissueObject, GenerateError> {
        let grid = &req.labels.grid;
        let table = LabelTable::new(req.labels, req.lesions);
        let tex = self.texture(grid, req.seed);
        let labels = &req.labels.data;
        let k = self.texture_strength;
        let gas: Vec<usize> = if self.bowel_gas {
            let m = super::bowel_gas::gas_mask(req.labels, req.seed);
            (0..m.len()).filter(|&i| m[i]).collect()
        } else {
            Vec::new()
        };

        let ct = if req.needs.ct {
            let mut materials: Vec<&'static str> = Vec::new();
            let mut mat_of_label = vec![0u8; table.tissue.len()];
            for (id, t) in table.tissue.iter().enumerate() {
                // Lesions are their own material (water unless the pipeline names one) at the
                // density that gives their HU, so the scanner sees the contrast asked for.
                let name = match table.lesion[id] {
                    Some(les) => les.material,
                    None => t.map_or("air", |t| t.material),
                };
                let idx = materials
                    .iter()
                    .position(|m| *m == name)
                    .unwrap_or_else(|| {
                        materials.push(name);
                        materials.len() - 1
                    });
                mat_of_label[id] = idx as u8;
            }
            // Once per label: the density is a table lookup and interpolation per tissue.
            let rho_of_label: Vec<f64> = table
                .tissue
                .iter()
                .zip(&table.lesion)
                .map(|(t, les)| match les {
                    Some(les) => tissue::density_for_hu(les.material, les.hu),
                    None => t.map_or(0.0, |t| t.ct_density()),
                })
                .collect();
            let (mut hu, mut density): (Vec<f32>, Vec<f32>) = labels
                .par_iter()
                .zip(tex.par_iter())
                .map(|(&l, &n)| {
                    let l = l as usize;
                    let (mean, sd, rho) = match (table.lesion[l], table.tissue[l]) {
                        (Some(les), _) => (les.hu, LESION_TEXTURE_HU, rho_of_label[l]),
                        (None, Some(t)) => (t.hu, t.hu_texture_sd, rho_of_label[l]),
                        (None, None) => (-1000.0, 0.0, 0.001205),
                    };
                    let h = mean + k * sd * n as f64;
                    // Density follows the textured attenuation (μ ∝ ρ within one material).
                    let d = if 1000.0 + mean > 1.0 {
                        rho * (1000.0 + h) / (1000.0 + mean)
                    } else {
                        rho
                    };
                    (
                        (h as f32).clamp(super::HU_MIN, super::HU_MAX),
                        d.max(0.0) as f32,
                    )
                })
                .unzip();
            let mut material: Vec<u8> = labels.iter().map(|&l| mat_of_label[l as usize]).collect();
            let mut perfusion = super::perfusion_map(req.labels, req.lesions);
            if !gas.is_empty() {
                let air = materials
                    .iter()
                    .position(|m| *m == "air")
                    .unwrap_or_else(|| {
                        materials.push("air");
                        materials.len() - 1
                    }) as u8;
                for &i in &gas {
                    hu[i] = -1000.0;
                    density[i] = tissue::density_for_hu("air", -1000.0) as f32;
                    material[i] = air;
                    perfusion.data[i] = 0;
                }
            }
            self.smooth(&mut hu, grid);
            self.smooth(&mut density, grid);
            diffuse::apply_ct(&mut hu, &mut density, req.labels, req.diffuse, req.seed);
            Some(CtMaps {
                hu: Volume::from_vec(grid.clone(), hu),
                density: Volume::from_vec(grid.clone(), density),
                material: Volume::from_vec(grid.clone(), material),
                materials,
                perfusion: Some(perfusion),
            })
        } else {
            None
        };

        let mut mri = Vec::new();
        // Once per label, not per voxel.
        let adc_of_label: Vec<f64> = table
            .tissue
            .iter()
            .map(|t| t.map_or(0.0, |t| tissue::diffusion::adc_um2_ms(t.name)))
            .collect();
        for &field in &req.needs.mri_fields_t {
            let fat = tissue::tissue("fat");
            // Per label: PD, T1, T2, T2*, texture SD (relative), ADC, and whether it is fat.
            let per_label: Vec<([f64; 6], bool)> = (0..table.tissue.len())
                .map(|l| {
                    let is_fat = table.lesion[l].is_none()
                        && table.tissue[l].is_some_and(|t| t.name == fat.name);
                    let v = match (table.lesion[l], table.tissue[l]) {
                        (Some(les), _) => {
                            // Lesions keep their organ's reversible dephasing (T2′).
                            let h = les.host.relaxation(field);
                            let t2p = 1.0 / (1.0 / h.t2star_ms - 1.0 / h.t2_ms).max(1e-6);
                            [
                                les.pd,
                                les.t1_ms,
                                les.t2_ms,
                                1.0 / (1.0 / les.t2_ms + 1.0 / t2p),
                                0.02,
                                les.adc_um2_ms,
                            ]
                        }
                        (_, Some(t)) => {
                            let r = t.relaxation(field);
                            [
                                r.pd,
                                r.t1_ms,
                                r.t2_ms,
                                r.t2star_ms,
                                t.mri_texture_rel,
                                adc_of_label[l],
                            ]
                        }
                        _ => [0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
                    };
                    (v, is_fat)
                })
                .collect();
            // One map at a time, so no per-voxel tuple of all six is ever held (24 bytes a
            // voxel more at the peak: 1.4 GB at 512 × 512 × 224).
            let mut maps: Vec<Vec<f32>> = (0..6)
                .map(|c| {
                    labels
                        .par_iter()
                        .zip(tex.par_iter())
                        .map(|(&l, &n)| {
                            let (v, is_fat) = &per_label[l as usize];
                            match c {
                                0..=3 => {
                                    let f = (1.0 + k * v[4] * n as f64).max(0.05);
                                    (v[c] * f) as f32
                                }
                                4 => f32::from(u8::from(*is_fat)),
                                _ => v[5] as f32,
                            }
                        })
                        .collect()
                })
                .collect();
            // Gas: no protons (a signal void), relaxation times of the background.
            for &i in &gas {
                for (c, v) in [0.0f32, 1.0, 1.0, 1.0, 0.0, 0.0].into_iter().enumerate() {
                    maps[c][i] = v;
                }
            }
            for m in maps.iter_mut() {
                self.smooth(m, grid);
            }
            if let [pd, t1, t2, t2s, _, _] = maps.as_mut_slice() {
                diffuse::apply_mri([pd, t1, t2, t2s], req.labels, req.diffuse, req.seed);
            }
            let mut it = maps.into_iter().map(|m| Volume::from_vec(grid.clone(), m));
            mri.push(MriMaps {
                field_t: field,
                pd: it.next().unwrap_or_else(|| unreachable!()),
                t1_ms: it.next().unwrap_or_else(|| unreachable!()),
                t2_ms: it.next().unwrap_or_else(|| unreachable!()),
                t2star_ms: it.next().unwrap_or_else(|| unreachable!()),
                fat_fraction: it.next().unwrap_or_else(|| unreachable!()),
                adc_um2_ms: it.next().unwrap_or_else(|| unreachable!()),
                chi_ppm: Some(super::susceptibility_map(req.labels, req.lesions)),
            });
        }
        Ok(TissueObject { ct, mri })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{LesionTissue, Needs};

    fn two_tissue_labels() -> Volume<u16> {
        let g = Grid::centered([64, 64, 32], [1.0; 3]);
        let liver = ontology::label_by_name("liver").unwrap().id;
        let fat = ontology::label_by_name("subcutaneous_fat").unwrap().id;
        let mut v = Volume::filled(g, fat);
        for k in 0..32 {
            for j in 0..64 {
                for i in 32..64 {
                    v.set(i, j, k, liver);
                }
            }
        }
        v
    }

    #[test]
    fn tissue_means_and_texture_match_the_tables() {
        let labels = two_tissue_labels();
        let needs = Needs {
            ct: true,
            mri_fields_t: vec![3.0],
        };
        let req = Request {
            labels: &labels,
            lesions: &[],
            diffuse: &[],
            prompt: "",
            needs: &needs,
            seed: 9,
        };
        let gen = Procedural {
            texture_mm: 1.5,
            texture_strength: 1.0,
            partial_volume_mm: 0.0,
            bowel_gas: true,
        };
        let obj = gen.generate(&req).unwrap();
        let hu = &obj.ct.as_ref().unwrap().hu;
        // Interior of the liver half, away from the boundary.
        let vals: Vec<f64> = (4..28)
            .flat_map(|k| (4..60).flat_map(move |j| (38..60).map(move |i| (i, j, k))))
            .map(|(i, j, k)| hu.get(i, j, k) as f64)
            .collect();
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let liver = tissue::tissue("liver");
        // ~300 independent texture samples: standard error ≈ 0.5 HU.
        assert!((mean - liver.hu).abs() < 2.5, "mean {mean}");
        // Correlated texture: the sample SD is a little under the nominal one.
        assert!(
            sd > 0.6 * liver.hu_texture_sd && sd < 1.3 * liver.hu_texture_sd,
            "sd {sd}"
        );
        let t1 = &obj.mri_at(3.0).unwrap().t1_ms;
        assert!((t1.get(50, 32, 16) as f64 - liver.mri_3t.t1_ms).abs() < 0.2 * liver.mri_3t.t1_ms);
    }

    #[test]
    fn partial_volume_smooths_boundaries_and_lesions_take_their_values() {
        let mut labels = two_tissue_labels();
        for (i, j, k) in [
            (46, 32, 16),
            (47, 32, 16),
            (48, 32, 16),
            (47, 31, 16),
            (47, 33, 16),
            (47, 32, 15),
            (47, 32, 17),
        ] {
            labels.set(i, j, k, 201);
        }
        let needs = Needs {
            ct: true,
            mri_fields_t: vec![],
        };
        let lesions = [LesionTissue {
            label_id: 201,
            host: tissue::tissue("liver"),
            hu: 300.0,
            material: "water",
            perfusion: crate::tissue::contrast::Perfusion::None,
            adc_um2_ms: 1.0,
            pd: 0.9,
            t1_ms: 1000.0,
            t2_ms: 100.0,
        }];
        let req = Request {
            labels: &labels,
            lesions: &lesions,
            diffuse: &[],
            prompt: "",
            needs: &needs,
            seed: 1,
        };
        let gen = Procedural {
            texture_mm: 2.0,
            texture_strength: 0.0,
            partial_volume_mm: 1.0,
            bowel_gas: true,
        };
        let hu = gen.generate(&req).unwrap().ct.unwrap().hu;
        // Boundary voxels sit between fat (−100) and liver (47).
        let edge = hu.get(32, 5, 5) as f64;
        assert!(edge > -95.0 && edge < 40.0, "{edge}");
        // A 7-voxel cross blurred by a unit-σ Gaussian keeps w0³ + 6·w1·w0² of its contrast
        // at the centre (w = the normalised 1D taps).
        let w = blur::kernel(1.0);
        let (w0, w1) = (w[w.len() / 2] as f64, w[w.len() / 2 + 1] as f64);
        let expected = 47.0 + (300.0 - 47.0) * (w0.powi(3) + 6.0 * w1 * w0 * w0);
        let got = hu.get(47, 32, 16) as f64;
        assert!((got - expected).abs() < 1.0, "{got} vs {expected}");
    }

    #[test]
    fn same_seed_same_object() {
        let labels = two_tissue_labels();
        let needs = Needs {
            ct: true,
            mri_fields_t: vec![],
        };
        let gen = Procedural::default();
        let a = gen
            .generate(&Request {
                labels: &labels,
                lesions: &[],
                diffuse: &[],
                prompt: "",
                needs: &needs,
                seed: 5,
            })
            .unwrap();
        let b = gen
            .generate(&Request {
                labels: &labels,
                lesions: &[],
                diffuse: &[],
                prompt: "",
                needs: &needs,
                seed: 5,
            })
            .unwrap();
        assert_eq!(a.ct.unwrap().hu, b.ct.unwrap().hu);
    }
}
