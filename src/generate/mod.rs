//! Tissue-object generators: label map (+ prompt) → tissue properties.
//!
//! [`Generator`] is the seam between anatomy and acquisition: the procedural renderer
//! implements it here; the latent diffusion model implements it in its own module.

pub mod blur;
pub mod procedural;

use crate::volume::Volume;

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
    pub hu: f64,
    pub pd: f64,
    pub t1_ms: f64,
    pub t2_ms: f64,
}

/// MRI property maps at one field strength.
#[derive(Clone, Debug)]
pub struct MriMaps {
    pub field_t: f64,
    /// Proton density relative to CSF.
    pub pd: Volume<f32>,
    pub t1_ms: Volume<f32>,
    pub t2_ms: Volume<f32>,
    pub t2star_ms: Volume<f32>,
}

/// CT property maps.
#[derive(Clone, Debug)]
pub struct CtMaps {
    /// Attenuation in HU at a 120 kVp-like effective energy.
    pub hu: Volume<f32>,
    /// Mass density, g/cm³.
    pub density: Volume<f32>,
    /// Index into [`CtMaps::materials`] per voxel (the dominant material; no blending).
    pub material: Volume<u8>,
    /// Material names (reference material table) indexed by `material`.
    pub materials: Vec<&'static str>,
}

/// The subject's tissue object: every map the arms asked for, on the anatomy grid.
#[derive(Clone, Debug)]
pub struct TissueObject {
    pub ct: Option<CtMaps>,
    pub mri: Vec<MriMaps>,
}

impl TissueObject {
    pub fn mri_at(&self, field_t: f64) -> Option<&MriMaps> {
        self.mri.iter().find(|m| (m.field_t - field_t).abs() < 1e-9)
    }
}

/// Inputs of one generation.
pub struct Request<'a> {
    pub labels: &'a Volume<u16>,
    pub lesions: &'a [LesionTissue],
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
