//! The tissue object: the property maps a generator produces and the acquisition
//! simulators image. Lives here (not in `generate`) so the simulators depend only on tissue.

use crate::volume::Volume;

/// MRI property maps at one field strength.
#[derive(Clone, Debug)]
pub struct MriMaps {
    pub field_t: f64,
    /// Proton density relative to CSF.
    pub pd: Volume<f32>,
    pub t1_ms: Volume<f32>,
    pub t2_ms: Volume<f32>,
    pub t2star_ms: Volume<f32>,
    /// Fat fraction 0–1 (for the chemical shift of fat).
    pub fat_fraction: Volume<f32>,
    /// Apparent diffusion coefficient, µm²/ms (= 10⁻³ mm²/s), for diffusion weighting.
    pub adc_um2_ms: Volume<f32>,
    /// Magnetic susceptibility relative to water, ppm (`tissue::susceptibility`), for the B0
    /// field the body makes; `None` for objects without anatomy.
    pub chi_ppm: Option<Volume<f32>>,
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
    /// How each voxel takes up iodinated contrast (`contrast::Perfusion` as u8), for arms
    /// scanned in a contrast phase; `None` for objects without organs (phantoms).
    pub perfusion: Option<Volume<u8>>,
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
