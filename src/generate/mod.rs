//! Tissue-object generators: label map (+ prompt) → tissue properties.
//!
//! [`Generator`] is the seam between anatomy and acquisition: the procedural renderer
//! implements it here; the latent diffusion model implements it in its own module.

pub mod blur;
pub mod bowel_gas;
pub mod diffuse;
pub mod ldm;
pub mod procedural;

use crate::volume::Volume;

pub use crate::tissue::object::{CtMaps, MriMaps, TissueObject};

/// What the arms of a pipeline need from the object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Needs {
    /// HU, material and density maps (CT arms, `property: hu`).
    pub ct: bool,
    /// Field strengths (T) at which MRI maps are needed.
    pub mri_fields_t: Vec<f64>,
}

/// What a generator can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub ct: bool,
    pub mri: bool,
}

/// Tissue properties of one focal lesion (by its label id in the label map).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LesionTissue {
    pub label_id: u16,
    /// The tissue of the organ the lesion grows in: the lesion keeps its reversible
    /// dephasing (T2′) and, where the lesion sets none, its other properties.
    pub host: &'static crate::tissue::Tissue,
    /// Unenhanced CT number.
    pub hu: f64,
    /// CT material (an attenuation-table name).
    pub material: &'static str,
    /// Contrast uptake class.
    pub perfusion: crate::tissue::contrast::Perfusion,
    pub pd: f64,
    pub t1_ms: f64,
    pub t2_ms: f64,
    /// Apparent diffusion coefficient, µm²/ms.
    pub adc_um2_ms: f64,
}

/// The magnetic susceptibility (ppm relative to water) of every voxel from its label's
/// tissue; background is air, lesions are water-like soft tissue.
pub fn susceptibility_map(labels: &Volume<u16>, lesions: &[LesionTissue]) -> Volume<f32> {
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let chi: Vec<f32> = (0..=max)
        .map(|id| {
            let id = id as u16;
            if lesions.iter().any(|l| l.label_id == id) {
                return 0.0;
            }
            let name = if id == 0 {
                "background"
            } else {
                crate::anatomy::ontology::label_by_id(id).map_or("", |l| l.name)
            };
            crate::tissue::susceptibility::chi_ppm(crate::tissue::tissue_for_label(name).name)
                as f32
        })
        .collect();
    Volume::from_vec(
        labels.grid.clone(),
        labels.data.iter().map(|&l| chi[l as usize]).collect(),
    )
}

/// The perfusion class of every voxel, from its label's name (lesions: their own class).
pub fn perfusion_map(labels: &Volume<u16>, lesions: &[LesionTissue]) -> Volume<u8> {
    let max = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let class: Vec<u8> = (0..=max)
        .map(|id| {
            let id = id as u16;
            if let Some(l) = lesions.iter().find(|l| l.label_id == id) {
                return l.perfusion as u8;
            }
            if id == 0 {
                return 0;
            }
            let name = crate::anatomy::label_by_id(id).map_or("", |l| l.name);
            crate::tissue::contrast::perfusion_for_label(name) as u8
        })
        .collect();
    Volume::from_vec(
        labels.grid.clone(),
        labels.data.iter().map(|&l| class[l as usize]).collect(),
    )
}

/// Inputs of one generation.
pub struct Request<'a> {
    pub labels: &'a Volume<u16>,
    pub lesions: &'a [LesionTissue],
    /// Diffuse diseases of the subject (not in the labels; the prompt names them).
    pub diffuse: &'a [diffuse::DiffuseEffect],
    pub prompt: &'a str,
    pub needs: &'a Needs,
    /// The subject's seed; generators derive their streams from it.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("generator `{generator}` cannot produce {what}")]
    Unsupported { generator: String, what: String },
}

pub trait Generator: Send + Sync {
    /// Name recorded in the manifest (with a model hash where there is a model).
    fn name(&self) -> String;
    fn capabilities(&self) -> Capabilities;
    fn generate(&self, req: &Request) -> Result<TissueObject, GenerateError>;
}
