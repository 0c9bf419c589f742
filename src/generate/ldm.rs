//! The latent diffusion generator: adapter between the engine's [`Generator`] and the model
//! crate (`synthcohort-ldm`). Labels become the model's classes, the subject's prompt its
//! text condition; the sampled object becomes CT maps (HU, material, density) or MRI maps.
//!
//! Lesions: the model knows one "lesion" class; each lesion's sampled intensity is then
//! shifted so its mean is the contrast the pipeline asked for, keeping the model's texture.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Class name all lesion conditions share in the model: a model learns "lesion" tissue, the
/// pipeline sets each lesion's own contrast.
pub const LESION_CLASS: &str = "lesion";
pub use super::{HU_MAX, HU_MIN};

/// Model class name of a label name: organs keep their name, anything the ontology does not
/// know (lesion conditions) becomes [`LESION_CLASS`].
pub fn class_name(label_name: &str) -> String {
    if label_name == "background" || ontology::label_by_name(label_name).is_some() {
        label_name.to_string()
    } else {
        LESION_CLASS.to_string()
    }
}

use synthcohort_ldm::cpu::Sampler;
use synthcohort_ldm::{Guidance, GuidanceChoice, LdmConfig, Modality, SampleRequest, Solver};

use super::{Capabilities, CtMaps, GenerateError, Generator, MriMaps, Request, TissueObject};
use crate::anatomy::ontology;
use crate::tissue;
use crate::volume::Volume;

/// Field strength the MRI models' relaxation maps refer to.
pub const MRI_MODEL_FIELD_T: f64 = 3.0;

/// Shipped model for a template, by name under `models/`.
pub fn shipped_model_for(template: &str) -> Option<&'static str> {
    match template {
        "thorax_phantom" | "thorax" => Some("ct-thorax"),
        "abdomen" => Some("ct-abdomen"),
        "head" => Some("mri-head"),
        _ => None,
    }
}

pub use crate::sys::models_dir;

/// Why a model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no shipped model for the `{0}` template; train one (`synthcohort train`) and give its folder as `generator.model`")]
    NoShippedModel(String),
    #[error("model `{name}` not found (looked in {} and {})", local.display(), shipped.display())]
    NotFound {
        name: String,
        local: PathBuf,
        shipped: PathBuf,
    },
    #[error(transparent)]
    Ldm(#[from] synthcohort_ldm::LdmError),
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `generator.model`: a shipped model name, or a folder (relative to `base_dir`).
pub fn resolve_model(
    model: Option<&str>,
    template: &str,
    base_dir: &Path,
) -> Result<PathBuf, ModelError> {
    let name = match model {
        Some(m) => m.to_string(),
        None => shipped_model_for(template)
            .ok_or_else(|| ModelError::NoShippedModel(template.to_string()))?
            .to_string(),
    };
    let shipped = models_dir().join(&name);
    let local = base_dir.join(&name);
    for dir in [&local, &shipped] {
        if dir.join(synthcohort_ldm::model::CONFIG_FILE).is_file() {
            return Ok(dir.clone());
        }
    }
    Err(ModelError::NotFound {
        name,
        local,
        shipped,
    })
}

pub fn read_config(dir: &Path) -> Result<LdmConfig, ModelError> {
    Ok(synthcohort_ldm::load_config(dir)?)
}

pub struct LatentDiffusion {
    /// burn modules are not `Sync`; subjects take turns (each sample already uses all cores).
    sampler: Mutex<Sampler>,
    config: LdmConfig,
    hash: String,
    pub steps: usize,
    pub solver: Solver,
    pub guidance: Guidance,
    /// Shift each lesion's mean to its condition's target (`generator.lesion_intensity`).
    pub lesion_targets: bool,
    /// Draws the labels the model has no class for (`generator.unseen_labels: procedural`);
    /// None: they come out as the background class (validation refuses such templates).
    pub unseen_fallback: Option<super::procedural::Procedural>,
    /// Whether the run's log has named the stand-ins yet (once per run, not per subject).
    stand_ins_named: std::sync::atomic::AtomicBool,
}

impl LatentDiffusion {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let sampler = Sampler::load(dir)?;
        let path = dir.join("weights.mpk.gz");
        let weights = std::fs::read(&path).map_err(|source| ModelError::Read { path, source })?;
        let hash = crate::io::hash::sha256_hex(&weights);
        let guidance = GuidanceChoice::default().resolve(sampler.config.guidance);
        Ok(Self {
            config: sampler.config.clone(),
            sampler: Mutex::new(sampler),
            hash,
            steps: synthcohort_ldm::DEFAULT_STEPS,
            solver: Solver::default(),
            guidance,
            lesion_targets: true,
            unseen_fallback: None,
            stand_ins_named: Default::default(),
        })
    }

    pub fn config(&self) -> &LdmConfig {
        &self.config
    }

    /// Per label id present: the model class index (lesion ids → the lesion class), and
    /// whether it is an anatomy label the model has no class for, nor a class of its tissue
    /// (drawn as class 0, the background, unless a fallback draws it).
    fn class_lut(&self, labels: &Volume<u16>, lesion_ids: &[u16]) -> (Vec<u8>, Vec<bool>) {
        let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
        (0..=max)
            .map(|id| {
                let anatomy = (id != 0 && !lesion_ids.contains(&(id as u16)))
                    .then(|| ontology::label_by_id(id as u16))
                    .flatten();
                let name = match anatomy {
                    Some(l) => class_name(l.name),
                    None if id == 0 => "background".to_string(),
                    None => LESION_CLASS.to_string(),
                };
                let class = model_class(&self.config, &name);
                (class.unwrap_or(0), anatomy.is_some() && class.is_none())
            })
            .unzip()
    }
}

/// The model class that draws label `name`: its own class, else a stand-in — its mirror
/// (`femur_right` for `femur_left`), else the first model class of the same tissue, so an
/// atlas's femur is drawn as bone. A class whose training data held metal is never drawn as
/// itself ([`synthcohort_ldm::metal`]). None: no usable class of that tissue (validation
/// refuses such labels or hands them to the procedural renderer).
pub fn model_class(cfg: &LdmConfig, name: &str) -> Option<u8> {
    let usable = |i: &u8| !synthcohort_ldm::metal::is_metal(cfg, &cfg.classes[*i as usize]);
    cfg.class_index(name)
        .filter(usable)
        .or_else(|| {
            ontology::mirror_name(name)
                .and_then(|m| cfg.class_index(&m))
                .filter(usable)
        })
        .or_else(|| {
            let want = tissue::tissue_for_label(name).name;
            cfg.classes.iter().enumerate().find_map(|(i, c)| {
                (c != "background"
                    && c != LESION_CLASS
                    && tissue::tissue_for_label(c).name == want
                    && usable(&(i as u8)))
                .then_some(i as u8)
            })
        })
}

/// Labels among `ids` the model draws by another class, as `label → class` (with why, for a
/// class marked as metal): what a user should know before reading the cohort's images.
pub fn stand_ins(cfg: &LdmConfig, ids: &[u16]) -> Vec<String> {
    ids.iter()
        .filter_map(|&id| ontology::label_by_id(id))
        .filter_map(|l| {
            let name = class_name(l.name);
            let by = &cfg.classes[model_class(cfg, &name)? as usize];
            (*by != name).then(|| {
                let why = if synthcohort_ldm::metal::is_metal(cfg, &name) {
                    " (metal in its training data)"
                } else {
                    ""
                };
                format!("{} → {by}{why}", l.name)
            })
        })
        .collect()
}

/// Labels among `ids` the model can draw neither as themselves nor by a class of their
/// tissue: they would come out as background.
pub fn unseen_labels(cfg: &LdmConfig, ids: &[u16]) -> Vec<&'static str> {
    ids.iter()
        .filter_map(|&id| ontology::label_by_id(id))
        .filter(|l| model_class(cfg, &class_name(l.name)).is_none())
        .map(|l| l.name)
        .collect()
}

fn channel<'a>(
    cfg: &LdmConfig,
    out: &'a [f32],
    name: &str,
    n: usize,
) -> Result<&'a [f32], GenerateError> {
    let c = cfg
        .channels
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| GenerateError::Unsupported {
            generator: cfg.name.clone(),
            what: format!(
                "a `{name}` map (its channels: {})",
                cfg.channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    Ok(&out[c * n..(c + 1) * n])
}

/// Shifts each lesion's values so their mean is `target(lesion)`.
fn set_lesion_means(v: &mut [f32], labels: &[u16], lesions: &[(u16, f64)]) {
    for &(id, target) in lesions {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == id).collect();
        if idx.is_empty() {
            continue;
        }
        let mean = idx.iter().map(|&i| f64::from(v[i])).sum::<f64>() / idx.len() as f64;
        let shift = (target - mean) as f32;
        for i in idx {
            v[i] += shift;
        }
    }
}

/// Multiplies each lesion's values so their mean is `target(lesion)` (positive maps).
fn scale_lesion_means(v: &mut [f32], labels: &[u16], lesions: &[(u16, f64)]) {
    for &(id, target) in lesions {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == id).collect();
        let mean = idx.iter().map(|&i| f64::from(v[i])).sum::<f64>() / idx.len().max(1) as f64;
        if idx.is_empty() || mean <= 0.0 {
            continue;
        }
        let f = (target / mean) as f32;
        for i in idx {
            v[i] *= f;
        }
    }
}

impl Generator for LatentDiffusion {
    fn name(&self) -> String {
        // The sampling settings are part of what made the object (the guidance may come from
        // the model rather than the pipeline), so provenance and the manifest carry them.
        format!(
            "latent_diffusion:{}@{} ({:?} {} steps, {}guidance text {} / labels {})",
            self.config.name,
            &self.hash[..12],
            self.solver,
            self.steps,
            match (self.lesion_targets, self.unseen_fallback.is_some()) {
                (true, false) => "",
                (false, false) => "lesion intensity as drawn, ",
                (true, true) => "unseen labels procedural, ",
                (false, true) => "lesion intensity as drawn, unseen labels procedural, ",
            },
            self.guidance.text,
            self.guidance.labels
        )
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ct: self.config.modality == Modality::Ct,
            mri: self.config.modality == Modality::Mri,
        }
    }

    fn generate(&self, req: &Request) -> Result<TissueObject, GenerateError> {
        let unsupported = |what: String| GenerateError::Unsupported {
            generator: self.name(),
            what,
        };
        if req.needs.ct && self.config.modality != Modality::Ct {
            return Err(unsupported("CT maps (it is an MRI model)".into()));
        }
        if let Some(f) = req
            .needs
            .mri_fields_t
            .iter()
            .find(|&&f| (f - MRI_MODEL_FIELD_T).abs() > 1e-6)
        {
            return Err(unsupported(format!(
                "MRI maps at {f} T (it was trained on {MRI_MODEL_FIELD_T} T maps)"
            )));
        }
        if !req.needs.mri_fields_t.is_empty() && self.config.modality != Modality::Mri {
            return Err(unsupported("MRI maps (it is a CT model)".into()));
        }
        let grid = &req.labels.grid;
        let lesion_ids: Vec<u16> = req.lesions.iter().map(|l| l.label_id).collect();
        let (lut, unseen_label) = self.class_lut(req.labels, &lesion_ids);
        if !self
            .stand_ins_named
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let mut present = vec![false; lut.len()];
            for &l in &req.labels.data {
                present[l as usize] = true;
            }
            let ids: Vec<u16> = (1..lut.len() as u16)
                .filter(|&id| present[id as usize] && !lesion_ids.contains(&id))
                .collect();
            let named = stand_ins(&self.config, &ids);
            if !named.is_empty() {
                tracing::info!(
                    "the model `{}` draws {} label(s) by a stand-in class: {}",
                    self.config.name,
                    named.len(),
                    named.join(", ")
                );
            }
        }
        let classes: Vec<u8> = req.labels.data.iter().map(|&l| lut[l as usize]).collect();
        let sreq = SampleRequest {
            classes: &classes,
            dims: grid.dims,
            spacing_mm: grid.spacing_mm.map(|s| s as f32),
            prompt: req.prompt,
            seed: req.seed,
            steps: self.steps,
            solver: self.solver,
            guidance: self.guidance,
        };
        let out = {
            let s = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
            s.sample(&sreq, &mut |_, _| {})
                .map_err(|e| unsupported(format!("this request: {e}")))?
        };
        let n = grid.len();
        let labels = &req.labels.data;
        let unseen: Vec<bool> = labels.iter().map(|&l| unseen_label[l as usize]).collect();
        let fallback = match &self.unseen_fallback {
            Some(p) if unseen.iter().any(|&u| u) => Some(p.generate(req)?),
            None if unseen.iter().any(|&u| u) => {
                // Only an imported map gets here (validation refuses such templates): say what
                // comes out as background rather than draw it silently.
                let mut names: Vec<&str> = labels
                    .iter()
                    .zip(&unseen)
                    .filter(|(_, &u)| u)
                    .filter_map(|(&l, _)| ontology::label_by_id(l).map(|x| x.name))
                    .collect();
                names.sort_unstable();
                names.dedup();
                tracing::warn!(
                    "the model `{}` has no class for {} nor for their tissue: drawn as its background class; `generator.unseen_labels: procedural` draws them with the procedural renderer",
                    self.config.name,
                    names.join(", ")
                );
                None
            }
            _ => None,
        };
        // Where the model saw nothing, the procedural renderer's value.
        let patch = |v: &mut [f32], from: &Volume<f32>| {
            for (i, x) in v.iter_mut().enumerate() {
                if unseen[i] {
                    *x = from.data[i];
                }
            }
        };
        let ct = if req.needs.ct {
            // Held to the CT scale (`HU_MIN`…`HU_MAX`): the stochastic detail's tails reach
            // past it (background blocks near −1000 HU plus a −270 HU residual).
            let mut hu: Vec<f32> = channel(&self.config, &out, "hu", n)?
                .iter()
                .map(|v| v.clamp(HU_MIN, HU_MAX))
                .collect();
            if let Some(ct) = fallback.as_ref().and_then(|f| f.ct.as_ref()) {
                patch(&mut hu, &ct.hu);
            }
            let targets: Vec<(u16, f64)> = req.lesions.iter().map(|l| (l.label_id, l.hu)).collect();
            if self.lesion_targets {
                set_lesion_means(&mut hu, labels, &targets);
            }
            Some(ct_maps(req.labels, hu, req.lesions))
        } else {
            None
        };
        let mut mri = Vec::new();
        for &field in &req.needs.mri_fields_t {
            let get = |name| {
                channel(&self.config, &out, name, n)
                    .map(|c| c.iter().map(|v| v.max(0.0)).collect::<Vec<f32>>())
            };
            let (mut pd, mut t1, mut t2, mut t2s) =
                (get("pd")?, get("t1")?, get("t2")?, get("t2star")?);
            if let Some(m) = fallback.as_ref().and_then(|f| f.mri_at(field)) {
                patch(&mut pd, &m.pd);
                patch(&mut t1, &m.t1_ms);
                patch(&mut t2, &m.t2_ms);
                patch(&mut t2s, &m.t2star_ms);
            }
            // Relaxation times must stay positive and T2* ≤ T2.
            for i in 0..n {
                t1[i] = t1[i].max(1.0);
                t2[i] = t2[i].max(0.5);
                t2s[i] = t2s[i].clamp(0.25, t2[i]);
            }
            let pick = |f: fn(&super::LesionTissue) -> f64| {
                req.lesions
                    .iter()
                    .map(|l| (l.label_id, f(l)))
                    .collect::<Vec<_>>()
            };
            if self.lesion_targets {
                scale_lesion_means(&mut pd, labels, &pick(|l| l.pd));
                scale_lesion_means(&mut t1, labels, &pick(|l| l.t1_ms));
                scale_lesion_means(&mut t2, labels, &pick(|l| l.t2_ms));
            }
            let fat = tissue::tissue("fat").name;
            let fat_fraction = labels
                .iter()
                .map(|&l| {
                    let name = ontology::label_by_id(l).map_or("", |i| i.name);
                    if !lesion_ids.contains(&l) && tissue::tissue_for_label(name).name == fat {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            // The model makes no diffusion channel: ADC from the table per label (lesions their
            // own).
            let max = labels.iter().copied().max().unwrap_or(0);
            let adc_of_label: Vec<f32> = (0..=max)
                .map(|l| match req.lesions.iter().find(|x| x.label_id == l) {
                    Some(les) => les.adc_um2_ms as f32,
                    None => {
                        let name = ontology::label_by_id(l).map_or("background", |i| i.name);
                        tissue::diffusion::adc_um2_ms(tissue::tissue_for_label(name).name) as f32
                    }
                })
                .collect();
            let adc = labels.iter().map(|&l| adc_of_label[l as usize]).collect();
            let v = |d: Vec<f32>| Volume::from_vec(grid.clone(), d);
            mri.push(MriMaps {
                field_t: field,
                pd: v(pd),
                t1_ms: v(t1),
                t2_ms: v(t2),
                t2star_ms: v(t2s),
                fat_fraction: v(fat_fraction),
                adc_um2_ms: v(adc),
                chi_ppm: Some(super::susceptibility_map(req.labels, req.lesions)),
            });
        }
        Ok(TissueObject { ct, mri })
    }
}

/// Material per label (lesions: their own) and density following HU within the material, as
/// the procedural renderer does.
fn ct_maps(labels: &Volume<u16>, hu: Vec<f32>, lesions: &[super::LesionTissue]) -> CtMaps {
    let lesion_of = |id: u16| lesions.iter().find(|l| l.label_id == id);
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let mut materials: Vec<&'static str> = Vec::new();
    let mut mat_of = vec![0u8; max + 1];
    let mut tis = Vec::with_capacity(max + 1);
    for (id, slot) in mat_of.iter_mut().enumerate() {
        let name = ontology::label_by_id(id as u16).map_or("", |l| l.name);
        let t = tissue::tissue_for_label(if id == 0 { "background" } else { name });
        let m = lesion_of(id as u16).map_or(t.material, |l| l.material);
        let k = materials.iter().position(|x| *x == m).unwrap_or_else(|| {
            materials.push(m);
            materials.len() - 1
        });
        *slot = k as u8;
        tis.push(t);
    }
    // Once per label, not per voxel.
    let rho_of: Vec<f64> = tis
        .iter()
        .enumerate()
        .map(|(id, t)| match lesion_of(id as u16) {
            // The lesion's material at 0 HU: density scales with 1000 + HU within it.
            Some(l) => tissue::density_for_hu(l.material, 0.0),
            None => t.ct_density(),
        })
        .collect();
    let is_lesion: Vec<bool> = (0..tis.len())
        .map(|id| lesion_of(id as u16).is_some())
        .collect();
    let density = labels
        .data
        .iter()
        .zip(&hu)
        .map(|(&l, &h)| {
            let (mean, rho) = if is_lesion[l as usize] {
                (0.0, rho_of[l as usize])
            } else {
                (tis[l as usize].hu, rho_of[l as usize])
            };
            if 1000.0 + mean > 1.0 {
                (rho * (1000.0 + f64::from(h)) / (1000.0 + mean)).max(0.0) as f32
            } else {
                rho as f32
            }
        })
        .collect();
    let material = labels.data.iter().map(|&l| mat_of[l as usize]).collect();
    CtMaps {
        hu: Volume::from_vec(labels.grid.clone(), hu),
        density: Volume::from_vec(labels.grid.clone(), density),
        material: Volume::from_vec(labels.grid.clone(), material),
        materials,
        perfusion: Some(super::perfusion_map(labels, lesions)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> LdmConfig {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ct-abdomen");
        synthcohort_ldm::model::load_config(&dir).unwrap()
    }

    #[test]
    fn the_shipped_models_implant_femur_is_drawn_by_its_mirror() {
        let mut cfg = shipped();
        let idx = |cfg: &LdmConfig, n: &str| cfg.class_index(n).unwrap();
        // Its training patient's left hip prosthesis marked the left femur, nothing else.
        assert_eq!(cfg.metal_classes(), ["femur_left".to_string()]);
        assert_eq!(
            model_class(&cfg, "femur_left"),
            Some(idx(&cfg, "femur_right"))
        );
        assert_eq!(model_class(&cfg, "liver"), Some(idx(&cfg, "liver")));
        // Unmarked, the class draws itself.
        cfg.metal_classes = None;
        assert_eq!(
            model_class(&cfg, "femur_left"),
            Some(idx(&cfg, "femur_left"))
        );
        // Both sides marked: another bone class, never a femur.
        cfg.metal_classes = Some(vec!["femur_left".into(), "femur_right".into()]);
        let c = model_class(&cfg, "femur_left").unwrap();
        let name = &cfg.classes[c as usize];
        assert!(!name.starts_with("femur"), "{name}");
        assert_eq!(
            tissue::tissue_for_label(name).name,
            tissue::tissue_for_label("femur_left").name
        );
    }

    #[test]
    fn a_label_the_model_lacks_is_drawn_by_its_mirror_first() {
        let cfg = shipped();
        let idx = |n: &str| cfg.class_index(n).unwrap();
        // rib_left_7 is not a class of the model, rib_right_7 is.
        assert!(cfg.class_index("rib_left_7").is_none());
        assert_eq!(model_class(&cfg, "rib_left_7"), Some(idx("rib_right_7")));
        // No mirror class either: a class of its tissue.
        assert_eq!(
            model_class(&cfg, "lung_upper_lobe_left"),
            Some(idx("lung_lower_lobe_right"))
        );
        assert_eq!(
            ontology::mirror_name("iliac_vena_left").as_deref(),
            Some("iliac_vena_right")
        );
        assert_eq!(
            ontology::mirror_name("rib_right_12").as_deref(),
            Some("rib_left_12")
        );
        assert_eq!(ontology::mirror_name("liver"), None);
        assert_eq!(ontology::mirror_name("leftover"), None);
    }

    /// The metal threshold against the attenuation tables: fully mineralised cortical bone
    /// (ICRU 46) stays below it at every effective energy from 50 keV (about an 80 kVp beam)
    /// up, and it sits below the 12-bit ceiling where metal saturates.
    #[test]
    fn the_metal_threshold_is_above_cortical_bone_and_below_the_ceiling() {
        use crate::tissue::attenuation::{density, material_index, mu_rho_at_kev};
        let (bone, water) = (
            material_index("cortical_bone").unwrap(),
            material_index("water").unwrap(),
        );
        let hu = |kev: usize| {
            let mu = |m: usize, name: &str| density(name).unwrap() * mu_rho_at_kev(m, kev);
            1000.0 * (mu(bone, "cortical_bone") / mu(water, "water") - 1.0)
        };
        let metal = f64::from(synthcohort_ldm::metal::METAL_HU);
        for kev in 50..=80 {
            assert!(hu(kev) < metal - 300.0, "{kev} keV: {}", hu(kev));
        }
        // NIST XCOM at 60 keV (about a 120 kVp beam's effective energy): cortical bone
        // (ICRU-44) 0.3148 cm²/g × 1.92 g/cm³ against water 0.2059 cm²/g → 1935 HU.
        assert!((hu(60) - 1936.0).abs() < 50.0, "{}", hu(60));
        assert!(metal < f64::from(HU_MAX));
    }

    #[test]
    fn stand_ins_are_named_with_the_metal_reason() {
        let cfg = shipped();
        let id = |n: &str| ontology::label_by_name(n).unwrap().id;
        let named = stand_ins(&cfg, &[id("liver"), id("femur_left"), id("rib_left_7")]);
        assert_eq!(
            named,
            [
                "femur_left → femur_right (metal in its training data)",
                "rib_left_7 → rib_right_7"
            ]
        );
    }
}
