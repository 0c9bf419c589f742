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
//! distribution. Nothing is tuned here, so there is no tuning split to keep apart; `--region`
//! restricts both sides to a held-out part of the real scan (a mask, matched from each grid's
//! centre as an imported label map is placed), for a model trained on the rest of it, and several runs (e.g. the procedural
//! renderer and a model on the same anatomy) give one row each beside the painter.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::LabError;
use crate::anatomy::{import, ontology};
use crate::io;
use crate::io::preview::{render_grid, PreviewTile};

mod picture;
mod texture;
use crate::tissue;
use crate::volume::Volume;
use picture::{patch, Picture, PICTURE_COLUMNS, SHOW_MM};
use texture::{
    glcm, glcm_distance, glcm_range, nps, nps_bin_centres, nps_bins, texture_distance, GLCM_LEVELS,
    PATCH_MM, SMALL_PATCH_MM,
};

/// Organ groups compared (ontology groups, plus `muscle` and `fat` below): solid organs,
/// lungs, bone, muscle, fat, blood.
pub const GROUPS: [&str; 11] = [
    "liver",
    "spleen",
    "kidney",
    "lung",
    "vertebrae",
    "ribs",
    "muscle",
    "autochthon",
    "iliopsoas",
    "fat",
    "aorta",
];

/// Label ids of a compared group. `muscle` is every skeletal muscle label (the named
/// TotalSegmentator muscles and the atlas's `skeletal_muscle`), `fat` the subcutaneous and
/// torso fat; these two exist only here, so a lesion's `organ: muscle` keeps its meaning.
fn group_ids(group: &str) -> Option<Vec<u16>> {
    let named = |pred: &dyn Fn(&str) -> bool| -> Vec<u16> {
        (1..ontology::LESION_ID_BASE)
            .filter_map(ontology::label_by_id)
            .filter(|l| pred(l.name))
            .map(|l| l.id)
            .collect()
    };
    match group {
        "muscle" => Some(named(&|n| {
            n == "skeletal_muscle"
                || n.starts_with("autochthon")
                || n.starts_with("iliopsoas")
                || n.starts_with("gluteus")
        })),
        "fat" => Some(vec![ontology::SUBCUTANEOUS_FAT, ontology::TORSO_FAT]),
        _ => ontology::organ_group(group),
    }
}

/// Smallest real organ volume (mL) compared.
const MIN_ORGAN_ML: f64 = 5.0;
/// Voxels sampled per organ and source for the HU distributions.
const MAX_SAMPLES: usize = 200_000;

pub struct FidelityArgs<'a> {
    /// Run folders, one row each (the painter's row is made from the first).
    pub runs: &'a [PathBuf],
    pub real_image: &'a Path,
    pub real_labels: &'a Path,
    pub real_names: &'a Path,
    /// Only voxels inside this mask (non-zero), on both sides, matched from each grid's centre.
    pub region: Option<&'a Path>,
    /// The cohort arm compared (default: the first CT or HU arm).
    pub arm: Option<&'a str>,
    /// Subjects of the cohort used (the first N).
    pub max_subjects: usize,
    pub out: &'a Path,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `painter`, or a run's generator (`procedural`, `model`; a later run with the same
    /// generator is told apart by its folder name: `procedural (folder)`).
    pub generator: String,
    pub organ: String,
    pub voxels_real: usize,
    pub voxels_cohort: usize,
    pub hu_mean_real: f64,
    pub hu_mean_cohort: f64,
    pub hu_w1: f64,
    pub texture_distance: Option<f64>,
    /// Side of the NPS patches (mm): 24, or 12 for organs too thin for a 24 mm patch.
    pub texture_patch_mm: f64,
    /// The radial NPS bins' centres (cycles/mm) and both spectra (HU²·mm²) the texture
    /// distance compares (empty where an organ has no patch; the painter's is flat, empty).
    pub nps_frequency_cycles_mm: Vec<f64>,
    pub nps_real: Vec<f64>,
    pub nps_cohort: Vec<f64>,
    /// Axial patches behind each spectrum (all real scans, all subjects); a texture distance
    /// from a handful of real patches is marked in the report.
    pub nps_patches_real: usize,
    pub nps_patches_cohort: usize,
    /// GLCM contrast, homogeneity, entropy (bits) of the real organ and the cohort's.
    pub glcm_real: Option<[f64; 3]>,
    pub glcm_cohort: Option<[f64; 3]>,
    /// Mean relative difference of the three GLCM features.
    pub glcm_distance: Option<f64>,
    pub vessel_fraction_real: Option<f64>,
    pub vessel_fraction_cohort: Option<f64>,
    pub volume_ml_real: f64,
    pub volume_ml_cohort: f64,
}

/// Below this many real patches an organ's NPS is one or two patches' noise, and the report
/// says so beside its texture distance.
pub(super) const FEW_PATCHES: usize = 10;

/// One source's voxels of one organ: HU values, radially binned NPS, volume, GLCM features.
#[derive(Default)]
struct Organ {
    hu: Vec<f64>,
    nps: Option<Vec<f64>>,
    /// Patches the NPS averages.
    nps_patches: usize,
    volume_ml: f64,
    glcm: Option<[f64; 3]>,
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

fn organ(image: &Volume<f32>, mask: &[bool], f_max: f64, patch_mm: f64) -> Organ {
    let n = mask.iter().filter(|&&m| m).count();
    let (nps, nps_patches) = nps(&image.data, mask, &image.grid, f_max, patch_mm)
        .map_or((None, 0), |(v, p)| (Some(v), p));
    Organ {
        hu: sample(&image.data, mask),
        nps,
        nps_patches,
        volume_ml: n as f64 * image.grid.voxel_ml(),
        glcm: None,
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

/// One cohort subject: its image, labels and, with `--region`, which voxels lie in it.
pub(super) struct CohortSubject {
    pub image: Volume<f32>,
    pub labels: Volume<u16>,
    pub region: Option<Vec<bool>>,
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

fn vessel_fraction(hu: &[f64]) -> f64 {
    hu.iter().filter(|&&v| v > -500.0).count() as f64 / hu.len().max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Where a grid's voxels fall inside `region` (non-zero). Positions are matched relative to
/// each grid's centre, as `anatomy.source` centres an imported map on the cohort's grid: a
/// mask drawn on the real scan's grid then selects the same anatomy in a cohort built on that
/// scan's label map (nearest voxel; outside the mask's grid is outside).
fn region_mask(grid: &crate::volume::Grid, region: &Volume<u16>) -> Vec<bool> {
    let centre = |g: &crate::volume::Grid| {
        [0, 1, 2].map(|a| g.origin_mm[a] + 0.5 * (g.dims[a] as f64 - 1.0) * g.spacing_mm[a])
    };
    let (c, rc) = (centre(grid), centre(&region.grid));
    let [rx, ry, rz] = region.grid.dims;
    (0..grid.len())
        .map(|idx| {
            let [i, j, k] = grid.ijk(idx);
            let p = grid.world(i, j, k);
            let v = region.grid.to_voxel([0, 1, 2].map(|a| p[a] - c[a] + rc[a]));
            let r = v.map(|x| x.round());
            if r.iter().any(|&x| x < 0.0) {
                return false;
            }
            let (a, b, c) = (r[0] as usize, r[1] as usize, r[2] as usize);
            a < rx && b < ry && c < rz && region.get(a, b, c) != 0
        })
        .collect()
}

fn and(mut a: Vec<bool>, b: Option<&Vec<bool>>) -> Vec<bool> {
    if let Some(b) = b {
        a.iter_mut().zip(b).for_each(|(x, &y)| *x &= y);
    }
    a
}

/// One run's subjects of the compared arm, and the name of its row.
pub(super) struct Cohort {
    pub generator: String,
    pub arm: String,
    pub subjects: Vec<CohortSubject>,
}

fn load_cohort(
    a: &FidelityArgs,
    dir: &Path,
    region: Option<&Volume<u16>>,
) -> Result<Cohort, LabError> {
    let rows = io::read_manifest(&dir.join("manifest.parquet"))?;
    let arm = match a.arm {
        Some(n) => n.to_string(),
        None => rows
            .iter()
            .find(|r| r.modality == "ct" || (r.modality == "none" && r.protocol.contains("\"hu\"")))
            .map(|r| r.arm.clone())
            .ok_or_else(|| bad(format!("{}: no CT or HU arm to compare", dir.display())))?,
    };
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| r.arm == arm)
        .take(a.max_subjects)
        .collect();
    if mine.is_empty() {
        return Err(bad(format!(
            "{}: no subject has an arm `{arm}`",
            dir.display()
        )));
    }
    let generator = if mine[0].generator.starts_with("latent_diffusion") {
        "model"
    } else {
        "procedural"
    };
    let mut subjects = Vec::new();
    for r in &mine {
        let labels = io::read_labels(&dir.join(&r.label_path))?;
        let image = io::read_image(&dir.join(&r.image_path))?;
        if image.grid.dims != labels.grid.dims {
            return Err(bad(format!(
                "{}: image {:?} and labels {:?} differ in size",
                r.image_path, image.grid.dims, labels.grid.dims
            )));
        }
        subjects.push(CohortSubject {
            region: region.map(|m| region_mask(&labels.grid, m)),
            image,
            labels,
        });
    }
    Ok(Cohort {
        generator: generator.to_string(),
        arm,
        subjects,
    })
}

/// Computes the rows and writes `fidelity.json`, `report.md` and `patches.png` into `out`.
pub fn run(a: &FidelityArgs) -> Result<Vec<Row>, LabError> {
    if a.runs.is_empty() {
        return Err(bad("no run folder to compare"));
    }
    let (image, labels, _) = real_maps(a.real_image, a.real_labels, a.real_names)?;
    let region = a.region.map(io::read_labels).transpose()?;
    let real = RealScan {
        region: region.as_ref().map(|m| region_mask(&image.grid, m)),
        image,
        labels,
    };
    if let Some(r) = &real.region {
        if !r.iter().any(|&x| x) {
            return Err(bad("--region covers no voxel of the real scan"));
        }
    }
    let mut cohorts: Vec<Cohort> = Vec::new();
    for dir in a.runs {
        let mut c = load_cohort(a, dir, region.as_ref())?;
        if cohorts.iter().any(|o| o.generator == c.generator) {
            let name = dir
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().to_string());
            c.generator = format!("{} ({name})", c.generator);
        }
        cohorts.push(c);
    }
    let (out, picture) = compare(std::slice::from_ref(&real), &cohorts);
    let arm = cohorts[0].arm.clone();
    write_report(a, &arm, &out, &cohorts, &picture)?;
    Ok(out)
}

/// A real scan: its image, its labels in ontology ids and, with a region, which voxels count.
pub(super) struct RealScan {
    pub image: Volume<f32>,
    pub labels: Volume<u16>,
    pub region: Option<Vec<bool>>,
}

/// The rows (per organ: the painter from the first cohort's label maps, then each cohort)
/// against the real scans pooled (their voxels pooled, their spectra and GLCM features
/// averaged), and the picture's patches.
pub(super) fn compare(reals: &[RealScan], cohorts: &[Cohort]) -> (Vec<Row>, Picture) {
    // The painter's row is made from the first run's label maps.
    let painted: Vec<Vec<f32>> = cohorts[0]
        .subjects
        .iter()
        .map(|s| painted(&s.labels))
        .collect();
    // Frequencies every grid resolves.
    let nyquist = |g: &crate::volume::Grid| 0.5 / g.spacing_mm[0].max(g.spacing_mm[1]);
    let f_max = cohorts
        .iter()
        .flat_map(|c| &c.subjects)
        .map(|c| nyquist(&c.image.grid))
        .chain(reals.iter().map(|r| nyquist(&r.image.grid)))
        .fold(f64::INFINITY, f64::min);
    // An organ's NPS and GLCM features over scans or subjects, with the NPS's patch count.
    let pooled = |parts: &[Organ], patch_mm: f64| -> (Option<Vec<f64>>, usize, Option<[f64; 3]>) {
        let nps: Vec<&Vec<f64>> = parts.iter().filter_map(|o| o.nps.as_ref()).collect();
        let nps_mean = (!nps.is_empty()).then(|| {
            (0..nps_bins(f_max, patch_mm))
                .map(|b| nps.iter().map(|v| v[b]).sum::<f64>() / nps.len() as f64)
                .collect::<Vec<f64>>()
        });
        let feats: Vec<[f64; 3]> = parts.iter().filter_map(|o| o.glcm).collect();
        let features = (!feats.is_empty()).then(|| {
            [0, 1, 2].map(|k| feats.iter().map(|f| f[k]).sum::<f64>() / feats.len() as f64)
        });
        let patches = parts.iter().map(|o| o.nps_patches).sum();
        (nps_mean, patches, features)
    };

    let mut out = Vec::new();
    let mut picture = Vec::new();
    for group in GROUPS {
        let Some(ids) = group_ids(group) else {
            continue;
        };
        let real_masks: Vec<Vec<bool>> = reals
            .iter()
            .map(|r| and(mask_of(&r.labels, &ids), r.region.as_ref()))
            .collect();
        let real_organs = |patch_mm: f64| -> Vec<Organ> {
            reals
                .iter()
                .zip(&real_masks)
                .map(|(r, m)| organ(&r.image, m, f_max, patch_mm))
                .collect()
        };
        let mut patch_mm = PATCH_MM;
        let mut parts = real_organs(patch_mm);
        let volume_ml: f64 = parts.iter().map(|o| o.volume_ml).sum::<f64>() / reals.len() as f64;
        // A few millilitres (an organ's tip inside a region) make no distribution.
        if volume_ml < MIN_ORGAN_ML {
            continue;
        }
        if parts.iter().all(|o| o.nps.is_none()) {
            patch_mm = SMALL_PATCH_MM;
            parts = real_organs(patch_mm);
        }
        let hu: Vec<f64> = parts.iter().flat_map(|o| o.hu.iter().copied()).collect();
        let range = glcm_range(&hu);
        for ((p, r), m) in parts.iter_mut().zip(reals).zip(&real_masks) {
            p.glcm = glcm(&r.image.data, m, &r.image.grid, range);
        }
        let (nps, nps_patches, glcm_real) = pooled(&parts, patch_mm);
        let real = Organ {
            hu,
            nps,
            nps_patches,
            volume_ml,
            glcm: glcm_real,
        };
        let lung = group == "lung";
        let row = |name: &str,
                   hu: &[f64],
                   nps: Option<&Vec<f64>>,
                   nps_patches: usize,
                   flat: bool,
                   volume: f64,
                   features: Option<[f64; 3]>| Row {
            generator: name.to_string(),
            organ: group.to_string(),
            voxels_real: real.hu.len(),
            voxels_cohort: hu.len(),
            hu_mean_real: mean(&real.hu),
            hu_mean_cohort: mean(hu),
            hu_w1: w1(&real.hu, hu),
            texture_distance: texture_distance(real.nps.as_ref(), nps, flat),
            texture_patch_mm: patch_mm,
            nps_frequency_cycles_mm: real
                .nps
                .as_ref()
                .map(|v| nps_bin_centres(f_max, patch_mm, v.len()))
                .unwrap_or_default(),
            nps_real: real.nps.clone().unwrap_or_default(),
            nps_cohort: nps.cloned().unwrap_or_default(),
            nps_patches_real: real.nps_patches,
            nps_patches_cohort: nps_patches,
            glcm_real: real.glcm,
            glcm_cohort: features,
            glcm_distance: glcm_distance(real.glcm, features),
            vessel_fraction_real: lung.then(|| vessel_fraction(&real.hu)),
            vessel_fraction_cohort: lung.then(|| vessel_fraction(hu)),
            volume_ml_real: real.volume_ml,
            volume_ml_cohort: volume,
        };
        let shown = reals
            .iter()
            .zip(&real_masks)
            .find(|(_, m)| m.iter().any(|&x| x))
            .unwrap_or((&reals[0], &real_masks[0]));
        let mut tiles = vec![patch(
            &shown.0.image.data,
            &shown.0.image.grid,
            shown.1,
            group,
        )];
        for (n, c) in cohorts.iter().enumerate() {
            // Per subject: the organ in its image, and (first run) the painter's voxels under
            // the same mask.
            let masks: Vec<Vec<bool>> = c
                .subjects
                .iter()
                .map(|s| and(mask_of(&s.labels, &ids), s.region.as_ref()))
                .collect();
            let parts: Vec<Organ> = c
                .subjects
                .iter()
                .zip(&masks)
                .map(|(s, m)| Organ {
                    glcm: glcm(&s.image.data, m, &s.image.grid, range),
                    ..organ(&s.image, m, f_max, patch_mm)
                })
                .collect();
            let hu: Vec<f64> = parts.iter().flat_map(|o| o.hu.iter().copied()).collect();
            if hu.is_empty() {
                // Keep the picture's columns in place.
                tiles.extend(std::iter::repeat_n(None, if n == 0 { 2 } else { 1 }));
                continue;
            }
            let volume = mean(&parts.iter().map(|o| o.volume_ml).collect::<Vec<_>>());
            if n == 0 {
                let painter: Vec<f64> = painted
                    .iter()
                    .zip(&masks)
                    .flat_map(|(p, m)| sample(p, m))
                    .collect();
                let grid = &c.subjects[0].image.grid;
                let flat = glcm(&painted[0], &masks[0], grid, range);
                out.push(row("painter", &painter, None, 0, true, volume, flat));
                tiles.push(patch(&painted[0], grid, &masks[0], group));
            }
            let (nps_mean, nps_patches, features) = pooled(&parts, patch_mm);
            out.push(row(
                &c.generator,
                &hu,
                nps_mean.as_ref(),
                nps_patches,
                false,
                volume,
                features,
            ));
            tiles.push(patch(
                &c.subjects[0].image.data,
                &c.subjects[0].image.grid,
                &masks[0],
                group,
            ));
        }
        picture.push(tiles);
    }
    (out, picture)
}

fn write_report(
    a: &FidelityArgs,
    arm: &str,
    rows: &[Row],
    cohorts: &[Cohort],
    picture: &Picture,
) -> Result<(), LabError> {
    let json = serde_json::to_vec_pretty(rows)?;
    let runs: Vec<String> = a
        .runs
        .iter()
        .zip(cohorts)
        .map(|(r, c)| format!("`{}` ({})", r.display(), c.generator))
        .collect();
    let columns = picture_columns(cohorts);
    let md = format!(
        "# Fidelity against the real CT `{}` (arm `{arm}`)\n\nRuns: {}.{}\n\n{}",
        a.real_image.display(),
        runs.join(", "),
        a.region.map_or(String::new(), |r| format!(
            " Only voxels inside the region `{}` (matched from each grid's centre), on both sides.",
            r.display()
        )),
        table(rows, &columns)
    );
    std::fs::create_dir_all(a.out).map_err(LabError::file("cannot create", a.out))?;
    let p: PathBuf = a.out.join("fidelity.json");
    io::write_atomic(&p, &json)?;
    io::write_atomic(&a.out.join("report.md"), md.as_bytes())?;
    write_picture(&a.out.join("patches.png"), picture, columns.len())
}

/// The picture's column names: the real scan, the painter, each cohort.
pub(super) fn picture_columns(cohorts: &[Cohort]) -> Vec<String> {
    ["real", "painter"]
        .into_iter()
        .map(str::to_string)
        .chain(cohorts.iter().map(|c| c.generator.clone()))
        .take(PICTURE_COLUMNS)
        .collect()
}

/// What the columns mean and the rows, as markdown.
pub(super) fn table(rows: &[Row], columns: &[String]) -> String {
    let f = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |x| format!("{x:.d$}"));
    let mut md = format!(
        "Per organ: HU 1-Wasserstein distance, texture distance (mean |Δ log10 NPS|, radially binned, patches of {PATCH_MM} mm, {SMALL_PATCH_MM} mm where marked ¹ because no larger patch fits inside the real organ; ² where fewer than {FEW_PATCHES} real patches fit: a noisy spectrum), GLCM distance (mean relative difference of contrast, homogeneity and entropy of in-plane neighbour pairs, {GLCM_LEVELS} grey levels over the real organ's 1st–99th HU percentiles), lung vessel fraction (> −500 HU), volume. Lower distances are closer to the real scan; `painter` paints every label with its tissue table's mean HU. `patches.png`: per organ (rows, in the table's order) a {SHOW_MM} mm axial patch where the organ is deepest, columns {}.\n\n| organ | generator | HU mean real / cohort | HU W1 | texture distance | GLCM distance | vessel fraction real / cohort | volume mL real / cohort |\n|---|---|---|---|---|---|---|---|\n",
        columns.join(" | ")
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {:.0} / {:.0} | {:.1} | {}{} | {} | {} | {:.0} / {:.0} |\n",
            r.organ,
            r.generator,
            r.hu_mean_real,
            r.hu_mean_cohort,
            r.hu_w1,
            f(r.texture_distance, 2),
            if r.texture_distance.is_some() {
                let small = if r.texture_patch_mm < PATCH_MM {
                    " ¹"
                } else {
                    ""
                };
                let few = if r.nps_patches_real < FEW_PATCHES {
                    " ²"
                } else {
                    ""
                };
                format!("{small}{few}")
            } else {
                String::new()
            },
            f(r.glcm_distance, 2),
            match (r.vessel_fraction_real, r.vessel_fraction_cohort) {
                (Some(x), Some(y)) => format!("{:.3} / {:.3}", x, y),
                _ => "—".into(),
            },
            r.volume_ml_real,
            r.volume_ml_cohort
        ));
    }
    md
}

/// Writes the patches as a PNG grid (nothing when no organ was compared).
pub(super) fn write_picture(
    path: &Path,
    picture: &Picture,
    columns: usize,
) -> Result<(), LabError> {
    let mut tiles = Vec::new();
    for row in picture {
        let Some(Some(first)) = row.first() else {
            continue;
        };
        // A run without the organ shows air in its column.
        for t in row.iter().take(PICTURE_COLUMNS) {
            tiles.push(t.clone().unwrap_or_else(|| PreviewTile {
                image: vec![-1000.0; first.image.len()],
                ..first.clone()
            }));
        }
    }
    if !tiles.is_empty() {
        let png = render_grid(&tiles, &|_| [0, 0, 0], PICTURE_COLUMNS.min(columns))?;
        io::write_atomic(path, &png)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_of_shifted_samples_is_the_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64 * 0.1).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 7.0).collect();
        assert!((w1(&a, &b) - 7.0).abs() < 1e-9);
        assert!(w1(&a, &a) < 1e-12);
    }
}
