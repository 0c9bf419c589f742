//! `synthcohort anatomy-check`: how real a pipeline's anatomy is.
//!
//! - **Population**: the pipeline's cohort (resized to N subjects, lesions left out) is built
//!   and each organ with a literature norm ([`crate::anatomy::norms`]) is measured against
//!   the norm for that subject's demographics: mean and SD of the volumes, the mean norm, the
//!   fraction of subjects within 2 SD. For atlas templates also the smallest Jacobian
//!   determinant of any subject's pull-back (> 0: nothing folds) and the build time.
//! - **Realism against a real segmentation** (any class names, mapped through the ontology):
//!   generated subjects of each compared template are aligned to the reference by translation
//!   and isotropic scale (no rotation: both are in the patient frame), chosen to maximise the
//!   mean Dice over the organs both have, then per organ: Dice, centroid offset after
//!   alignment, and surface-to-volume ratio (compactness) of the generated organ against the
//!   reference's, both on the reference grid.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::LabError;
use crate::anatomy::{
    self, import_labels, norms, ontology, parse_names_file, AnatomyParams, Template,
};
use crate::cohort::{self, CohortPlan};
use crate::io;
use crate::rng::{self, Stage};
use crate::volume::{Grid, Volume};

/// Organs compared with a reference segmentation, where both have them.
pub const REALISM_ORGANS: [&str; 15] = [
    "liver",
    "spleen",
    "kidney_left",
    "kidney_right",
    "stomach",
    "pancreas",
    "gallbladder",
    "aorta",
    "inferior_vena_cava",
    "spinal_cord",
    "autochthon_left",
    "autochthon_right",
    "lung_left",
    "lung_right",
    "heart",
];

/// Smallest volume (mL) of an organ in the reference for it to be compared.
const MIN_REFERENCE_ML: f64 = 5.0;

pub struct AnatomyCheckArgs<'a> {
    pub pipeline: &'a Path,
    /// Subjects for the population table.
    pub subjects: u32,
    /// A real segmentation and its class names.
    pub reference: Option<(&'a Path, &'a Path)>,
    /// Templates in the realism table (the pipeline's own first).
    pub compare: Vec<Template>,
    /// Generated subjects per template in the realism table.
    pub realism_subjects: u32,
    pub out: &'a Path,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrganPopulation {
    pub organ: String,
    /// The atlas's field cut the organ: volumes are of the part inside it, and the norm is
    /// scaled by this fraction of the whole organ the atlas holds.
    pub in_field_fraction: Option<f64>,
    pub subjects: usize,
    pub mean_ml: f64,
    pub sd_ml: f64,
    /// Mean over subjects of the norm's mean and SD for their demographics.
    pub norm_mean_ml: f64,
    pub norm_sd_ml: f64,
    /// Fraction of subjects within 2 SD of their norm.
    pub within_2sd: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Population {
    pub template: String,
    pub subjects: u32,
    pub grid: Grid,
    pub organs: Vec<OrganPopulation>,
    /// Smallest Jacobian determinant of any subject's pull-back (atlas templates).
    pub min_jacobian: Option<f64>,
    pub anatomy_ms_per_subject: f64,
    /// Subcutaneous and visceral (torso) fat by BMI class, where the template has both.
    pub fat: Option<FatByBmi>,
}

/// Subcutaneous and visceral fat of the cohort against BMI.
#[derive(Clone, Debug, Serialize)]
pub struct FatByBmi {
    pub classes: Vec<FatClass>,
    /// Pearson correlation over subjects of BMI with the subcutaneous/visceral volume ratio
    /// (the literature finds none: Maurovich-Horvat et al. 2007) and with the visceral volume.
    pub r_bmi_ratio: f64,
    pub r_bmi_visceral: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FatClass {
    /// "BMI < 25", "25–30", "≥ 30".
    pub class: String,
    pub subjects: usize,
    pub bmi_mean: f64,
    pub subcutaneous_ml: f64,
    pub visceral_ml: f64,
    pub ratio_mean: f64,
    pub ratio_sd: f64,
}

/// Pearson correlation of two equally long series (0 when either is constant).
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Groups (BMI, subcutaneous mL, visceral mL) per subject into BMI classes.
fn fat_by_bmi(fat: &[(f64, f64, f64)]) -> Option<FatByBmi> {
    let fat: Vec<_> = fat
        .iter()
        .copied()
        .filter(|f| f.1 > 0.0 && f.2 > 0.0)
        .collect();
    if fat.len() < 3 {
        return None;
    }
    let classes = [
        ("BMI < 25", 0.0, 25.0),
        ("25–30", 25.0, 30.0),
        ("≥ 30", 30.0, f64::MAX),
    ]
    .iter()
    .filter_map(|&(name, lo, hi)| {
        let v: Vec<_> = fat.iter().filter(|f| f.0 >= lo && f.0 < hi).collect();
        let n = v.len() as f64;
        (!v.is_empty()).then(|| {
            let ratio: Vec<f64> = v.iter().map(|f| f.1 / f.2).collect();
            let rm = ratio.iter().sum::<f64>() / n;
            FatClass {
                class: name.to_string(),
                subjects: v.len(),
                bmi_mean: v.iter().map(|f| f.0).sum::<f64>() / n,
                subcutaneous_ml: v.iter().map(|f| f.1).sum::<f64>() / n,
                visceral_ml: v.iter().map(|f| f.2).sum::<f64>() / n,
                ratio_mean: rm,
                ratio_sd: (ratio.iter().map(|r| (r - rm).powi(2)).sum::<f64>()
                    / (n - 1.0).max(1.0))
                .sqrt(),
            }
        })
    })
    .collect();
    let bmi: Vec<f64> = fat.iter().map(|f| f.0).collect();
    let ratio: Vec<f64> = fat.iter().map(|f| f.1 / f.2).collect();
    let vat: Vec<f64> = fat.iter().map(|f| f.2).collect();
    Some(FatByBmi {
        classes,
        r_bmi_ratio: pearson(&bmi, &ratio),
        r_bmi_visceral: pearson(&bmi, &vat),
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct RealismRow {
    pub template: String,
    pub organ: String,
    pub dice_mean: f64,
    pub dice_sd: f64,
    pub centroid_offset_mm: f64,
    /// Surface-to-volume ratio (1/mm), generated and reference, on the reference grid.
    pub sv_generated: f64,
    pub sv_reference: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Realism {
    pub reference: String,
    pub organs: Vec<String>,
    pub rows: Vec<RealismRow>,
    /// Per template: mean Dice over organs and subjects.
    pub mean_dice: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnatomyCheck {
    pub pipeline: String,
    pub population: Population,
    pub realism: Option<Realism>,
}

/// Runs the check and writes `report.json` and `report.md` into `out`.
pub fn run(args: &AnatomyCheckArgs) -> Result<AnatomyCheck, LabError> {
    let mut p = crate::pipeline::load(args.pipeline)
        .map_err(|e| LabError::Input(format!("{}: {e}", args.pipeline.display())))?;
    if p.spec.anatomy.source.is_some() {
        return Err(LabError::Input(
            "anatomy-check measures templates; this pipeline imports anatomy.source".into(),
        ));
    }
    p.spec.cohort.size = args.subjects.max(1);
    let population = population(&p.spec)?;
    let realism = match args.reference {
        Some((seg, names)) => Some(realism(&p.spec, seg, names, args)?),
        None => None,
    };
    let report = AnatomyCheck {
        pipeline: args.pipeline.display().to_string(),
        population,
        realism,
    };
    std::fs::create_dir_all(args.out).map_err(|source| LabError::File {
        op: "creating",
        path: args.out.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&report)?;
    io::atomic::write_atomic(&args.out.join("report.json"), (json + "\n").as_bytes())?;
    io::atomic::write_atomic(&args.out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

fn params(
    spec: &crate::pipeline::Pipeline,
    s: &cohort::Subject,
    t: Template,
    grid: &Grid,
) -> AnatomyParams {
    AnatomyParams {
        template: t,
        grid: grid.clone(),
        body: s.body_size(spec.anatomy.body_scaling),
        deformation_mm: spec.anatomy.deformation_mm,
        lesions: Vec::new(),
    }
}

fn build(
    spec: &crate::pipeline::Pipeline,
    plan: &CohortPlan,
    idx: u64,
    t: Template,
    grid: &Grid,
) -> Result<(cohort::Subject, AnatomyParams, Volume<u16>), LabError> {
    let s = cohort::sample(spec, plan, idx);
    let prm = params(spec, &s, t, grid);
    let mut arng = rng::stream(s.seed, Stage::Anatomy, 0);
    let mut lrng = rng::stream(s.seed, Stage::Lesions, 0);
    let a = anatomy::build(&prm, None, &mut arng, &mut lrng)
        .map_err(|e| LabError::Input(format!("subject {idx}: {e}")))?;
    Ok((s, prm, a.labels))
}

fn population(spec: &crate::pipeline::Pipeline) -> Result<Population, LabError> {
    let t = spec.anatomy.template;
    let grid = Grid::centered(
        spec.anatomy.size.map(|d| d as usize),
        spec.anatomy.spacing_mm,
    );
    let plan = CohortPlan::new(spec);
    // Organs the atlas's field cut: (name, in-field fraction of the whole organ).
    // Labels on an atlas's first or last slice: its field cut them.
    let atlas_edge: std::collections::BTreeSet<u16> = if t.is_atlas() {
        let a = anatomy::atlas::load(t).map_err(|e| LabError::Input(e.to_string()))?;
        let plane = a.labels.grid.dims[0] * a.labels.grid.dims[1];
        let n = a.labels.data.len();
        a.labels.data[..plane]
            .iter()
            .chain(&a.labels.data[n - plane..])
            .copied()
            .collect()
    } else {
        Default::default()
    };
    let cut: Vec<(&str, f64)> = if t.is_atlas() {
        anatomy::atlas::load(t)
            .map_err(|e| LabError::Input(e.to_string()))?
            .organs
            .iter()
            .filter(|o| o.cut)
            .map(|o| (o.name, o.volume_ml / o.full_ml))
            .collect()
    } else {
        Vec::new()
    };
    // Labels or groups (the brain is grey + white matter).
    let ids: Vec<(&str, Vec<u16>)> = norms::ORGANS
        .iter()
        .filter_map(|n| ontology::organ_group(n).map(|g| (*n, g)))
        .collect();
    // (volume, norm) per organ per subject.
    let mut vols: Vec<Vec<(f64, norms::Norm)>> = vec![Vec::new(); ids.len()];
    let mut min_jac: Option<f64> = None;
    let mut secs = 0.0;
    // (BMI, subcutaneous mL, visceral mL) per subject.
    let mut fat = Vec::new();
    for idx in 0..spec.cohort.size as u64 {
        let t0 = Instant::now();
        let (s, prm, labels) = build(spec, &plan, idx, t, &grid)?;
        secs += t0.elapsed().as_secs_f64();
        let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
        for &l in &labels.data {
            *counts.entry(l).or_default() += 1;
        }
        // Labels on the grid's first or last slice (cut by the subject's field) or on the
        // atlas's (cut by the scan's).
        let ml = |id: u16| counts.get(&id).copied().unwrap_or(0) as f64 * grid.voxel_ml();
        fat.push((
            prm.body.bmi(),
            ml(ontology::SUBCUTANEOUS_FAT),
            ml(ontology::TORSO_FAT),
        ));
        let plane = grid.dims[0] * grid.dims[1];
        let edge: std::collections::BTreeSet<u16> = labels.data[..plane]
            .iter()
            .chain(&labels.data[labels.data.len() - plane..])
            .chain(&atlas_edge)
            .copied()
            .collect();
        for (k, (name, group)) in ids.iter().enumerate() {
            let n: usize = group
                .iter()
                .map(|id| counts.get(id).copied().unwrap_or(0))
                .sum();
            // An organ the field cuts is compared only where the atlas knows what part of it
            // is in the field (the abdomen atlas's liver); lung bases in an abdomen are not.
            let known_cut = cut.iter().any(|c| c.0 == *name);
            if !known_cut && group.iter().any(|id| edge.contains(id)) {
                continue;
            }
            if let (true, Some(norm)) = (n > 0, norms::organ_norm(name, &prm.body)) {
                // A cut organ is compared with the same fraction of its norm.
                let f = cut.iter().find(|c| c.0 == *name).map_or(1.0, |c| c.1);
                let norm = norms::Norm {
                    mean_ml: norm.mean_ml * f,
                    sd_ml: norm.sd_ml * f,
                };
                vols[k].push((n as f64 * grid.voxel_ml(), norm));
            }
        }
        if t.is_atlas() {
            let a = anatomy::atlas::load(t).map_err(|e| LabError::Input(e.to_string()))?;
            let w = anatomy::subject_warp(&prm, a, &mut rng::stream(s.seed, Stage::Anatomy, 0));
            let j = w.min_jacobian();
            min_jac = Some(min_jac.map_or(j, |m: f64| m.min(j)));
        }
    }
    let organs = ids
        .iter()
        .zip(&vols)
        .filter(|(_, v)| !v.is_empty())
        .map(|((name, _), v)| {
            let n = v.len() as f64;
            let mean = v.iter().map(|x| x.0).sum::<f64>() / n;
            let sd =
                (v.iter().map(|x| (x.0 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
            OrganPopulation {
                organ: name.to_string(),
                in_field_fraction: cut.iter().find(|c| c.0 == *name).map(|c| c.1),
                subjects: v.len(),
                mean_ml: mean,
                sd_ml: sd,
                norm_mean_ml: v.iter().map(|x| x.1.mean_ml).sum::<f64>() / n,
                norm_sd_ml: v.iter().map(|x| x.1.sd_ml).sum::<f64>() / n,
                within_2sd: v.iter().filter(|x| x.1.z(x.0).abs() <= 2.0).count() as f64 / n,
            }
        })
        .collect();
    Ok(Population {
        template: t.name().to_string(),
        subjects: spec.cohort.size,
        grid,
        organs,
        min_jacobian: min_jac,
        anatomy_ms_per_subject: 1000.0 * secs / spec.cohort.size.max(1) as f64,
        fat: fat_by_bmi(&fat),
    })
}

fn realism(
    spec: &crate::pipeline::Pipeline,
    seg: &Path,
    names: &Path,
    args: &AnatomyCheckArgs,
) -> Result<Realism, LabError> {
    let mut src = io::nifti::read_labels(seg)?;
    src.grid = Grid::centered(src.grid.dims, src.grid.spacing_mm);
    let text = io::bounded::read_text(names, io::bounded::SMALL_TEXT_BYTES, "label-name table")?;
    let table = parse_names_file(&text)
        .map_err(|e| LabError::Input(format!("{}: {e}", names.display())))?;
    let (reference, _) = import_labels(&src, &table, &src.grid.clone());
    // Each organ as the labels that make it up (a lung: its lobes or the whole lung, whichever
    // a map has; intrapulmonary vessels are left out, having no side), kept where the
    // reference has it and every compared template can make it (an abdomen has no heart).
    let template_sets: Vec<Vec<u16>> = args
        .compare
        .iter()
        .map(|&t| anatomy::template_labels(t))
        .collect();
    let organs: Vec<(String, Vec<u16>)> = REALISM_ORGANS
        .iter()
        .filter_map(|n| {
            let mut g = ontology::organ_group(n)?;
            g.retain(|&id| id != ontology::PULMONARY_VESSELS);
            Some((n.to_string(), g))
        })
        // At least 5 mL of it in the reference: a sliver at the field's edge is no shape.
        .filter(|(_, g)| {
            let n = reference.data.iter().filter(|l| g.contains(l)).count();
            n as f64 * reference.grid.voxel_ml() >= MIN_REFERENCE_ML
        })
        .filter(|(_, g)| {
            template_sets
                .iter()
                .all(|s| g.iter().any(|id| s.contains(id)))
        })
        .collect();
    if organs.is_empty() {
        return Err(LabError::Input(format!(
            "{} and the compared templates share none of the compared organs ({})",
            seg.display(),
            REALISM_ORGANS.join(", ")
        )));
    }
    // Both sides relabelled to organ numbers 1..=n, so groups compare as one label.
    let mut lut = vec![0u16; usize::from(u16::MAX) + 1];
    for (k, (_, g)) in organs.iter().enumerate() {
        for &id in g {
            lut[usize::from(id)] = k as u16 + 1;
        }
    }
    let to_organ = |v: &Volume<u16>| -> Volume<u16> {
        Volume::from_vec(
            v.grid.clone(),
            v.data.iter().map(|&l| lut[usize::from(l)]).collect(),
        )
    };
    let reference = to_organ(&reference);
    let ids: Vec<u16> = (1..=organs.len() as u16).collect();
    let plan = CohortPlan::new(spec);
    let mut rows = Vec::new();
    let mut mean_dice = BTreeMap::new();
    for &t in &args.compare {
        let grid = t.covering_grid();
        let mut per: Vec<Vec<Aligned>> = vec![Vec::new(); ids.len()];
        for idx in 0..args.realism_subjects.max(1) as u64 {
            let (_, _, labels) = build(spec, &plan, idx, t, &grid)?;
            let al = align(&to_organ(&labels), &reference, &ids);
            for (k, a) in al.into_iter().enumerate() {
                per[k].push(a);
            }
        }
        let mut all = Vec::new();
        for ((name, _), v) in organs.iter().zip(&per) {
            let n = v.len() as f64;
            let dm = v.iter().map(|a| a.dice).sum::<f64>() / n;
            let dsd =
                (v.iter().map(|a| (a.dice - dm).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
            all.extend(v.iter().map(|a| a.dice));
            rows.push(RealismRow {
                template: t.name().to_string(),
                organ: name.clone(),
                dice_mean: dm,
                dice_sd: dsd,
                centroid_offset_mm: v.iter().map(|a| a.offset_mm).sum::<f64>() / n,
                sv_generated: v.iter().map(|a| a.sv_generated).sum::<f64>() / n,
                sv_reference: v[0].sv_reference,
            });
        }
        mean_dice.insert(
            t.name().to_string(),
            all.iter().sum::<f64>() / all.len() as f64,
        );
    }
    Ok(Realism {
        reference: seg.display().to_string(),
        organs: organs.into_iter().map(|o| o.0).collect(),
        rows,
        mean_dice,
    })
}

/// One organ after the alignment.
#[derive(Clone, Debug)]
struct Aligned {
    dice: f64,
    offset_mm: f64,
    sv_generated: f64,
    sv_reference: f64,
}

/// Aligns `gen` to `reference` by translation and isotropic scale (maximising the mean Dice
/// over `ids`) and measures each organ there.
fn align(gen: &Volume<u16>, reference: &Volume<u16>, ids: &[u16]) -> Vec<Aligned> {
    let rg = &reference.grid;
    let gg = &gen.grid;
    let in_set = |l: u16| ids.contains(&l);
    // Reference: centroid (x, y) of the union of the organs.
    let union: Vec<[f64; 3]> = (0..rg.len())
        .filter(|&v| in_set(reference.data[v]))
        .map(|v| {
            let [i, j, k] = rg.ijk(v);
            rg.world(i, j, k)
        })
        .collect();
    let n_ref = union.len().max(1) as f64;
    let c_ref = [0, 1].map(|a| union.iter().map(|p| p[a]).sum::<f64>() / n_ref);
    // Generated: per slice, the union's voxel count and x, y sums.
    let [gx, gy, gz] = gg.dims;
    let slices: Vec<(f64, f64, f64)> = (0..gz)
        .map(|k| {
            let mut acc = (0.0, 0.0, 0.0);
            for j in 0..gy {
                for i in 0..gx {
                    if in_set(gen.get(i, j, k)) {
                        let p = gg.world(i, j, k);
                        acc = (acc.0 + 1.0, acc.1 + p[0], acc.2 + p[1]);
                    }
                }
            }
            acc
        })
        .collect();
    let half_h = 0.5 * rg.dims[2] as f64 * rg.spacing_mm[2];
    // The union's centroid in the generated slab a placement at slice k and scale s covers.
    let window_centre = |s: f64, k: usize| -> Option<[f64; 3]> {
        let tz = gg.world(0, 0, k)[2];
        let lo = ((tz - half_h / s - gg.origin_mm[2]) / gg.spacing_mm[2])
            .floor()
            .max(0.0) as usize;
        let hi =
            (((tz + half_h / s - gg.origin_mm[2]) / gg.spacing_mm[2]).ceil() as usize).min(gz - 1);
        let acc = slices[lo..=hi]
            .iter()
            .fold((0.0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        (acc.0 > 0.0).then(|| [acc.1 / acc.0, acc.2 / acc.0, tz])
    };
    let to_gen = |r: [f64; 3], s: f64, c: [f64; 3]| {
        [
            c[0] + (r[0] - c_ref[0]) / s,
            c[1] + (r[1] - c_ref[1]) / s,
            c[2] + r[2] / s,
        ]
    };
    // Reference voxels (world, organ index or none), all and a coarse subset for the search.
    let all_vox: Vec<([f64; 3], Option<usize>)> = (0..rg.len())
        .map(|v| {
            let [i, j, k] = rg.ijk(v);
            (
                rg.world(i, j, k),
                ids.iter().position(|&x| x == reference.data[v]),
            )
        })
        .collect();
    // Subsets for the searches: every third voxel along each axis for the coarse one, every
    // second in-plane for the fine one; the final Dice uses them all.
    let subset = |step: [usize; 3]| -> Vec<([f64; 3], Option<usize>)> {
        (0..rg.len())
            .filter(|&v| {
                let [i, j, k] = rg.ijk(v);
                i % step[0] == 0 && j % step[1] == 0 && k % step[2] == 0
            })
            .map(|v| all_vox[v])
            .collect()
    };
    let coarse = subset([3, 3, 3]);
    let medium = subset([2, 2, 1]);
    let dice_at = |vox: &[([f64; 3], Option<usize>)], s: f64, c: [f64; 3]| -> Vec<f64> {
        let mut inter = vec![0usize; ids.len()];
        let mut gen_count = vec![0usize; ids.len()];
        let mut ref_n = vec![0usize; ids.len()];
        for &(w, o_ref) in vox {
            let l = gen.sample_nearest(to_gen(w, s, c)).unwrap_or(0);
            if let Some(o) = o_ref {
                ref_n[o] += 1;
            }
            if let Some(o) = ids.iter().position(|&x| x == l) {
                gen_count[o] += 1;
                if o_ref == Some(o) {
                    inter[o] += 1;
                }
            }
        }
        (0..ids.len())
            .map(|o| 2.0 * inter[o] as f64 / (ref_n[o] + gen_count[o]).max(1) as f64)
            .collect()
    };
    let mean = |d: &[f64]| d.iter().sum::<f64>() / d.len() as f64;
    // Coarse search: scale, slab position every other slice, in-plane shifts ±48 mm around
    // the matched union centroids; then a fine search around the best.
    let shifts: Vec<f64> = (-4..=4).map(|n| 12.0 * n as f64).collect();
    let coarse_placements: Vec<(f64, [f64; 3])> = [0.85, 0.95, 1.0, 1.05, 1.15]
        .iter()
        .flat_map(|&s| (0..gz).step_by(2).map(move |k| (s, k)))
        .filter_map(|(s, k)| window_centre(s, k).map(|c| (s, c)))
        .flat_map(|(s, c)| {
            let shifts = &shifts;
            shifts.iter().flat_map(move |&dx| {
                shifts
                    .iter()
                    .map(move |&dy| (s, [c[0] + dx, c[1] + dy, c[2]]))
            })
        })
        .collect();
    let best_of = |placements: &[(f64, [f64; 3])], vox: &[([f64; 3], Option<usize>)]| {
        placements
            .par_iter()
            .map(|&(s, c)| (mean(&dice_at(vox, s, c)), s, c))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let best = best_of(&coarse_placements, &coarse).and_then(|(_, s0, c0)| {
        let fine: Vec<(f64, [f64; 3])> = [-0.05, -0.025, 0.0, 0.025, 0.05]
            .iter()
            .flat_map(|ds| {
                [-6.0, -3.0, 0.0, 3.0, 6.0].iter().flat_map(move |dz| {
                    (-3..=3).flat_map(move |ix| {
                        (-3..=3).map(move |iy| {
                            (
                                s0 + ds,
                                [c0[0] + 3.0 * ix as f64, c0[1] + 3.0 * iy as f64, c0[2] + dz],
                            )
                        })
                    })
                })
            })
            .collect();
        best_of(&fine, &medium)
    });
    let Some((_, s, c)) = best else {
        return ids
            .iter()
            .map(|_| Aligned {
                dice: 0.0,
                offset_mm: f64::NAN,
                sv_generated: f64::NAN,
                sv_reference: f64::NAN,
            })
            .collect();
    };
    // The generated map on the reference grid at the best placement.
    let moved: Vec<u16> = (0..rg.len())
        .map(|v| {
            let [i, j, k] = rg.ijk(v);
            gen.sample_nearest(to_gen(rg.world(i, j, k), s, c))
                .unwrap_or(0)
        })
        .collect();
    let moved = Volume::from_vec(rg.clone(), moved);
    let dice = dice_at(&all_vox, s, c);
    ids.iter()
        .zip(dice)
        .map(|(&id, d)| {
            let (cg, sg) = centroid_and_sv(&moved, id);
            let (cr, sr) = centroid_and_sv(reference, id);
            let offset_mm = match (cg, cr) {
                (Some(a), Some(b)) => {
                    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
                }
                _ => f64::NAN,
            };
            Aligned {
                dice: d,
                offset_mm,
                sv_generated: sg,
                sv_reference: sr,
            }
        })
        .collect()
}

/// Centroid (mm) and surface-to-volume ratio (1/mm) of label `id`; faces on the grid's top and
/// bottom slices are not surface (the slab, not the organ, ends there).
fn centroid_and_sv(v: &Volume<u16>, id: u16) -> (Option<[f64; 3]>, f64) {
    let g = &v.grid;
    let [nx, ny, nz] = g.dims;
    let [hx, hy, hz] = g.spacing_mm;
    let (mut n, mut sum, mut area) = (0usize, [0.0; 3], 0.0);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if v.get(i, j, k) != id {
                    continue;
                }
                n += 1;
                let p = g.world(i, j, k);
                for a in 0..3 {
                    sum[a] += p[a];
                }
                let out = |ii: i64, jj: i64| {
                    ii < 0
                        || jj < 0
                        || ii >= nx as i64
                        || jj >= ny as i64
                        || v.get(ii as usize, jj as usize, k) != id
                };
                let (ii, jj) = (i as i64, j as i64);
                area += hy * hz * (out(ii - 1, jj) as u8 + out(ii + 1, jj) as u8) as f64;
                area += hx * hz * (out(ii, jj - 1) as u8 + out(ii, jj + 1) as u8) as f64;
                if k > 0 && v.get(i, j, k - 1) != id {
                    area += hx * hy;
                }
                if k + 1 < nz && v.get(i, j, k + 1) != id {
                    area += hx * hy;
                }
            }
        }
    }
    if n == 0 {
        return (None, f64::NAN);
    }
    let c = sum.map(|s| s / n as f64);
    (Some(c), area / (n as f64 * hx * hy * hz))
}

fn markdown(r: &AnatomyCheck) -> String {
    let p = &r.population;
    let mut s = format!(
        "# Anatomy check: {}\n\n## Organ volumes against literature norms\n\n{} subjects of template `{}` on a {}×{}×{} grid at {:?} mm (lesions left out); norms in `src/anatomy/norms.rs`.\n\n| organ | subjects | volume mL (mean ± SD) | norm mL (mean ± SD) | within 2 SD |\n| --- | --- | --- | --- | --- |\n",
        r.pipeline, p.subjects, p.template, p.grid.dims[0], p.grid.dims[1], p.grid.dims[2], p.grid.spacing_mm
    );
    for o in &p.organs {
        s += &format!(
            "| {}{} | {} | {:.0} ± {:.0} | {:.0} ± {:.0} | {:.0} % |\n",
            o.organ,
            o.in_field_fraction
                .map(|f| {
                    if o.organ.starts_with("lung") {
                        format!(" (at the atlas scan's breath-hold: norm × {f:.2})")
                    } else {
                        format!(" (cut by the atlas field: in-field part, norm × {f:.2})")
                    }
                })
                .unwrap_or_default(),
            o.subjects,
            o.mean_ml,
            o.sd_ml,
            o.norm_mean_ml,
            o.norm_sd_ml,
            100.0 * o.within_2sd
        );
    }
    if let Some(j) = p.min_jacobian {
        s += &format!("\nSmallest Jacobian determinant of any subject's pull-back: {j:.3} (> 0: no folding).\n");
    }
    s += &format!(
        "\nAnatomy build time: {:.0} ms per subject.\n",
        p.anatomy_ms_per_subject
    );
    if let Some(f) = &p.fat {
        s += "\n## Subcutaneous and visceral fat by BMI\n\nVisceral = the torso fat label (visceral + intermuscular). The literature finds the subcutaneous/visceral volume ratio independent of BMI (Maurovich-Horvat et al., Int J Obes 2007;31:500: men 1.2 ± 0.5, women 2.2 ± 0.9) while both volumes grow with it.\n\n| BMI class | subjects | mean BMI | subcutaneous mL | visceral mL | ratio (mean ± SD) |\n| --- | --- | --- | --- | --- | --- |\n";
        for c in &f.classes {
            s += &format!(
                "| {} | {} | {:.1} | {:.0} | {:.0} | {:.2} ± {:.2} |\n",
                c.class,
                c.subjects,
                c.bmi_mean,
                c.subcutaneous_ml,
                c.visceral_ml,
                c.ratio_mean,
                c.ratio_sd
            );
        }
        s += &format!(
            "\nPearson r over subjects: BMI vs ratio {:.2}, BMI vs visceral volume {:.2}.\n",
            f.r_bmi_ratio, f.r_bmi_visceral
        );
    }
    if let Some(re) = &r.realism {
        s += &format!(
            "\n## Against a real segmentation\n\nReference: `{}`. Generated subjects aligned by translation and isotropic scale (best mean Dice); Dice mean ± SD over subjects, centroid offset after alignment, surface-to-volume ratio (1/mm) generated vs reference.\n\n| template | organ | Dice | centroid offset mm | S/V generated | S/V reference |\n| --- | --- | --- | --- | --- | --- |\n",
            re.reference
        );
        for row in &re.rows {
            s += &format!(
                "| {} | {} | {:.3} ± {:.3} | {:.1} | {:.3} | {:.3} |\n",
                row.template,
                row.organ,
                row.dice_mean,
                row.dice_sd,
                row.centroid_offset_mm,
                row.sv_generated,
                row.sv_reference
            );
        }
        s += "\n| template | mean Dice |\n| --- | --- |\n";
        for (t, d) in &re.mean_dice {
            s += &format!("| {t} | {d:.3} |\n");
        }
    }
    s
}
