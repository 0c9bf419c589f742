//! `synthcohort eval-model`: how close a latent diffusion model's objects are to its data.
//!
//! For each held-out subject the model generates an object from that subject's labels and
//! prompt; the report compares it with the subject's real (here: procedural) object:
//! - intensity: per tissue group, mean and SD of generated vs held-out data;
//! - label adherence: Dice between the conditioning labels and a nearest-class-mean
//!   segmentation of the generated object, each voxel choosing among the tissue groups
//!   present within 2 voxels in the labels (so it measures whether boundaries and contrasts
//!   sit where the labels put them); the same segmentation of the held-out data is the
//!   ceiling;
//! - text effect: mean liver HU of subjects whose prompt names steatosis minus the rest,
//!   generated vs data (CT); white-matter T2 for white-matter hyperintensity (MRI);
//! - diversity: mean pairwise SSIM of samples with the same labels and prompt;
//! - memorization: each sample's distance to its nearest training subject (RMS over a 4×
//!   down-sampled grid) vs the median training-to-nearest-training distance; beside it the
//!   same distance for the held-out subject whose labels and prompt the sample was made
//!   from. A sample has that subject's anatomy, so it should sit as far from the training
//!   set as the subject does; a memorizing model puts it nearer. (The plain criterion also
//!   flags unseen real subjects — the closest of 32 is below the median of 168 nearest
//!   distances — so the paired comparison is the one that separates memorization.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use synthcohort_ldm::cpu::Sampler;
use synthcohort_ldm::train::Case;
use synthcohort_ldm::{GuidanceChoice, LdmConfig, Modality, SampleRequest, Solver};

use super::data::{self as dataset, RawCase};
use super::LabError;

mod fidelity;
mod report;
use crate::anatomy::ontology;
use crate::tissue;
use report::write_report;

/// Tissue groups evaluated per modality, by tissue class of the label.
fn group_of(label_name: &str, modality: Modality) -> Option<&'static str> {
    let t = tissue::tissue_for_label(label_name).name;
    match modality {
        Modality::Ct => match t {
            "lung" => Some("lung"),
            "heart" => Some("heart"),
            "liver" => Some("liver"),
            "muscle" => Some("muscle"),
            "fat" => Some("fat"),
            "cancellous_bone" | "rib_bone" | "cortical_bone" => Some("bone"),
            _ => None,
        },
        Modality::Mri => match t {
            "grey_matter" => Some("grey_matter"),
            "white_matter" => Some("white_matter"),
            "csf" => Some("csf"),
            _ => None,
        },
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub sd: f64,
    pub voxels: u64,
}

fn stat(v: &[f32]) -> Stat {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    Stat {
        mean,
        sd: var.sqrt(),
        voxels: v.len() as u64,
    }
}

#[derive(Debug, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub channel: String,
    pub data: Stat,
    pub generated: Stat,
    /// The autoencoder's reconstruction of the held-out data: the best the model can
    /// express (texture the generated SD lacks but this has is the denoiser's limit).
    pub reconstructed: Stat,
    pub mean_difference: f64,
    pub dice_generated: f64,
    pub dice_data: f64,
}

#[derive(Debug, Serialize)]
pub struct TextEffect {
    pub condition: String,
    pub group: String,
    pub channel: String,
    pub subjects_with: usize,
    pub subjects_without: usize,
    pub data_shift: f64,
    pub generated_shift: f64,
    /// The same shift in the autoencoder's reconstructions of the held-out data.
    pub reconstructed_shift: f64,
    /// generated / data.
    pub ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub data: String,
    pub held_out_subjects: usize,
    pub training_subjects: usize,
    pub steps: usize,
    pub guidance_text: f32,
    pub guidance_labels: f32,
    pub seconds_per_sample: f64,
    pub groups: Vec<GroupReport>,
    pub text_effects: Vec<TextEffect>,
    pub diversity_ssim: f64,
    pub diversity_samples: usize,
    pub nearest_training_distance: Vec<f64>,
    /// Median over training subjects of the distance to their nearest other one.
    pub median_training_nn_distance: f64,
    pub min_sample_to_training: f64,
    /// The held-out subjects' own distances to their nearest training subject.
    pub held_out_nearest_training_distance: Vec<f64>,
    pub min_held_out_to_training: f64,
    /// Samples nearer the training set than their own held-out subject by more than 5 %.
    pub samples_nearer_than_subject: usize,
    /// CT: per organ, held-out real images against the model's drawings and the painter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fidelity: Vec<crate::lab::fidelity::Row>,
    #[serde(skip)]
    pub fidelity_table: String,
}

pub struct EvalArgs<'a> {
    pub model: &'a Path,
    pub data: &'a Path,
    pub out: Option<&'a Path>,
    pub cases: usize,
    pub steps: usize,
    /// Unset scales: the model's recommendation, else [`synthcohort_ldm::Guidance::DEFAULT`].
    pub guidance: GuidanceChoice,
    pub quiet: bool,
}

fn read_split(model: &Path) -> Result<(Option<Vec<String>>, Vec<String>), LabError> {
    let p = model.join(super::train::HELD_OUT_FILE);
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&p).map_err(LabError::file("cannot read", &p))?,
    )
    .map_err(|e| LabError::Input(format!("{}: {e}", p.display())))?;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    if v.is_array() {
        return Ok((None, names(&v)));
    }
    let arms = v["arms"].as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    });
    Ok((arms, names(&v["held_out"])))
}

/// Per-voxel tissue group index (into `groups`) of a label map in dataset ids, or `None`.
fn group_map(
    raw: &RawCase,
    class_of_id: &[String],
    groups: &[&str],
    m: Modality,
) -> Vec<Option<u8>> {
    let lut: Vec<Option<u8>> = class_of_id
        .iter()
        .map(|name| {
            let known = ontology::label_by_name(name).is_some();
            known
                .then(|| group_of(name, m))
                .flatten()
                .and_then(|g| groups.iter().position(|x| *x == g).map(|i| i as u8))
        })
        .collect();
    raw.labels.data.iter().map(|&l| lut[l as usize]).collect()
}

/// Nearest-class-mean segmentation restricted to groups present within `r` voxels.
fn segment(
    values: &[f32],
    gmap: &[Option<u8>],
    dims: [usize; 3],
    means: &[f64],
    r: usize,
) -> Vec<Option<u8>> {
    let [nx, ny, nz] = dims;
    let mut out = vec![None; values.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                if gmap[i].is_none() {
                    continue;
                }
                let mut present = 0u64;
                for zz in z.saturating_sub(r)..(z + r + 1).min(nz) {
                    for yy in y.saturating_sub(r)..(y + r + 1).min(ny) {
                        for xx in x.saturating_sub(r)..(x + r + 1).min(nx) {
                            if let Some(g) = gmap[(zz * ny + yy) * nx + xx] {
                                present |= 1 << g;
                            }
                        }
                    }
                }
                let v = f64::from(values[i]);
                out[i] = (0..means.len())
                    .filter(|&g| present & (1 << g) != 0)
                    .min_by(|&a, &b| (v - means[a]).abs().total_cmp(&(v - means[b]).abs()))
                    .map(|g| g as u8);
            }
        }
    }
    out
}

fn dice(seg: &[Option<u8>], truth: &[Option<u8>], g: u8) -> f64 {
    let (mut inter, mut a, mut b) = (0u64, 0u64, 0u64);
    for (s, t) in seg.iter().zip(truth) {
        let (s, t) = (*s == Some(g), *t == Some(g));
        inter += u64::from(s && t);
        a += u64::from(s);
        b += u64::from(t);
    }
    if a + b == 0 {
        return f64::NAN;
    }
    2.0 * inter as f64 / (a + b) as f64
}

/// Mean 2D SSIM over axial slices (7×7 box windows, data range `range`).
fn ssim(a: &[f32], b: &[f32], dims: [usize; 3], range: f64) -> f64 {
    let [nx, ny, nz] = dims;
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let (mut sum, mut n) = (0.0, 0usize);
    let w = 3usize;
    for z in 0..nz {
        for y in (w..ny.saturating_sub(w)).step_by(2) {
            for x in (w..nx.saturating_sub(w)).step_by(2) {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for yy in y - w..=y + w {
                    for xx in x - w..=x + w {
                        let i = (z * ny + yy) * nx + xx;
                        let (p, q) = (f64::from(a[i]), f64::from(b[i]));
                        sa += p;
                        sb += q;
                        saa += p * p;
                        sbb += q * q;
                        sab += p * q;
                    }
                }
                let m = ((2 * w + 1) * (2 * w + 1)) as f64;
                let (ma, mb) = (sa / m, sb / m);
                let (va, vb, cov) = (saa / m - ma * ma, sbb / m - mb * mb, sab / m - ma * mb);
                sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                n += 1;
            }
        }
    }
    sum / n.max(1) as f64
}

/// 4× box down-sampling of channel 0 (for distances).
fn coarse(v: &[f32], dims: [usize; 3]) -> Vec<f32> {
    let [nx, ny, nz] = dims;
    let [cx, cy, cz] = [nx / 4, ny / 4, nz / 4];
    let mut out = vec![0f32; cx * cy * cz];
    for z in 0..cz * 4 {
        for y in 0..cy * 4 {
            for x in 0..cx * 4 {
                out[((z / 4) * cy + y / 4) * cx + x / 4] += v[(z * ny + y) * nx + x] / 64.0;
            }
        }
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rms(a: &[f32], b: &[f32]) -> f64 {
    (a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64)
        .sqrt()
}

fn case_seed(name: &str, k: u64) -> u64 {
    let h = crate::io::hash::sha256_hex(name.as_bytes());
    u64::from_str_radix(&h[..16], 16).unwrap_or(0) ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Values of the data, the generated and the reconstructed objects in one group/channel.
type Pooled = (Vec<f32>, Vec<f32>, Vec<f32>);

/// (prompt, data, generated and reconstructed means), one mean per (channel × group).
type SubjectMeans = (String, Vec<Option<f64>>, Vec<Option<f64>>, Vec<Option<f64>>);

pub fn run(a: &EvalArgs) -> Result<(Report, PathBuf), LabError> {
    let sampler = Sampler::load(a.model).map_err(LabError::from)?;
    let cfg: LdmConfig = sampler.config.clone();
    let guidance = a.guidance.resolve(cfg.guidance);
    let (arms, held) = read_split(a.model)?;
    let ds = dataset::load(a.data, arms.as_deref(), cfg.channels.len(), None)?;
    let is_held = |n: &str| held.iter().any(|h| h == n);
    let held_idx: Vec<usize> = (0..ds.cases.len())
        .filter(|&i| is_held(&ds.cases[i].name))
        .take(a.cases)
        .collect();
    let train_idx: Vec<usize> = (0..ds.cases.len())
        .filter(|&i| !is_held(&ds.cases[i].name))
        .collect();
    if held_idx.is_empty() {
        return Err(LabError::Input(format!(
            "none of the model's held-out subjects are in {}",
            a.data.display()
        )));
    }
    let groups: Vec<&str> = match cfg.modality {
        Modality::Ct => vec!["lung", "heart", "liver", "muscle", "fat", "bone"],
        Modality::Mri => vec!["grey_matter", "white_matter", "csf"],
    };
    let m = cfg.modality;
    let chans: Vec<usize> = match m {
        Modality::Ct => vec![0],
        Modality::Mri => cfg
            .channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == "t1" || c.name == "t2")
            .map(|(i, _)| i)
            .collect(),
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(held_idx.len() as u64 + 3)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("sampling");

    let to_case = |raw: &RawCase| dataset::to_training_case(raw, &ds.class_of_id, &cfg.classes);
    let sample = |case: &Case, seed: u64| -> Result<Vec<f32>, LabError> {
        let req = SampleRequest {
            classes: &case.classes,
            dims: case.dims,
            spacing_mm: case.spacing_mm,
            prompt: &case.prompt,
            seed,
            steps: a.steps,
            solver: Solver::Euler,
            guidance,
        };
        sampler.sample(&req, &mut |_, _| {}).map_err(LabError::from)
    };

    // Per group/channel: values of data and generated, pooled over subjects.
    let mut pooled: BTreeMap<(usize, usize), Pooled> = BTreeMap::new();
    // (prompt, data means, generated means), one mean per (channel × group).
    let mut per_subject: Vec<SubjectMeans> = Vec::new();
    let mut dice_acc: BTreeMap<(usize, usize), (f64, f64, usize)> = BTreeMap::new();
    let mut generated: Vec<Vec<f32>> = Vec::new();
    let mut drawn: Vec<fidelity::Drawn> = Vec::new();
    let started = std::time::Instant::now();
    // Group means of the held-out data (for the nearest-class-mean segmentation).
    let mut gm_sum = vec![vec![0f64; groups.len()]; cfg.channels.len()];
    let mut gm_n = vec![0f64; groups.len()];
    let gmaps: Vec<Vec<Option<u8>>> = held_idx
        .iter()
        .map(|&i| group_map(&ds.cases[i], &ds.class_of_id, &groups, m))
        .collect();
    for (k, &i) in held_idx.iter().enumerate() {
        for (v, g) in gmaps[k].iter().enumerate() {
            if let Some(g) = g {
                gm_n[*g as usize] += 1.0;
                for (c, ch) in ds.cases[i].channels.iter().enumerate() {
                    gm_sum[c][*g as usize] += f64::from(ch.data[v]);
                }
            }
        }
    }
    let means: Vec<Vec<f64>> = gm_sum
        .iter()
        .map(|s| s.iter().zip(&gm_n).map(|(a, n)| a / n.max(1.0)).collect())
        .collect();

    for (k, &i) in held_idx.iter().enumerate() {
        let raw = &ds.cases[i];
        let case = to_case(raw);
        let out = sample(&case, case_seed(&raw.name, 0))?;
        let rec = sampler.reconstruct(&case).map_err(LabError::from)?;
        let n = raw.labels.data.len();
        let dims = raw.labels.grid.dims;
        let mut dmeans = Vec::new();
        let mut gmeans = Vec::new();
        let mut rmeans = Vec::new();
        for &c in &chans {
            let gen = &out[c * n..(c + 1) * n];
            let recon = &rec[c * n..(c + 1) * n];
            let data = &raw.channels[c].data;
            let seg_gen = segment(gen, &gmaps[k], dims, &means[c], 2);
            let seg_data = segment(data, &gmaps[k], dims, &means[c], 2);
            for g in 0..groups.len() {
                let idx: Vec<usize> = (0..n).filter(|&v| gmaps[k][v] == Some(g as u8)).collect();
                let e = pooled.entry((g, c)).or_default();
                e.0.extend(idx.iter().map(|&v| data[v]));
                e.1.extend(idx.iter().map(|&v| gen[v]));
                e.2.extend(idx.iter().map(|&v| recon[v]));
                let mean = |x: &[f32]| {
                    (!idx.is_empty()).then(|| {
                        idx.iter().map(|&v| f64::from(x[v])).sum::<f64>() / idx.len() as f64
                    })
                };
                dmeans.push(mean(data));
                gmeans.push(mean(gen));
                rmeans.push(mean(recon));
                let (dg, dd) = (
                    dice(&seg_gen, &gmaps[k], g as u8),
                    dice(&seg_data, &gmaps[k], g as u8),
                );
                if dg.is_finite() && dd.is_finite() {
                    let e = dice_acc.entry((g, c)).or_insert((0.0, 0.0, 0));
                    e.0 += dg;
                    e.1 += dd;
                    e.2 += 1;
                }
            }
        }
        per_subject.push((raw.prompt.to_lowercase(), dmeans, gmeans, rmeans));
        generated.push(out[..n].to_vec());
        if m == Modality::Ct {
            drawn.push(fidelity::Drawn {
                real: raw.channels[0].clone(),
                labels: raw.labels.clone(),
                generated: out[..n].to_vec(),
            });
        }
        bar.inc(1);
    }
    let seconds_per_sample = started.elapsed().as_secs_f64() / held_idx.len() as f64;

    let group_reports = group_reports(&pooled, &dice_acc, &chans, &groups, &cfg);

    let text_effects = text_effects(&per_subject, &chans, &groups, &cfg);

    // Diversity: three more samples of the first held-out subject.
    bar.set_prefix("diversity");
    let first = &ds.cases[held_idx[0]];
    let dims = first.labels.grid.dims;
    let mut samples = vec![generated[0].clone()];
    let first_case = to_case(first);
    for k in 1..=3 {
        let out = sample(&first_case, case_seed(&first.name, k))?;
        samples.push(out[..dims.iter().product::<usize>()].to_vec());
        bar.inc(1);
    }
    let range = match m {
        Modality::Ct => 2000.0,
        Modality::Mri => f64::from(cfg.channels[0].scale) * 2.0,
    };
    let mut ss = Vec::new();
    for x in 0..samples.len() {
        for y in x + 1..samples.len() {
            ss.push(ssim(&samples[x], &samples[y], dims, range));
        }
    }
    let diversity_ssim = ss.iter().sum::<f64>() / ss.len() as f64;

    let memo = memorization(&ds, &train_idx, &held_idx, &generated);
    bar.finish_and_clear();
    let (fidelity, fidelity_table) = if drawn.is_empty() {
        (Vec::new(), String::new())
    } else {
        let ids = fidelity::ontology_ids(&ds.class_of_id);
        fidelity::evaluate(drawn, &ids, &report::out_dir(a))?
    };

    let report = Report {
        model: a.model.display().to_string(),
        data: a.data.display().to_string(),
        held_out_subjects: held_idx.len(),
        training_subjects: train_idx.len(),
        steps: a.steps,
        guidance_text: guidance.text,
        guidance_labels: guidance.labels,
        seconds_per_sample,
        groups: group_reports,
        text_effects,
        diversity_ssim,
        diversity_samples: samples.len(),
        min_sample_to_training: min_of(&memo.nearest),
        nearest_training_distance: memo.nearest,
        median_training_nn_distance: memo.median_nn,
        min_held_out_to_training: min_of(&memo.held_nearest),
        held_out_nearest_training_distance: memo.held_nearest,
        samples_nearer_than_subject: memo.nearer,
        fidelity,
        fidelity_table,
    };
    let out = write_report(a, &report, &cfg)?;
    Ok((report, out))
}

/// Per group and channel: data, generated and reconstructed statistics pooled over the
/// held-out subjects, with the mean Dice of the nearest-mean segmentation of each.
fn group_reports(
    pooled: &BTreeMap<(usize, usize), Pooled>,
    dice_acc: &BTreeMap<(usize, usize), (f64, f64, usize)>,
    chans: &[usize],
    groups: &[&str],
    cfg: &LdmConfig,
) -> Vec<GroupReport> {
    let mut group_reports = Vec::new();
    for &c in chans {
        for (g, name) in groups.iter().enumerate() {
            let Some((d, gen, recon)) = pooled.get(&(g, c)) else {
                continue;
            };
            if d.is_empty() {
                continue;
            }
            let (ds_, gs) = (stat(d), stat(gen));
            let dc = dice_acc
                .get(&(g, c))
                .copied()
                .unwrap_or((f64::NAN, f64::NAN, 1));
            group_reports.push(GroupReport {
                group: name.to_string(),
                channel: cfg.channels[c].name.clone(),
                mean_difference: gs.mean - ds_.mean,
                data: ds_,
                generated: gs,
                reconstructed: stat(recon),
                dice_generated: dc.0 / dc.2 as f64,
                dice_data: dc.1 / dc.2 as f64,
            });
        }
    }

    group_reports
}

/// How far the generated group means move with a condition word in the prompt, beside how
/// far the data's move (ratio 1: the model reproduces the effect).
fn text_effects(
    per_subject: &[SubjectMeans],
    chans: &[usize],
    groups: &[&str],
    cfg: &LdmConfig,
) -> Vec<TextEffect> {
    let m = cfg.modality;
    let effects: Vec<(&str, &str, usize)> = match m {
        Modality::Ct => vec![
            ("steatosis", "liver", 0),
            ("emphysema", "lung", 0),
            ("osteopenia", "bone", 0),
        ],
        Modality::Mri => vec![(
            "hyperintens",
            "white_matter",
            chans
                .iter()
                .position(|&c| cfg.channels[c].name == "t2")
                .unwrap_or(0),
        )],
    };
    let mut text_effects = Vec::new();
    for (word, group, ci) in effects {
        let Some(g) = groups.iter().position(|x| *x == group) else {
            continue;
        };
        let col = ci * groups.len() + g;
        let (mut w, mut wo) = (Vec::new(), Vec::new());
        for (p, dm, gm, rm) in per_subject {
            if let (Some(d), Some(gg), Some(r)) = (dm[col], gm[col], rm[col]) {
                if p.contains(word) {
                    w.push((d, gg, r))
                } else {
                    wo.push((d, gg, r))
                }
            }
        }
        if w.is_empty() || wo.is_empty() {
            continue;
        }
        let avg = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| {
            v.iter().map(f).sum::<f64>() / v.len() as f64
        };
        let data_shift = avg(&w, |x| x.0) - avg(&wo, |x| x.0);
        let generated_shift = avg(&w, |x| x.1) - avg(&wo, |x| x.1);
        let reconstructed_shift = avg(&w, |x| x.2) - avg(&wo, |x| x.2);
        text_effects.push(TextEffect {
            condition: word.to_string(),
            group: group.to_string(),
            channel: cfg.channels[chans[ci]].name.clone(),
            subjects_with: w.len(),
            subjects_without: wo.len(),
            data_shift,
            generated_shift,
            reconstructed_shift,
            ratio: generated_shift / data_shift,
        });
    }

    text_effects
}

/// Nearest-training-subject distances (coarse RMS) of the samples and of the held-out
/// subjects themselves, the baseline a memorising model would undercut.
struct Memorization {
    nearest: Vec<f64>,
    held_nearest: Vec<f64>,
    median_nn: f64,
    nearer: usize,
}

fn memorization(
    ds: &dataset::Dataset,
    train_idx: &[usize],
    held_idx: &[usize],
    generated: &[Vec<f32>],
) -> Memorization {
    let train_coarse: Vec<Vec<f32>> = train_idx
        .iter()
        .map(|&i| coarse(&ds.cases[i].channels[0].data, ds.cases[i].labels.grid.dims))
        .collect();
    let nn: Vec<f64> = (0..train_coarse.len())
        .map(|x| {
            (0..train_coarse.len())
                .filter(|&y| y != x)
                .map(|y| rms(&train_coarse[x], &train_coarse[y]))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let median_nn = median(&nn);
    let nearest_training = |v: &[f32], dims: [usize; 3]| {
        let c = coarse(v, dims);
        train_coarse
            .iter()
            .map(|t| rms(&c, t))
            .fold(f64::INFINITY, f64::min)
    };
    let nearest: Vec<f64> = held_idx
        .iter()
        .zip(generated)
        .map(|(&i, g)| nearest_training(g, ds.cases[i].labels.grid.dims))
        .collect();
    let held_nearest: Vec<f64> = held_idx
        .iter()
        .map(|&i| {
            let c = &ds.cases[i];
            nearest_training(&c.channels[0].data, c.labels.grid.dims)
        })
        .collect();
    let nearer = nearest
        .iter()
        .zip(&held_nearest)
        .filter(|(g, h)| **g < 0.95 * **h)
        .count();
    Memorization {
        nearest,
        held_nearest,
        median_nn,
        nearer,
    }
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}
