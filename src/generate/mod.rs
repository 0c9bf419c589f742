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

/// Tissue fraction of a ground-glass component: the rest of the voxel is air, which puts a
/// nodule of 30–40 HU near −650 HU, in the range measured for pure ground-glass nodules
/// (about −750 to −450 HU; the Fleischner glossary's "hazy increased attenuation with
/// preserved bronchial and vascular margins", Hansell et al., Radiology 2008).
pub const GROUND_GLASS_TISSUE_FRACTION: f64 = 0.35;

/// The CT number range every generator's HU map is held to: the 12-bit range of clinical CT.
/// Texture tails past it (a model's stochastic detail in the background, the renderer's
/// Gaussian texture in lung) are not tissue.
pub const HU_MIN: f32 = -1024.0;
pub const HU_MAX: f32 = 3071.0;

impl LesionTissue {
    /// The tissue of a lesion's second part, from the lesion's own (`self`): cyst fluid is
    /// simple fluid (unenhancing, long T1 and T2, free diffusion); a necrotic core is tissue
    /// half liquefied — halfway between the lesion's tissue and fluid in every property, no
    /// enhancement (so an ADC of 0.9 becomes about 1.9 µm²/ms, as necrosis measures above
    /// viable tumour); ground glass is the lesion's tissue filling a fraction of the air
    /// space ([`GROUND_GLASS_TISSUE_FRACTION`]): its HU and proton density scale with it,
    /// the rest is kept.
    pub fn part(&self, part: crate::anatomy::LesionPart, label_id: u16) -> LesionTissue {
        use crate::anatomy::LesionPart;
        use crate::tissue::contrast::Perfusion;
        let (hu, pd, t1_ms, t2_ms) = crate::tissue::CYST_FLUID;
        let adc = crate::tissue::diffusion::lesion_adc_um2_ms("cyst");
        let fluid = LesionTissue {
            label_id,
            hu,
            material: "water",
            perfusion: Perfusion::None,
            pd,
            t1_ms,
            t2_ms,
            adc_um2_ms: adc,
            ..*self
        };
        let mid = |a: f64, b: f64| 0.5 * (a + b);
        match part {
            LesionPart::Fluid => fluid,
            LesionPart::NecroticCore => LesionTissue {
                hu: mid(self.hu, fluid.hu),
                pd: mid(self.pd, fluid.pd),
                t1_ms: mid(self.t1_ms, fluid.t1_ms),
                t2_ms: mid(self.t2_ms, fluid.t2_ms),
                adc_um2_ms: mid(self.adc_um2_ms, fluid.adc_um2_ms),
                ..fluid
            },
            LesionPart::GroundGlass => {
                let f = GROUND_GLASS_TISSUE_FRACTION;
                LesionTissue {
                    label_id,
                    hu: f * self.hu + (1.0 - f) * -1000.0,
                    pd: f * self.pd,
                    ..*self
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anatomy::LesionPart;
    use crate::tissue::contrast::Perfusion;

    /// Second parts against reference values: a solid nodule's ground glass lands in the
    /// −750…−450 HU measured for pure ground-glass nodules; cyst fluid is water-like and
    /// unenhancing with free diffusion (ADC near free water at 37 °C, 3.0 µm²/ms); a necrotic
    /// core diffuses faster than its viable rim and slower than fluid, and takes no contrast.
    #[test]
    fn lesion_parts_take_their_properties_from_the_lesion() {
        let nodule = LesionTissue {
            label_id: 201,
            host: crate::tissue::tissue_for_label("lung_lower_lobe_left"),
            hu: 30.0,
            material: "water",
            perfusion: Perfusion::Liver,
            pd: 0.85,
            t1_ms: 1300.0,
            t2_ms: 110.0,
            adc_um2_ms: 1.1,
        };
        let glass = nodule.part(LesionPart::GroundGlass, 202);
        assert_eq!(glass.label_id, 202);
        assert!((-750.0..=-450.0).contains(&glass.hu), "{}", glass.hu);
        assert!(glass.pd < nodule.pd && glass.perfusion == nodule.perfusion);
        let fluid = nodule.part(LesionPart::Fluid, 203);
        assert!((-10.0..=20.0).contains(&fluid.hu), "{}", fluid.hu);
        assert_eq!(fluid.perfusion, Perfusion::None);
        assert!((2.5..=3.2).contains(&fluid.adc_um2_ms));
        assert!(fluid.t2_ms > 5.0 * nodule.t2_ms);
        let core = nodule.part(LesionPart::NecroticCore, 204);
        assert!(core.adc_um2_ms > nodule.adc_um2_ms && core.adc_um2_ms < fluid.adc_um2_ms);
        assert!(core.hu < nodule.hu && core.hu > fluid.hu);
        assert_eq!(core.perfusion, Perfusion::None);
        // The host organ stays the lesion's (it keeps the organ's T2′).
        assert!(std::ptr::eq(core.host, nodule.host));
    }
}
