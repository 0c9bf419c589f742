//! `synthcohort fidelity`: how close a cohort's CT numbers and texture are to a real CT, organ
//! by organ, with the label-mean painter (every label its tissue table's mean HU) as the
//! baseline row beside the cohort's own generator.
//!
//! Per organ group, between the real scan's voxels and the cohort's (all subjects pooled):
//! - `hu_w1`: the 1-Wasserstein distance of the HU distributions (mean |quantile difference|
//!   over 200 quantiles), HU;
//! - `texture_distance`: mean |log10 NPS_cohort − log10 NPS_real| over radial frequency bins
//!   common to both grids, where NPS is the radially averaged noise-power spectrum of
//!   mean-removed axial patches lying wholly inside the organ (physical units HU²·mm², so
//!   grids of any spacing compare); a flat painted organ has no texture and scores the
//!   distance of an NPS floor of 1e-3 HU²·mm²;
//! - for the lungs, the vessel fraction (voxels above −500 HU) of each;
//! - the organ volume (mL; the cohort's mean per subject).
//!
//! Real and cohort may differ in grid, spacing and field of view: everything is per organ, by
//! distribution. Nothing is tuned here, so there is no tuning split to keep apart.

use std::path::{Path, PathBuf};

use rustfft::{num_complex::Complex, FftPlanner};
use serde::Serialize;

use super::LabError;
use crate::anatomy::{import, ontology};
use crate::io;
use crate::tissue;
use crate::volume::Volume;

/// Organ groups compared (ontology groups): solid organs, lungs, bone, muscle, blood.
pub const GROUPS: [&str; 8] = [
    "liver",
    "spleen",
    "kidney",
    "lung",
    "vertebrae",
    "autochthon",
    "iliopsoas",
    "aorta",
];

/// Side of the square axial texture patches, mm.
const PATCH_MM: f64 = 24.0;
/// Most radial frequency bins of the NPS (cycles/mm), up to the lower Nyquist of the grids.
const NPS_BINS: usize = 8;
/// NPS floor for the log distance (HU²·mm²): a flat organ's spectrum.
const NPS_FLOOR: f64 = 1e-3;
/// Voxels sampled per organ and source for the HU distributions.
const MAX_SAMPLES: usize = 200_000;

pub struct FidelityArgs<'a> {
    pub run: &'a Path,
    pub real_image: &'a Path,
    pub real_labels: &'a Path,
    pub real_names: &'a Path,
    /// The cohort arm compared (default: the first CT or HU arm).
    pub arm: Option<&'a str>,
    /// Subjects of the cohort used (the first N).
    pub max_subjects: usize,
    pub out: &'a Path,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `painter`, or the cohort's generator (`procedural`, `model`).
    pub generator: String,
    pub organ: String,
    pub voxels_real: usize,
    pub voxels_cohort: usize,
    pub hu_mean_real: f64,
    pub hu_mean_cohort: f64,
    pub hu_w1: f64,
    pub texture_distance: Option<f64>,
    pub vessel_fraction_real: Option<f64>,
    pub vessel_fraction_cohort: Option<f64>,
    pub volume_ml_real: f64,
    pub volume_ml_cohort: f64,
}

/// One source's voxels of one organ: HU values, radially binned NPS, volume.
#[derive(Default)]
struct Organ {
    hu: Vec<f64>,
    nps: Option<Vec<f64>>,
    volume_ml: f64,
}

fn bad(msg: impl Into<String>) -> LabError {
    LabError::Input(msg.into())
}

/// A real scan: its image and its label map in ontology ids (names mapped as an import maps
/// them), with the import's report of the names it could not map. `image`, `labels` and
/// `names` are given as `--real-image`, `--real-labels`, `--real-names` (by `fidelity` and by
/// the utility benchmark).
pub fn real_maps(
    image: &Path,
    labels: &Path,
    names: &Path,
) -> Result<(Volume<f32>, Volume<u16>, import::ImportReport), LabError> {
    let img = io::read_image(image)?;
    let lab = io::read_labels(labels)?;
    if img.grid.dims != lab.grid.dims {
        return Err(bad(format!(
            "--real-image is {:?} voxels but --real-labels {:?}",
            img.grid.dims, lab.grid.dims
        )));
    }
    let text = io::bounded::read_text(names, io::bounded::SMALL_TEXT_BYTES, "label-name table")?;
    let table =
        import::parse_names_file(&text).map_err(|e| bad(format!("{}: {e}", names.display())))?;
    let (mapped, report) = import::import_labels(&lab, &table, &lab.grid.clone());
    Ok((img, mapped, report))
}

fn mask_of(labels: &Volume<u16>, ids: &[u16]) -> Vec<bool> {
    let mut lut = vec![false; u16::MAX as usize + 1];
    for &i in ids {
        lut[i as usize] = true;
    }
    labels.data.iter().map(|&l| lut[l as usize]).collect()
}

/// Radially averaged NPS (HU²·mm²) of the mean-removed square axial patches wholly inside
/// `mask`, in `NPS_BINS` bins up to `f_max` cycles/mm; None without a patch.
fn nps(values: &[f32], mask: &[bool], grid: &crate::volume::Grid, f_max: f64) -> Option<Vec<f64>> {
    let [nx, ny, nz] = grid.dims;
    let (dx, dy) = (grid.spacing_mm[0], grid.spacing_mm[1]);
    let n = ((PATCH_MM / dx.max(dy)).round() as usize).max(4);
    if n > nx || n > ny {
        return None;
    }
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    // Bins start at the patch's fundamental frequency and are at least one frequency step
    // wide, so every bin holds samples on any grid.
    let f_lo = 0.99 / PATCH_MM;
    let bins = nps_bins(f_max);
    let mut sum = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    let mut patches = 0usize;
    let mut buf = vec![Complex::new(0.0, 0.0); n * n];
    for k in 0..nz {
        // Non-overlapping patches on a regular lattice.
        for j0 in (0..=ny - n).step_by(n) {
            for i0 in (0..=nx - n).step_by(n) {
                let inside = (0..n).all(|j| (0..n).all(|i| mask[grid.index(i0 + i, j0 + j, k)]));
                if !inside {
                    continue;
                }
                let mean = (0..n)
                    .flat_map(|j| (0..n).map(move |i| (i, j)))
                    .map(|(i, j)| values[grid.index(i0 + i, j0 + j, k)] as f64)
                    .sum::<f64>()
                    / (n * n) as f64;
                for j in 0..n {
                    for i in 0..n {
                        buf[j * n + i] =
                            Complex::new(values[grid.index(i0 + i, j0 + j, k)] as f64 - mean, 0.0);
                    }
                }
                crate::volume::fft2_square(&mut buf, n, &*fft);
                for j in 0..n {
                    for i in 0..n {
                        let fx = (if i <= n / 2 {
                            i as f64
                        } else {
                            i as f64 - n as f64
                        }) / (n as f64 * dx);
                        let fy = (if j <= n / 2 {
                            j as f64
                        } else {
                            j as f64 - n as f64
                        }) / (n as f64 * dy);
                        let f = (fx * fx + fy * fy).sqrt();
                        if f < f_lo || f >= f_max {
                            continue;
                        }
                        let b = ((f - f_lo) / (f_max - f_lo) * bins as f64) as usize;
                        // NPS = |DFT|² · Δx·Δy / (Nx·Ny)  (HU²·mm²).
                        sum[b] += buf[j * n + i].norm_sqr() * dx * dy / (n * n) as f64;
                        count[b] += 1;
                    }
                }
                patches += 1;
            }
        }
    }
    (patches > 0 && count.iter().all(|&c| c > 0))
        .then(|| sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect())
}

/// Radial bins between the patch's fundamental and `f_max` (cycles/mm).
fn nps_bins(f_max: f64) -> usize {
    (((f_max - 0.99 / PATCH_MM) * PATCH_MM).floor() as usize).clamp(1, NPS_BINS)
}

/// Every `step`-th value so at most MAX_SAMPLES are kept.
fn sample(values: &[f32], mask: &[bool]) -> Vec<f64> {
    let n = mask.iter().filter(|&&m| m).count();
    let step = n.div_ceil(MAX_SAMPLES).max(1);
    values
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .step_by(step)
        .map(|(&v, _)| v as f64)
        .collect()
}

fn organ(image: &Volume<f32>, mask: &[bool], f_max: f64) -> Organ {
    let n = mask.iter().filter(|&&m| m).count();
    Organ {
        hu: sample(&image.data, mask),
        nps: nps(&image.data, mask, &image.grid, f_max),
        volume_ml: n as f64 * image.grid.voxel_ml(),
    }
}

/// The label-mean painter's image of a label map: each voxel its label's table HU (one
/// lookup per label id, not per voxel).
fn painted(labels: &Volume<u16>) -> Vec<f32> {
    let max = labels.data.iter().copied().max().unwrap_or(0);
    let hu: Vec<f32> = (0..=max)
        .map(|l| {
            let name = ontology::label_by_id(l).map_or("background", |x| x.name);
            tissue::tissue_for_label(name).hu as f32
        })
        .collect();
    labels.data.iter().map(|&l| hu[l as usize]).collect()
}

/// One cohort subject: its image, labels and the painter's image of them.
struct CohortSubject {
    image: Volume<f32>,
    labels: Volume<u16>,
    painted: Vec<f32>,
}

/// 1-Wasserstein distance of two samples: mean |quantile difference| over 200 quantiles.
pub fn w1(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
    (0..200)
        .map(|i| {
            let p = (i as f64 + 0.5) / 200.0;
            (q(&a, p) - q(&b, p)).abs()
        })
        .sum::<f64>()
        / 200.0
}

fn texture_distance(real: Option<&Vec<f64>>, gen: Option<&Vec<f64>>, flat: bool) -> Option<f64> {
    let real = real?;
    let gen: Vec<f64> = if flat {
        vec![0.0; real.len()]
    } else {
        gen?.clone()
    };
    Some(
        real.iter()
            .zip(&gen)
            .map(|(r, g)| (r.max(NPS_FLOOR).log10() - g.max(NPS_FLOOR).log10()).abs())
            .sum::<f64>()
            / real.len() as f64,
    )
}

fn vessel_fraction(hu: &[f64]) -> f64 {
    hu.iter().filter(|&&v| v > -500.0).count() as f64 / hu.len().max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Computes the rows and writes `fidelity.json` and `report.md` into `out`.
pub fn run(a: &FidelityArgs) -> Result<Vec<Row>, LabError> {
    let (real_img, real_lab, _) = real_maps(a.real_image, a.real_labels, a.real_names)?;
    let rows = io::read_manifest(&a.run.join("manifest.parquet"))?;
    let arm = match a.arm {
        Some(n) => n.to_string(),
        None => rows
            .iter()
            .find(|r| r.modality == "ct" || (r.modality == "none" && r.protocol.contains("\"hu\"")))
            .map(|r| r.arm.clone())
            .ok_or_else(|| bad(format!("{}: no CT or HU arm to compare", a.run.display())))?,
    };
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| r.arm == arm)
        .take(a.max_subjects)
        .collect();
    if mine.is_empty() {
        return Err(bad(format!(
            "{}: no subject has an arm `{arm}`",
            a.run.display()
        )));
    }
    let generator = if mine[0].generator.starts_with("latent_diffusion") {
        "model"
    } else {
        "procedural"
    };
    let mut cohort = Vec::new();
    for r in &mine {
        let labels = io::read_labels(&a.run.join(&r.label_path))?;
        cohort.push(CohortSubject {
            image: io::read_image(&a.run.join(&r.image_path))?,
            painted: painted(&labels),
            labels,
        });
    }
    // Frequencies both grids resolve.
    let nyquist = |g: &crate::volume::Grid| 0.5 / g.spacing_mm[0].max(g.spacing_mm[1]);
    let f_max = cohort
        .iter()
        .map(|c| nyquist(&c.image.grid))
        .fold(nyquist(&real_img.grid), f64::min);

    let mut out = Vec::new();
    for group in GROUPS {
        let Some(ids) = ontology::organ_group(group) else {
            continue;
        };
        let real = organ(&real_img, &mask_of(&real_lab, &ids), f_max);
        if real.hu.is_empty() {
            continue;
        }
        // Per subject: the organ in its image, and the painter's voxels under the same mask.
        let (parts, painter): (Vec<Organ>, Vec<Vec<f64>>) = cohort
            .iter()
            .map(|c| {
                let mask = mask_of(&c.labels, &ids);
                (organ(&c.image, &mask, f_max), sample(&c.painted, &mask))
            })
            .unzip();
        let gen_hu: Vec<f64> = parts.iter().flat_map(|o| o.hu.iter().copied()).collect();
        if gen_hu.is_empty() {
            continue;
        }
        let gen_nps: Vec<&Vec<f64>> = parts.iter().filter_map(|o| o.nps.as_ref()).collect();
        let gen_nps_mean = (!gen_nps.is_empty()).then(|| {
            (0..nps_bins(f_max))
                .map(|b| gen_nps.iter().map(|v| v[b]).sum::<f64>() / gen_nps.len() as f64)
                .collect::<Vec<f64>>()
        });
        let volume = mean(&parts.iter().map(|o| o.volume_ml).collect::<Vec<_>>());
        let painter_hu: Vec<f64> = painter.concat();
        let lung = group == "lung";
        for (name, hu, nps, flat) in [
            ("painter", &painter_hu, None, true),
            (generator, &gen_hu, gen_nps_mean.as_ref(), false),
        ] {
            out.push(Row {
                generator: name.to_string(),
                organ: group.to_string(),
                voxels_real: real.hu.len(),
                voxels_cohort: hu.len(),
                hu_mean_real: mean(&real.hu),
                hu_mean_cohort: mean(hu),
                hu_w1: w1(&real.hu, hu),
                texture_distance: texture_distance(real.nps.as_ref(), nps, flat),
                vessel_fraction_real: lung.then(|| vessel_fraction(&real.hu)),
                vessel_fraction_cohort: lung.then(|| vessel_fraction(hu)),
                volume_ml_real: real.volume_ml,
                volume_ml_cohort: volume,
            });
        }
    }
    write_report(a, &arm, &out)?;
    Ok(out)
}

fn write_report(a: &FidelityArgs, arm: &str, rows: &[Row]) -> Result<(), LabError> {
    let json = serde_json::to_vec_pretty(rows)?;
    let f = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |x| format!("{x:.d$}"));
    let mut md = format!(
        "# Fidelity: `{}` (arm `{arm}`) against the real CT `{}`\n\nPer organ: HU 1-Wasserstein distance, texture distance (mean |Δ log10 NPS|, radially binned, patches of {PATCH_MM} mm), lung vessel fraction (> −500 HU), volume. Lower distances are closer to the real scan; `painter` paints every label with its tissue table's mean HU.\n\n| organ | generator | HU mean real / cohort | HU W1 | texture distance | vessel fraction real / cohort | volume mL real / cohort |\n|---|---|---|---|---|---|---|\n",
        a.run.display(),
        a.real_image.display()
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} / {:.0} | {:.1} | {} | {} | {:.0} / {:.0} |\n",
            r.organ,
            r.generator,
            r.hu_mean_real,
            r.hu_mean_cohort,
            r.hu_w1,
            f(r.texture_distance, 2),
            match (r.vessel_fraction_real, r.vessel_fraction_cohort) {
                (Some(x), Some(y)) => format!("{:.3} / {:.3}", x, y),
                _ => "—".into(),
            },
            r.volume_ml_real,
            r.volume_ml_cohort
        ));
    }
    std::fs::create_dir_all(a.out).map_err(LabError::file("cannot create", a.out))?;
    let p: PathBuf = a.out.join("fidelity.json");
    io::write_atomic(&p, &json)?;
    io::write_atomic(&a.out.join("report.md"), md.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn w1_of_shifted_samples_is_the_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64 * 0.1).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 7.0).collect();
        assert!((w1(&a, &b) - 7.0).abs() < 1e-9);
        assert!(w1(&a, &a) < 1e-12);
    }

    #[test]
    fn white_noise_nps_is_flat_at_sigma_squared_times_pixel_area() {
        // White noise of SD σ on a Δ×Δ grid has NPS σ²Δ² at every frequency.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let grid = Grid::centered([96, 96, 8], [0.8, 0.8, 2.0]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let d = Normal::new(40.0, 12.0).unwrap();
        let v: Vec<f32> = (0..grid.len()).map(|_| d.sample(&mut rng) as f32).collect();
        let mask = vec![true; grid.len()];
        let nps = nps(&v, &mask, &grid, 0.5 / 0.8).unwrap();
        let want = 12.0f64.powi(2) * 0.8 * 0.8;
        for (b, x) in nps.iter().enumerate() {
            assert!((x / want - 1.0).abs() < 0.1, "bin {b}: {x} vs {want}");
        }
    }
}
