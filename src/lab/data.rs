//! Training data for the latent diffusion model from an nnU-Net-layout dataset (the layout
//! `synthcohort run` writes, or a real dataset in the same layout): `dataset.json`,
//! `imagesTr/<case>_<channel>.nii.gz`, `labelsTr/<case>.nii.gz`, and prompts from the run's
//! `manifest.parquet` or a `prompts.jsonl` (`{"case": …, "prompt": …}` per line).
//!
//! synthcohort writes one case per subject × arm with one channel; a model with several
//! object channels (PD, T1, T2, T2*) names the arms to group (`arms:`), and the case
//! `<subject>_<arm>` of each arm becomes one channel of that subject.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::LabError;
use crate::generate::ldm::class_name;
use crate::io;
use crate::volume::Volume;

/// One subject: its channels, labels (nnU-Net ids) and prompt.
#[derive(Clone, Debug)]
pub struct RawCase {
    pub name: String,
    pub channels: Vec<Volume<f32>>,
    pub labels: Volume<u16>,
    pub prompt: String,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    /// Model class name of each nnU-Net label id (index = id).
    pub class_of_id: Vec<String>,
    pub cases: Vec<RawCase>,
    /// SHA-256 over every file read, in case order.
    pub hash: String,
}

fn err(msg: impl Into<String>) -> LabError {
    LabError::Input(msg.into())
}

/// Longer than any real prompt (the text encoder reads only its first few dozen tokens), and
/// the same bound as one value in a pipeline file.
const MAX_PROMPT_BYTES: usize = crate::pipeline::yaml::Limits::PIPELINE.max_scalar_bytes;

fn read_prompts(dir: &Path) -> Result<BTreeMap<String, String>, LabError> {
    let mut out = BTreeMap::new();
    let manifest = dir.join("manifest.parquet");
    let jsonl = dir.join("prompts.jsonl");
    if manifest.exists() {
        for r in io::manifest::read_manifest(&manifest).map_err(|e| err(e.to_string()))? {
            out.insert(format!("{}_{}", r.subject_id, r.arm), r.prompt.clone());
            out.entry(r.subject_id.clone()).or_insert(r.prompt);
        }
    } else if jsonl.exists() {
        let text = io::bounded::read_text(&jsonl, io::bounded::DATASET_TEXT_BYTES, "prompts.jsonl")
            .map_err(|e| err(e.to_string()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| err(format!("{}:{}: {e}", jsonl.display(), i + 1)))?;
            match (v["case"].as_str(), v["prompt"].as_str()) {
                (_, Some(p)) if p.len() > MAX_PROMPT_BYTES => {
                    return Err(err(format!(
                        "{}:{}: a prompt of {} bytes, more than the {MAX_PROMPT_BYTES} a prompt may have",
                        jsonl.display(),
                        i + 1,
                        p.len()
                    )))
                }
                (Some(c), Some(p)) => {
                    out.insert(c.to_string(), p.to_string());
                }
                _ => {
                    return Err(err(format!(
                        "{}:{}: needs string fields `case` and `prompt`",
                        jsonl.display(),
                        i + 1
                    )))
                }
            }
        }
    } else {
        return Err(err(format!(
            "{}: no manifest.parquet or prompts.jsonl to take prompts from",
            dir.display()
        )));
    }
    Ok(out)
}

/// Loads the dataset. `arms`: group synthcohort cases `<subject>_<arm>` into channels (in
/// this order); `None`: each case is a subject and its `_0000…` files are the channels.
/// `limit`: read at most this many subjects (sorted by name).
pub fn load(
    dir: &Path,
    arms: Option<&[String]>,
    channels: usize,
    limit: Option<usize>,
) -> Result<Dataset, LabError> {
    let dj_path = dir.join("dataset.json");
    let dj: Value = serde_json::from_str(
        &io::bounded::read_text(&dj_path, io::bounded::DATASET_TEXT_BYTES, "dataset.json")
            .map_err(|e| err(format!("{e} (is this an nnU-Net dataset?)")))?,
    )
    .map_err(|e| err(format!("{}: {e}", dj_path.display())))?;
    let ending = dj["file_ending"].as_str().unwrap_or(".nii.gz").to_string();
    let labels = dj["labels"]
        .as_object()
        .ok_or_else(|| err(format!("{}: no `labels` object", dj_path.display())))?;
    let mut class_of_id = Vec::new();
    for (name, id) in labels {
        let id = id.as_u64().ok_or_else(|| {
            err(format!(
                "{}: label `{name}` has no integer id",
                dj_path.display()
            ))
        })? as usize;
        if class_of_id.len() <= id {
            class_of_id.resize(id + 1, String::new());
        }
        // Other tools' spellings (`Liver`, `kidney_R`, …) are the ontology's names, so the
        // model learns the classes generation will ask for; a name the ontology does not
        // know is a lesion class (see `class_name`).
        let canonical = crate::anatomy::import::ontology_name(name).unwrap_or(name.as_str());
        class_of_id[id] = class_name(canonical);
    }
    let prompts = read_prompts(dir)?;

    let label_dir = dir.join("labelsTr");
    let mut names: Vec<String> = std::fs::read_dir(&label_dir)
        .map_err(|e| err(format!("{}: {e}", label_dir.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(&ending))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    // Subjects and the cases that make their channels.
    let mut subjects: Vec<(String, Vec<(String, usize)>)> = Vec::new();
    match arms {
        Some(arms) => {
            let mut by_subject: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
            for n in &names {
                if let Some((k, arm)) = arms
                    .iter()
                    .enumerate()
                    .find(|(_, a)| n.ends_with(&format!("_{a}")))
                {
                    let subj = n[..n.len() - arm.len() - 1].to_string();
                    by_subject
                        .entry(subj)
                        .or_insert_with(|| vec![None; arms.len()])[k] = Some(n.clone());
                }
            }
            for (s, cases) in by_subject {
                if let Some(missing) = cases.iter().position(Option::is_none) {
                    return Err(err(format!(
                        "subject {s} has no case for arm `{}`",
                        arms[missing]
                    )));
                }
                subjects.push((s, cases.into_iter().flatten().map(|c| (c, 0)).collect()));
            }
        }
        None => {
            for n in &names {
                subjects.push((n.clone(), (0..channels).map(|c| (n.clone(), c)).collect()));
            }
        }
    }
    if let Some(l) = limit {
        subjects.truncate(l);
    }
    if subjects.is_empty() {
        return Err(err(format!("{}: no cases found", label_dir.display())));
    }
    let mut hasher = Sha256::new();
    let mut read = |p: &Path| -> Result<(), LabError> {
        let bytes = std::fs::read(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
        hasher.update(
            p.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        hasher.update(Sha256::digest(&bytes));
        Ok(())
    };
    let mut cases = Vec::new();
    for (subject, parts) in subjects {
        let first = &parts[0].0;
        let lpath = label_dir.join(format!("{first}{ending}"));
        read(&lpath)?;
        let labels = io::nifti::read_labels(&lpath).map_err(|e| err(e.to_string()))?;
        let mut chans = Vec::new();
        for (case, ch) in &parts {
            let ipath = dir.join("imagesTr").join(format!("{case}_{ch:04}{ending}"));
            read(&ipath)?;
            let img = io::nifti::read_image(&ipath).map_err(|e| err(e.to_string()))?;
            if img.grid.dims != labels.grid.dims {
                return Err(err(format!(
                    "{}: dims {:?} differ from its labels {:?}",
                    ipath.display(),
                    img.grid.dims,
                    labels.grid.dims
                )));
            }
            chans.push(img);
        }
        let prompt = prompts
            .get(first)
            .or_else(|| prompts.get(&subject))
            .cloned()
            .ok_or_else(|| err(format!("no prompt for case {first}")))?;
        if let Some(bad) = labels
            .data
            .iter()
            .find(|&&v| v as usize >= class_of_id.len())
        {
            return Err(err(format!(
                "{}: label {bad} is not in dataset.json",
                lpath.display()
            )));
        }
        cases.push(RawCase {
            name: subject,
            channels: chans,
            labels,
            prompt,
        });
    }
    Ok(Dataset {
        dir: dir.to_path_buf(),
        class_of_id,
        cases,
        hash: hex::encode(hasher.finalize()),
    })
}

/// Model class list: background first, then the dataset's classes in id order (each once)
/// that have voxels in the `train` cases; and the classes dataset.json names that have none.
pub fn model_classes(ds: &Dataset, train: &[usize]) -> (Vec<String>, Vec<String>) {
    // Only classes with voxels in the training cases: a class named in dataset.json but
    // never seen would get an untrained embedding and a class mean of 0 (water in HU), and
    // generation would draw it so; left out, it is drawn by a class of its tissue or refused
    // at `validate`.
    // Several ids may name one class (other spellings), so "seen" is by class name.
    let mut seen = std::collections::BTreeSet::new();
    for &i in train {
        for &l in &ds.cases[i].labels.data {
            if let Some(c) = ds.class_of_id.get(l as usize) {
                seen.insert(c.as_str());
            }
        }
    }
    let mut out = vec!["background".to_string()];
    let mut absent = Vec::new();
    for (id, c) in ds.class_of_id.iter().enumerate() {
        if id == 0 || c.is_empty() || out.contains(c) || absent.contains(c) {
            continue;
        }
        if seen.contains(c.as_str()) {
            out.push(c.clone());
        } else {
            absent.push(c.clone());
        }
    }
    (out, absent)
}

/// Most voxels a resampled case may have (a 512³ volume).
const MAX_RESAMPLED_VOXELS: usize = 512 * 512 * 512;

/// The case on a grid of `spacing_mm` covering the same field, centred where the original
/// is: its channels by trilinear interpolation (held at the edges), its labels by nearest
/// neighbour.
pub fn resample_case(c: &mut RawCase, spacing_mm: [f64; 3]) -> Result<(), LabError> {
    if spacing_mm.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
        return Err(err(format!(
            "resample_mm must be three positive spacings, not {spacing_mm:?}"
        )));
    }
    let g = c.labels.grid.clone();
    let ext = g.extent_mm();
    let dims = [0, 1, 2].map(|a| ((ext[a] / spacing_mm[a]).round() as usize).max(1));
    let n: usize = dims.iter().product();
    if n > MAX_RESAMPLED_VOXELS {
        return Err(err(format!(
            "case {}: {dims:?} voxels at {spacing_mm:?} mm is more than {MAX_RESAMPLED_VOXELS}",
            c.name
        )));
    }
    let centre = [0, 1, 2].map(|a| g.origin_mm[a] + 0.5 * (g.dims[a] - 1) as f64 * g.spacing_mm[a]);
    let to = crate::volume::Grid {
        dims,
        spacing_mm,
        origin_mm: [0, 1, 2].map(|a| centre[a] - 0.5 * (dims[a] - 1) as f64 * spacing_mm[a]),
    };
    let at = |idx: usize| {
        let [i, j, k] = to.ijk(idx);
        let v = g.to_voxel(to.world(i, j, k));
        [0, 1, 2].map(|a| v[a].clamp(0.0, (g.dims[a] - 1) as f64))
    };
    let labels = (0..n)
        .map(|idx| {
            let v = at(idx);
            c.labels.get(
                v[0].round() as usize,
                v[1].round() as usize,
                v[2].round() as usize,
            )
        })
        .collect();
    for ch in c.channels.iter_mut() {
        let data = (0..n)
            .map(|idx| crate::acquire::mri::artifacts::trilinear(&ch.data, g.dims, at(idx)))
            .collect();
        *ch = Volume::from_vec(to.clone(), data);
    }
    c.labels = Volume::from_vec(to, labels);
    Ok(())
}

/// A case in the model's terms: physical values channel-major, class indices.
pub fn to_training_case(
    raw: &RawCase,
    class_of_id: &[String],
    classes: &[String],
) -> synthcohort_ldm::train::Case {
    let lut: Vec<u8> = class_of_id
        .iter()
        .map(|c| classes.iter().position(|k| k == c).unwrap_or(0) as u8)
        .collect();
    let g = &raw.labels.grid;
    synthcohort_ldm::train::Case {
        object: raw
            .channels
            .iter()
            .flat_map(|c| c.data.iter().copied())
            .collect(),
        classes: raw.labels.data.iter().map(|&l| lut[l as usize]).collect(),
        dims: g.dims,
        spacing_mm: g.spacing_mm.map(|s| s as f32),
        prompt: raw.prompt.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A linear ramp stays the same ramp in world space on the new grid, label blocks keep
    /// their place, and the field of view is kept.
    #[test]
    fn resampling_keeps_values_in_place() {
        let g = Grid::centered([20, 10, 8], [2.0, 2.0, 4.0]);
        let ramp = |p: [f64; 3]| (3.0 * p[0] - 2.0 * p[1] + p[2]) as f32;
        let image: Vec<f32> = (0..g.len())
            .map(|idx| {
                let [i, j, k] = g.ijk(idx);
                ramp(g.world(i, j, k))
            })
            .collect();
        let labels: Vec<u16> = (0..g.len())
            .map(|idx| u16::from(g.ijk(idx)[0] >= 10))
            .collect();
        let mut c = RawCase {
            name: "c".into(),
            channels: vec![Volume::from_vec(g.clone(), image)],
            labels: Volume::from_vec(g.clone(), labels),
            prompt: String::new(),
        };
        resample_case(&mut c, [4.0, 4.0, 2.0]).unwrap();
        let t = c.labels.grid.clone();
        assert_eq!(t.dims, [10, 5, 16]);
        assert_eq!(t.extent_mm(), g.extent_mm());
        for idx in 0..t.len() {
            let [i, j, k] = t.ijk(idx);
            let p = t.world(i, j, k);
            // Inside the old voxel centres the interpolation is exact for a ramp.
            let v = g.to_voxel(p);
            if (0..3).all(|a| v[a] >= 0.0 && v[a] <= (g.dims[a] - 1) as f64) {
                assert!((c.channels[0].data[idx] - ramp(p)).abs() < 1e-3, "{p:?}");
            }
            assert_eq!(c.labels.data[idx], u16::from(p[0] > 0.0), "{p:?}");
        }
        assert!(resample_case(&mut c, [0.0, 1.0, 1.0]).is_err());
    }
}
