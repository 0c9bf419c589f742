//! Training data for the latent diffusion model from an nnU-Net-layout dataset (the layout
//! `synthcohort run` writes, or a real dataset in the same layout): `dataset.json`,
//! `imagesTr/<case>_<channel>.nii.gz`, `labelsTr/<case>.nii.gz`, and prompts from the run's
//! `manifest.parquet` or a `prompts.jsonl` (`{"case": …, "prompt": …}` per line).
//!
//! synthcohort writes one case per subject × arm with one channel; a model with several
//! object channels (PD, T1, T2, T2*) names the arms to group (`arms:`), and the case
//! `<subject>_<arm>` of each arm becomes one channel of that subject.
//!
//! A dataset is read in two phases: [`open`] lists the subjects, their files, prompts and the
//! label table without reading a volume; [`Listing::read_case`] reads one subject when it is
//! needed, so training holds one case at a time ([`cache`]). [`load`] reads them all, for
//! the evaluation, which compares subjects with each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::LabError;
use crate::generate::ldm::class_name;
use crate::io;
use crate::volume::Volume;

pub mod cache;
mod prompts;
mod resample;
pub mod unlabeled;

use prompts::read_prompts;
pub use resample::{resample_case, resample_labels, target_grid};

/// One subject: its channels, labels (nnU-Net ids) and prompt.
#[derive(Clone, Debug)]
pub struct RawCase {
    pub name: String,
    pub channels: Vec<Volume<f32>>,
    pub labels: Volume<u16>,
    pub prompt: String,
}

/// One subject's files and prompt, before anything is read.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub labels: PathBuf,
    /// One image per channel.
    pub images: Vec<PathBuf>,
    pub prompt: String,
}

/// A dataset's subjects and label table, listed without reading a volume.
#[derive(Clone, Debug)]
pub struct Listing {
    pub dir: PathBuf,
    /// Model class name of each nnU-Net label id (index = id).
    pub class_of_id: Vec<String>,
    pub subjects: Vec<Subject>,
}

/// A dataset read whole into memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    /// Model class name of each nnU-Net label id (index = id).
    pub class_of_id: Vec<String>,
    pub cases: Vec<RawCase>,
}

pub(crate) fn err(msg: impl Into<String>) -> LabError {
    LabError::Input(msg.into())
}

/// Lists the dataset. `arms`: group synthcohort cases `<subject>_<arm>` into channels (in
/// this order); `None`: each case is a subject and its `_0000…` files are the channels.
/// `limit`: at most this many subjects (sorted by name).
pub fn open(
    dir: &Path,
    arms: Option<&[String]>,
    channels: usize,
    limit: Option<usize>,
) -> Result<Listing, LabError> {
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
    let subjects = subjects
        .into_iter()
        .map(|(name, parts)| {
            let first = &parts[0].0;
            let prompt = prompts
                .get(first)
                .or_else(|| prompts.get(&name))
                .cloned()
                .ok_or_else(|| err(format!("no prompt for case {first}")))?;
            Ok(Subject {
                labels: label_dir.join(format!("{first}{ending}")),
                images: parts
                    .iter()
                    .map(|(case, ch)| dir.join("imagesTr").join(format!("{case}_{ch:04}{ending}")))
                    .collect(),
                name,
                prompt,
            })
        })
        .collect::<Result<_, LabError>>()?;
    Ok(Listing {
        dir: dir.to_path_buf(),
        class_of_id,
        subjects,
    })
}

impl Listing {
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// Subject `i`'s label map, every id checked against dataset.json.
    pub fn read_labels(&self, i: usize) -> Result<Volume<u16>, LabError> {
        let path = &self.subjects[i].labels;
        let labels = io::nifti::read_labels(path).map_err(|e| err(e.to_string()))?;
        if let Some(bad) = labels
            .data
            .iter()
            .find(|&&v| v as usize >= self.class_of_id.len())
        {
            return Err(err(format!(
                "{}: label {bad} is not in dataset.json",
                path.display()
            )));
        }
        Ok(labels)
    }

    /// Subject `i`: its channels on its labels' grid.
    pub fn read_case(&self, i: usize) -> Result<RawCase, LabError> {
        let s = &self.subjects[i];
        let labels = self.read_labels(i)?;
        let mut channels = Vec::new();
        for path in &s.images {
            let img = io::nifti::read_image(path).map_err(|e| err(e.to_string()))?;
            if img.grid.dims != labels.grid.dims {
                return Err(err(format!(
                    "{}: dims {:?} differ from its labels {:?}",
                    path.display(),
                    img.grid.dims,
                    labels.grid.dims
                )));
            }
            channels.push(img);
        }
        Ok(RawCase {
            name: s.name.clone(),
            channels,
            labels,
            prompt: s.prompt.clone(),
        })
    }

    /// SHA-256 over each file's name and SHA-256, the subjects' files in order (labels, then
    /// images), then `extra` (name, SHA-256 hex) in order. Files are streamed, so hashing
    /// holds none of them.
    pub fn hash(&self, extra: &[(String, String)]) -> Result<String, LabError> {
        let mut hasher = Sha256::new();
        let mut add = |name: &[u8], digest_hex: &str| -> Result<(), LabError> {
            hasher.update(name);
            hasher.update(hex::decode(digest_hex).map_err(|e| err(e.to_string()))?);
            Ok(())
        };
        for s in &self.subjects {
            for p in std::iter::once(&s.labels).chain(&s.images) {
                let digest = io::hash::sha256_file(p).map_err(|e| err(e.to_string()))?;
                let name = p
                    .file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default();
                add(name, &digest)?;
            }
        }
        for (name, digest) in extra {
            add(name.as_bytes(), digest)?;
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// Reads the whole dataset into memory (see [`open`] for the arguments).
pub fn load(
    dir: &Path,
    arms: Option<&[String]>,
    channels: usize,
    limit: Option<usize>,
) -> Result<Dataset, LabError> {
    let listing = open(dir, arms, channels, limit)?;
    let cases = (0..listing.len())
        .map(|i| listing.read_case(i))
        .collect::<Result<_, _>>()?;
    Ok(Dataset {
        dir: listing.dir,
        class_of_id: listing.class_of_id,
        cases,
    })
}

/// Adds the class names of a label map (dataset ids) to `seen`.
pub fn note_seen(seen: &mut BTreeSet<String>, class_of_id: &[String], labels: &[u16]) {
    let mut present = vec![false; class_of_id.len()];
    for &l in labels {
        if let Some(p) = present.get_mut(l as usize) {
            *p = true;
        }
    }
    for (id, _) in present.iter().enumerate().filter(|(_, &p)| p) {
        if !seen.contains(&class_of_id[id]) {
            seen.insert(class_of_id[id].clone());
        }
    }
}

/// Model class list: background first, then the dataset's classes in id order (each once)
/// that have voxels in the `train` cases; and the classes dataset.json names that have none.
pub fn model_classes(ds: &Dataset, train: &[usize]) -> (Vec<String>, Vec<String>) {
    let mut seen = BTreeSet::new();
    for &i in train {
        note_seen(&mut seen, &ds.class_of_id, &ds.cases[i].labels.data);
    }
    model_classes_seen(&ds.class_of_id, &seen)
}

/// [`model_classes`] from the class names the training cases hold ([`note_seen`]).
pub fn model_classes_seen(
    class_of_id: &[String],
    seen: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    // Only classes with voxels in the training cases: a class named in dataset.json but
    // never seen would get an untrained embedding and a class mean of 0 (water in HU), and
    // generation would draw it so; left out, it is drawn by a class of its tissue or refused
    // at `validate`.
    // Several ids may name one class (other spellings), so "seen" is by class name.
    let mut out = vec!["background".to_string()];
    let mut absent = Vec::new();
    for (id, c) in class_of_id.iter().enumerate() {
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

/// Model class index of each dataset id (0, the background, for a name not in `classes`).
pub fn class_lut(class_of_id: &[String], classes: &[String]) -> Vec<u8> {
    class_of_id
        .iter()
        .map(|c| classes.iter().position(|k| k == c).unwrap_or(0) as u8)
        .collect()
}

/// A case in the model's terms: physical values channel-major, class indices.
pub fn to_training_case(
    raw: &RawCase,
    class_of_id: &[String],
    classes: &[String],
) -> synthcohort_ldm::train::Case {
    let lut = class_lut(class_of_id, classes);
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
