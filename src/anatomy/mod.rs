//! Anatomy: the label ontology, procedural phantoms (thorax, abdomen, head, QA cylinders),
//! smooth random deformation, lesion insertion and label-map import.
//!
//! [`build`] is the stage entry point: render a template (or take an imported map), deform it
//! with the subject's anatomy stream, then insert the subject's lesions with its lesion stream.
//! Everything is deterministic given the two streams.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Mutex, OnceLock};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::volume::{Grid, Volume};

pub mod atlas;
mod deform;
mod geom;
pub mod import;
pub mod laterality;
mod lesion;
pub mod norms;
pub mod ontology;
mod phantom;
pub mod snomed;

pub use import::{import_labels, parse_names_file, ImportReport};
pub use ontology::{
    label_by_id, label_by_name, ontology, organ_group, surface_of, LabelInfo, LESION_ID_BASE,
};

/// Ids a template can produce (sorted, no background, no lesions), for labels.json and the
/// nnU-Net class list.
pub fn template_labels(t: Template) -> Vec<u16> {
    if t.is_atlas() {
        return atlas::load(t).map_or_else(|_| Vec::new(), |a| a.label_ids.clone());
    }
    phantom::template_label_set(t)
}

/// Anatomy templates: atlases built from real segmentations, procedural phantoms, QA objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Atlas: abdomen and pelvis from a real CT and its segmentation (see the schema text).
    Abdomen,
    /// Atlas: chest from a real CT angiogram and its heart mask (models/atlas-chest/ATLAS.md).
    Chest,
    /// Procedural chest phantom: neck base to upper abdomen (`thorax` reads as this: pipelines
    /// that need abdominal organs in the chest field, which the chest atlas does not name).
    #[serde(alias = "thorax")]
    ThoraxPhantom,
    /// Procedural abdomen phantom: diaphragm to pelvis (for QA and comparison).
    AbdomenPhantom,
    /// Atlas: head from a real brain template (MNI152 2009a) with its grey- and white-matter
    /// maps; CSF and ventricles derived, skull and scalp added (models/atlas-head/ATLAS.md).
    Head,
    /// Procedural head phantom: scalp, skull, CSF, grey and white matter, ventricles.
    HeadPhantom,
    /// 200 mm water cylinder (CT QA).
    WaterCylinder,
    /// Water cylinder with air, fat, acrylic, bone and iodine inserts (CT QA).
    CtQa,
}

impl Template {
    pub const ALL: [Template; 8] = [
        Template::Abdomen,
        Template::Head,
        Template::Chest,
        Template::ThoraxPhantom,
        Template::AbdomenPhantom,
        Template::HeadPhantom,
        Template::WaterCylinder,
        Template::CtQa,
    ];

    /// The template a pipeline name stands for (`thorax` is `thorax_phantom`).
    pub fn from_name(name: &str) -> Option<Template> {
        if name == "thorax" {
            return Some(Template::ThoraxPhantom);
        }
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The snake_case name used in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            Template::Abdomen => "abdomen",
            Template::Chest => "chest",
            Template::ThoraxPhantom => "thorax_phantom",
            Template::AbdomenPhantom => "abdomen_phantom",
            Template::Head => "head",
            Template::HeadPhantom => "head_phantom",
            Template::WaterCylinder => "water_cylinder",
            Template::CtQa => "ct_qa",
        }
    }

    /// QA phantoms are rigid objects: no deformation, no body scaling.
    pub fn is_qa(self) -> bool {
        matches!(self, Template::WaterCylinder | Template::CtQa)
    }

    /// Templates read from a shipped atlas rather than drawn procedurally.
    pub fn is_atlas(self) -> bool {
        atlas::folder(self).is_some()
    }

    /// A grid that covers everything the template draws at median adult size (2.5–3 mm for
    /// the trunk, 2 mm otherwise); used for measurements and handy for previews.
    pub fn covering_grid(self) -> Grid {
        match self {
            Template::Abdomen => Grid::centered([160, 124, 112], [3.0; 3]),
            Template::Chest => Grid::centered([168, 124, 104], [3.0; 3]),
            Template::ThoraxPhantom | Template::AbdomenPhantom => {
                Grid::centered([144, 104, 168], [2.5, 2.5, 2.5])
            }
            Template::Head => Grid::centered([100, 118, 104], [2.0; 3]),
            Template::HeadPhantom => Grid::centered([120, 120, 120], [2.0; 3]),
            Template::WaterCylinder | Template::CtQa => Grid::centered([112, 112, 20], [2.0; 3]),
        }
    }
}

/// The schema lists every template with its description, and `thorax`, the older name of
/// `thorax_phantom`, which pipelines may still use.
impl schemars::JsonSchema for Template {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Template".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let describe = |t: Template| {
            match t {
            Template::Abdomen => "Atlas: abdomen and pelvis (lung bases to proximal femora) from a real contrast CT and its TotalSegmentator segmentation, with body outline, subcutaneous and visceral fat, muscle and gas derived from the CT (models/atlas-abdomen/ATLAS.md). Organs scale to literature volumes for each subject, the fat band to its BMI.",
            Template::ThoraxPhantom => "Procedural chest phantom: neck base to upper abdomen.",
            Template::AbdomenPhantom => "Procedural abdomen phantom: diaphragm to pelvis (for QA and comparison).",
            Template::Chest => "Atlas: chest (lung apices to the upper abdomen) from a real contrast CT angiogram and its heart mask: lungs, airways, pulmonary vessels, great vessels and bone segmented by documented HU rules, body outline, fat and muscle by the abdomen atlas's windows (models/atlas-chest/ATLAS.md). No abdominal organs are named. Lungs vary with the subject's height and sex by the lung-capacity norm.",
            Template::Head => "Atlas: head from a real brain template (ICBM 2009a MNI152, skull-stripped T1 with grey- and white-matter maps): grey and white matter by the larger probability, CSF and ventricles derived, subarachnoid CSF, skull and scalp added as shells (models/atlas-head/ATLAS.md). The head scales to each subject's brain volume norm for sex and age.",
            Template::HeadPhantom => "Procedural head phantom: scalp, skull, CSF, grey and white matter, ventricles (for QA and comparison).",
            Template::WaterCylinder => "200 mm water cylinder (CT QA).",
            Template::CtQa => "Water cylinder with air, fat, acrylic, bone and iodine inserts (CT QA).",
        }
        };
        let mut one_of: Vec<serde_json::Value> = Template::ALL
            .iter()
            .map(|&t| serde_json::json!({"type": "string", "const": t.name(), "description": describe(t)}))
            .collect();
        one_of.push(serde_json::json!({
            "type": "string",
            "const": "thorax",
            "description": "Read as `thorax_phantom` (its name before atlases); the chest atlas is `chest`."
        }));
        schemars::Schema::try_from(serde_json::json!({
            "description": "Anatomy templates: atlases built from real segmentations, procedural phantoms, QA objects.",
            "oneOf": one_of
        }))
        .expect("an object is a schema")
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
}

/// Subject body size: organs scale with height, subcutaneous fat with BMI, the brain with sex
/// and age.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodySize {
    pub height_cm: f64,
    pub weight_kg: f64,
    pub sex: Sex,
    #[serde(default = "reference_age")]
    pub age_years: f64,
}

fn reference_age() -> f64 {
    BodySize::median().age_years
}

impl BodySize {
    /// The reference adult the phantom dimensions describe: 170 cm, 72 kg, male, 45 years.
    pub fn median() -> Self {
        BodySize {
            height_cm: 170.0,
            weight_kg: 72.0,
            sex: Sex::Male,
            age_years: 45.0,
        }
    }

    pub fn bmi(&self) -> f64 {
        self.weight_kg / (self.height_cm / 100.0).powi(2)
    }
}

impl Default for BodySize {
    fn default() -> Self {
        Self::median()
    }
}

/// A lesion's shape family. The last four carry a second part in the label map (see
/// [`LesionPart`]): the label map marks each part with its own id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LesionShape {
    #[default]
    Sphere,
    /// Triaxial, axis ratios 0.7–1.
    Ellipsoid,
    /// A sphere with smooth bumps (±15 % of the radius).
    Lobulated,
    /// A slightly lobulated core with 8–14 tapering spicules radiating into the surrounding
    /// tissue (the "corona radiata" of a spiculated lung nodule); the diameter is the core's.
    Spiculated,
    /// A fluid-filled cavity inside a soft-tissue wall 1.5–3 mm thick (at least one voxel):
    /// parts `wall` (the lesion's own tissue) and `fluid`.
    Cystic,
    /// A lobulated viable rim around a necrotic core of 40–70 % of the diameter: parts `rim`
    /// (the lesion's tissue) and `necrotic_core` (unenhancing, fluid-like).
    Necrotic,
    /// A part-solid lung nodule: a solid component of 30–60 % of the diameter (the lesion's
    /// tissue) inside a ground-glass component (about −650 HU).
    PartSolid,
}

impl LesionShape {
    pub fn name(self) -> &'static str {
        match self {
            LesionShape::Sphere => "sphere",
            LesionShape::Ellipsoid => "ellipsoid",
            LesionShape::Lobulated => "lobulated",
            LesionShape::Spiculated => "spiculated",
            LesionShape::Cystic => "cystic",
            LesionShape::Necrotic => "necrotic",
            LesionShape::PartSolid => "part_solid",
        }
    }

    /// The second part this shape carries, if any.
    pub fn second_part(self) -> Option<LesionPart> {
        match self {
            LesionShape::Cystic => Some(LesionPart::Fluid),
            LesionShape::Necrotic => Some(LesionPart::NecroticCore),
            LesionShape::PartSolid => Some(LesionPart::GroundGlass),
            _ => None,
        }
    }
}

/// A lesion component with its own label id and tissue, beside the lesion's own id (which
/// always carries the lesion's tissue as the pipeline gives it: the cyst's wall, the viable
/// rim, the solid component).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LesionPart {
    /// The content of a cystic lesion.
    Fluid,
    /// The necrotic centre of a tumour.
    NecroticCore,
    /// The ground-glass component around a part-solid nodule's solid core.
    GroundGlass,
}

impl LesionPart {
    pub fn name(self) -> &'static str {
        match self {
            LesionPart::Fluid => "fluid",
            LesionPart::NecroticCore => "necrotic_core",
            LesionPart::GroundGlass => "ground_glass",
        }
    }
}

/// One extra part of a lesion in the label map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionPartRecord {
    pub part: LesionPart,
    pub label_id: u16,
    pub volume_ml: f64,
}

/// What a growing lesion does to the tissue around it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LesionGrowth {
    /// The lesion takes the place of the tissue it occupies (infiltrative growth; the organ
    /// loses the lesion's volume).
    #[default]
    Replace,
    /// The lesion pushes the surrounding tissue outward (expansile growth, mass effect): the
    /// tissue it would occupy is moved radially out as an incompressible medium would be
    /// (fading to nothing at three radii), so the organ keeps its volume and neighbouring
    /// structures shift.
    Displace,
}

impl std::fmt::Display for LesionShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a lesion sits against its organ's boundary.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LesionPlacement {
    /// Wholly inside the organ.
    #[default]
    Inside,
    /// Growing out of the organ: the centre inside, near the surface, a quarter to three
    /// quarters of the lesion outside it in the neighbouring tissue (exophytic renal and liver
    /// tumours); it may be larger than the organ is thick.
    Exophytic,
    /// Inside the organ against its boundary (pleural-based nodules, subcapsular lesions).
    Surface,
}

impl LesionPlacement {
    /// How the placement reads in a sentence ("a lesion … `kidney`").
    pub fn phrase(self) -> &'static str {
        match self {
            LesionPlacement::Inside => "wholly inside",
            LesionPlacement::Surface => "inside and against the boundary of",
            LesionPlacement::Exophytic => {
                "growing out of (a quarter to three quarters outside, within the body)"
            }
        }
    }
}

/// One lesion to insert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionRequest {
    /// The cohort condition that asked for it (recorded, not interpreted).
    pub condition: String,
    /// "nodule", "tumour", "cyst", "metastasis" or free text (recorded, not interpreted).
    pub kind: String,
    /// A label name or a group from [`organ_group`].
    pub organ: String,
    /// Mean diameter (mm).
    pub diameter_mm: f64,
    pub shape: LesionShape,
    #[serde(default)]
    pub placement: LesionPlacement,
    #[serde(default)]
    pub growth: LesionGrowth,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnatomyParams {
    pub template: Template,
    pub grid: Grid,
    pub body: BodySize,
    /// SD (mm) of each control-point displacement component; 0 = no deformation.
    pub deformation_mm: f64,
    pub lesions: Vec<LesionRequest>,
}

/// Where a lesion went and how big it came out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LesionRecord {
    pub label_id: u16,
    pub condition: String,
    pub kind: String,
    pub organ: String,
    pub shape: LesionShape,
    #[serde(default)]
    pub placement: LesionPlacement,
    /// Fraction of the lesion's voxels inside its organ (1 unless exophytic).
    #[serde(default = "one")]
    pub fraction_in_organ: f64,
    /// World position (mm, RAS+) of the lesion centre.
    pub center_mm: [f64; 3],
    /// Requested mean diameter (mm).
    pub diameter_mm: f64,
    /// Voxel count × voxel volume (every part).
    pub volume_ml: f64,
    #[serde(default)]
    pub growth: LesionGrowth,
    /// The lesion's other parts (cystic fluid, necrotic core, ground glass), each with its
    /// own label id; `label_id` marks the rest.
    #[serde(default)]
    pub parts: Vec<LesionPartRecord>,
}

impl LesionRecord {
    /// Every label id this lesion uses: its own, then its parts'.
    pub fn label_ids(&self) -> impl Iterator<Item = u16> + '_ {
        std::iter::once(self.label_id).chain(self.parts.iter().map(|p| p.label_id))
    }
}

fn one() -> f64 {
    1.0
}

/// A subject's label map (organs + lesions) and its lesion list.
#[derive(Clone, Debug)]
pub struct Anatomy {
    pub labels: Volume<u16>,
    pub lesions: Vec<LesionRecord>,
}

#[derive(thiserror::Error, Debug)]
pub enum AnatomyError {
    #[error("anatomy grid must have non-zero dims and positive finite spacing, got dims {dims:?}, spacing {spacing_mm:?} mm")]
    InvalidGrid {
        dims: [usize; 3],
        spacing_mm: [f64; 3],
    },
    #[error("body size out of range: height {height_cm} cm (expected 40..=250), weight {weight_kg} kg (expected 2..=400)")]
    InvalidBody { height_cm: f64, weight_kg: f64 },
    #[error("deformation_mm must be finite and >= 0, got {0}")]
    InvalidDeformation(f64),
    #[error("lesion {index} (`{condition}`): diameter must be positive and finite, got {diameter_mm} mm")]
    InvalidLesionDiameter {
        index: usize,
        condition: String,
        diameter_mm: f64,
    },
    #[error("too many lesions: {0} label ids (lesions and their parts) requested, ids {LESION_ID_BASE}..=65535 allow at most {max}", max = u16::MAX - LESION_ID_BASE + 1)]
    TooManyLesions(usize),
    #[error("lesion for `{condition}`: unknown organ `{organ}` (expected a label name such as `liver` or a group: lung, lung_left, lung_right, kidney, brain, bowel, ribs, vertebrae)")]
    UnknownOrgan { organ: String, condition: String },
    #[error(
        "lesion for `{condition}`: organ `{organ}` has no voxels in this {template} label map"
    )]
    OrganAbsent {
        organ: String,
        condition: String,
        template: Template,
    },
    #[error("could not place a {diameter_mm:.1} mm {shape} lesion {} `{organ}` after {tries} tries (deepest point of `{organ}` is {deepest_mm:.1} mm from its boundary)", placement.phrase())]
    LesionDoesNotFit {
        diameter_mm: f64,
        shape: LesionShape,
        placement: LesionPlacement,
        organ: String,
        tries: usize,
        deepest_mm: f64,
    },
    #[error("lesion for `{condition}`: `placement: surface` needs an organ with a surface to lie against (pleura, capsule, serosa, bone cortex, pia), and `{organ}` has none; use `inside` or `exophytic`")]
    NoSurface { organ: String, condition: String },
    #[error("imported base label map is on grid {got:?} but the anatomy grid is {want:?}; resample it with import_labels first")]
    GridMismatch { got: Box<Grid>, want: Box<Grid> },
    #[error("atlas: {0}")]
    Atlas(String),
    #[error("label names file, line {line}: {reason}: `{text}`")]
    NamesFile {
        line: usize,
        text: String,
        reason: String,
    },
}

/// Placement attempts per lesion before giving up.
pub const LESION_TRIES: usize = 400;

fn validate(params: &AnatomyParams, base: Option<&Volume<u16>>) -> Result<(), AnatomyError> {
    let g = &params.grid;
    if g.is_empty()
        || g.spacing_mm.iter().any(|s| !s.is_finite() || *s <= 0.0)
        || g.origin_mm.iter().any(|o| !o.is_finite())
    {
        return Err(AnatomyError::InvalidGrid {
            dims: g.dims,
            spacing_mm: g.spacing_mm,
        });
    }
    let b = &params.body;
    if !(40.0..=250.0).contains(&b.height_cm) || !(2.0..=400.0).contains(&b.weight_kg) {
        return Err(AnatomyError::InvalidBody {
            height_cm: b.height_cm,
            weight_kg: b.weight_kg,
        });
    }
    if !params.deformation_mm.is_finite() || params.deformation_mm < 0.0 {
        return Err(AnatomyError::InvalidDeformation(params.deformation_mm));
    }
    let ids_needed: usize = params
        .lesions
        .iter()
        .map(|l| 1 + l.shape.second_part().is_some() as usize)
        .sum();
    if ids_needed > (u16::MAX - LESION_ID_BASE) as usize + 1 {
        return Err(AnatomyError::TooManyLesions(ids_needed));
    }
    for (index, l) in params.lesions.iter().enumerate() {
        if !l.diameter_mm.is_finite() || l.diameter_mm <= 0.0 {
            return Err(AnatomyError::InvalidLesionDiameter {
                index,
                condition: l.condition.clone(),
                diameter_mm: l.diameter_mm,
            });
        }
        if organ_group(&l.organ).is_none() {
            return Err(AnatomyError::UnknownOrgan {
                organ: l.organ.clone(),
                condition: l.condition.clone(),
            });
        }
        if l.placement == LesionPlacement::Surface && surface_of(&l.organ).is_none() {
            return Err(AnatomyError::NoSurface {
                organ: l.organ.clone(),
                condition: l.condition.clone(),
            });
        }
    }
    if let Some(base) = base {
        if base.grid != *g {
            return Err(AnatomyError::GridMismatch {
                got: Box::new(base.grid.clone()),
                want: Box::new(g.clone()),
            });
        }
    }
    Ok(())
}

/// Render the template (or use `base`, an imported label map already on `params.grid`), apply
/// the smooth random deformation, then insert lesions.
/// `anatomy_rng` drives the deformation field (and the noise behind gyri and bowel loops);
/// `lesion_rng` drives lesion placement and shape. Deterministic given the rngs.
pub fn build(
    params: &AnatomyParams,
    base: Option<&Volume<u16>>,
    anatomy_rng: &mut ChaCha8Rng,
    lesion_rng: &mut ChaCha8Rng,
) -> Result<Anatomy, AnatomyError> {
    validate(params, base)?;
    if base.is_none() && params.template.is_atlas() {
        return warp_and_insert(
            params,
            atlas::load(params.template)?,
            anatomy_rng,
            lesion_rng,
        );
    }
    let noise_seed: u64 = anatomy_rng.random();
    let mut labels = match base {
        Some(b) => deform::deform(b, params.deformation_mm, anatomy_rng),
        None => {
            let l =
                phantom::render_template(params.template, &params.grid, &params.body, noise_seed);
            if params.template.is_qa() {
                l
            } else {
                deform::deform(&l, params.deformation_mm, anatomy_rng)
            }
        }
    };
    let lesions = insert_lesions(&mut labels, params.template, &params.lesions, lesion_rng)?;
    Ok(Anatomy { labels, lesions })
}

/// A subject pulled back from `atlas` (a shipped atlas, or an imported label map made into
/// one with [`atlas::from_labels`]): organ volumes to the norms for `params.body`, the fat
/// band to its BMI, the random deformation; then lesions.
pub fn build_on_atlas(
    params: &AnatomyParams,
    atlas: &atlas::Atlas,
    anatomy_rng: &mut ChaCha8Rng,
    lesion_rng: &mut ChaCha8Rng,
) -> Result<Anatomy, AnatomyError> {
    validate(params, None)?;
    warp_and_insert(params, atlas, anatomy_rng, lesion_rng)
}

/// [`build_on_atlas`] after validation.
fn warp_and_insert(
    params: &AnatomyParams,
    atlas: &atlas::Atlas,
    anatomy_rng: &mut ChaCha8Rng,
    lesion_rng: &mut ChaCha8Rng,
) -> Result<Anatomy, AnatomyError> {
    let mut labels = subject_warp(params, atlas, anatomy_rng).labels();
    let lesions = insert_lesions(&mut labels, params.template, &params.lesions, lesion_rng)?;
    Ok(Anatomy { labels, lesions })
}

/// The pull-back from a subject's grid into `atlas`: exactly the warp [`build_on_atlas`] uses
/// for the same `anatomy_rng` (a fresh stream), for measuring a subject's deformation
/// (Jacobian, organ scale factors).
pub fn subject_warp<'a>(
    params: &AnatomyParams,
    atlas: &'a atlas::Atlas,
    anatomy_rng: &mut ChaCha8Rng,
) -> atlas::SubjectWarp<'a> {
    // The noise seed procedural templates draw first: one stream layout for every template.
    let _noise_seed: u64 = anatomy_rng.random();
    atlas::SubjectWarp::draw(
        atlas,
        &params.body,
        &params.grid,
        params.deformation_mm,
        anatomy_rng,
    )
}

fn insert_lesions(
    labels: &mut Volume<u16>,
    template: Template,
    reqs: &[LesionRequest],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<LesionRecord>, AnatomyError> {
    let grid = labels.grid.clone();
    let [nx, ny, nz] = grid.dims;
    let half_diag = 0.5 * grid.spacing_mm.iter().map(|s| s * s).sum::<f64>().sqrt();
    // Depth maps per organ group; earlier lesions only make them optimistic, and every
    // candidate is checked exactly, so one map per group suffices.
    let mut depth_cache: HashMap<Vec<u16>, Vec<f32>> = HashMap::new();
    let mut out = Vec::with_capacity(reqs.len());
    // Ids run in request order, a lesion's parts right after it.
    let mut next_id = LESION_ID_BASE;
    for req in reqs {
        let ids = organ_group(&req.organ).ok_or_else(|| AnatomyError::UnknownOrgan {
            organ: req.organ.clone(),
            condition: req.condition.clone(),
        })?;
        let label_id = next_id;
        next_id += 1;
        let shape = lesion::ShapeInst::draw(req.shape, req.diameter_mm, rng);
        if !depth_cache.contains_key(&ids) {
            let d = lesion::edt_full(labels, &ids).ok_or_else(|| AnatomyError::OrganAbsent {
                organ: req.organ.clone(),
                condition: req.condition.clone(),
                template,
            })?;
            depth_cache.insert(ids.clone(), d);
        }
        let depth = &depth_cache[&ids];
        let deepest = depth.iter().cloned().fold(0.0f32, f32::max) as f64;
        // Inside: a ball of radius r_min around the centre is lesion, so a candidate voxel
        // must be at least r_min − (centre jitter) from the organ boundary; against the
        // surface, no deeper than that plus a voxel diagonal; exophytic, within half r_min of it.
        let need = (shape.r_min - half_diag).max(0.0) as f32;
        let (lo, hi) = match req.placement {
            LesionPlacement::Inside => (need, f32::INFINITY),
            LesionPlacement::Surface => (need, need + (2.0 * half_diag) as f32),
            LesionPlacement::Exophytic => (0.0, (0.5 * shape.r_min).max(2.0 * half_diag) as f32),
        };
        let within = |lo: f32, hi: f32| -> Vec<usize> {
            depth
                .iter()
                .enumerate()
                .filter(|(_, &d)| d > 0.0 && d >= lo && d <= hi)
                .map(|(i, _)| i)
                .collect()
        };
        let mut candidates = within(lo, hi);
        if req.placement == LesionPlacement::Inside {
            // Wholly inside with its 26-neighbourhood in the organ: a voxel diagonal beyond
            // r_body, less the centre's jitter, is the likely-fit depth; in a thin organ (lung
            // bases) the loose bound leaves too many misses for the tries, so prefer the deep
            // centres when there are any.
            let deep = within((shape.r_body + half_diag) as f32, hi);
            if !deep.is_empty() {
                candidates = deep;
            }
        }
        let fail = || AnatomyError::LesionDoesNotFit {
            diameter_mm: req.diameter_mm,
            shape: req.shape,
            placement: req.placement,
            organ: req.organ.clone(),
            tries: LESION_TRIES,
            deepest_mm: deepest,
        };
        if candidates.is_empty() {
            return Err(fail());
        }
        let mut placed = None;
        for _ in 0..LESION_TRIES {
            let c = candidates[rng.random_range(0..candidates.len())];
            let [ci, cj, ck] = grid.ijk(c);
            let w = grid.world(ci, cj, ck);
            let centre = [0, 1, 2].map(|a| w[a] + grid.spacing_mm[a] * (rng.random::<f64>() - 0.5));
            let (vox, spicules) = voxelise(&grid, &shape, centre, c);
            let interior = |v: usize| {
                let [i, j, kk] = grid.ijk(v);
                i > 0 && j > 0 && kk > 0 && i + 1 < nx && j + 1 < ny && kk + 1 < nz
            };
            let fits = match req.placement {
                // In the organ and touching its boundary (a face neighbour outside it).
                LesionPlacement::Surface => {
                    vox.iter()
                        .all(|&v| interior(v) && ids.contains(&labels.data[v]))
                        && vox.iter().any(|&v| {
                            let [i, j, kk] = grid.ijk(v);
                            [
                                [1i64, 0, 0],
                                [-1, 0, 0],
                                [0, 1, 0],
                                [0, -1, 0],
                                [0, 0, 1],
                                [0, 0, -1],
                            ]
                            .iter()
                            .any(|o| {
                                let q = [i as i64 + o[0], j as i64 + o[1], kk as i64 + o[2]];
                                !ids.contains(&labels.get(
                                    q[0] as usize,
                                    q[1] as usize,
                                    q[2] as usize,
                                ))
                            })
                        })
                }
                LesionPlacement::Inside => vox.iter().all(|&v| {
                    if !interior(v) {
                        return false;
                    }
                    let [i, j, kk] = grid.ijk(v);
                    (kk - 1..=kk + 1).all(|z| {
                        (j - 1..=j + 1)
                            .all(|y| (i - 1..=i + 1).all(|x| ids.contains(&labels.get(x, y, z))))
                    })
                }),
                // Out of the organ into the body's tissue, never into air or another lesion.
                LesionPlacement::Exophytic => {
                    let in_organ = vox
                        .iter()
                        .filter(|&&v| ids.contains(&labels.data[v]))
                        .count();
                    let f = in_organ as f64 / vox.len() as f64;
                    (0.25..=0.75).contains(&f)
                        && vox.iter().all(|&v| {
                            let l = labels.data[v];
                            interior(v) && l != 0 && l < LESION_ID_BASE
                        })
                }
            };
            if fits {
                placed = Some((centre, vox, spicules));
                break;
            }
        }
        let (centre, mut vox, spicules) = placed.ok_or_else(fail)?;
        // Spicules radiate into what surrounds the core: kept inside the organ (or, growing
        // out of it, in the body's tissue), never into air or another lesion.
        vox.extend(spicules.into_iter().filter(|&v| {
            let l = labels.data[v];
            match req.placement {
                LesionPlacement::Exophytic => l != 0 && l < LESION_ID_BASE,
                _ => ids.contains(&l),
            }
        }));
        let in_organ = vox
            .iter()
            .filter(|&&v| ids.contains(&labels.data[v]))
            .count();
        if req.growth == LesionGrowth::Displace {
            let radius = (3.0 * vox.len() as f64 * grid.voxel_ml() * 1000.0 / (4.0 * PI)).cbrt();
            displace(labels, centre, radius);
        }
        let parts = split_parts(&grid, &shape, req.shape, centre, &vox);
        let mut part_records = Vec::new();
        if let Some(part) = req.shape.second_part() {
            let n = parts.iter().filter(|&&p| p).count();
            if n > 0 {
                part_records.push(LesionPartRecord {
                    part,
                    label_id: next_id,
                    volume_ml: n as f64 * grid.voxel_ml(),
                });
                next_id += 1;
            }
        }
        for (&v, &is_part) in vox.iter().zip(&parts) {
            labels.data[v] = match part_records.first() {
                Some(p) if is_part => p.label_id,
                _ => label_id,
            };
        }
        out.push(LesionRecord {
            label_id,
            condition: req.condition.clone(),
            kind: req.kind.clone(),
            organ: req.organ.clone(),
            shape: req.shape,
            placement: req.placement,
            fraction_in_organ: in_organ as f64 / vox.len() as f64,
            center_mm: centre,
            diameter_mm: req.diameter_mm,
            volume_ml: vox.len() as f64 * grid.voxel_ml(),
            growth: req.growth,
            parts: part_records,
        });
    }
    // A displacing lesion moves the lesions placed before it: measure those again.
    if let Some(last) = reqs
        .iter()
        .rposition(|r| r.growth == LesionGrowth::Displace)
    {
        remeasure(labels, &mut out[..last]);
    }
    Ok(out)
}

/// Volumes and centres (centroid of the voxels) of `records` as the label map now has them,
/// in one pass over the map.
fn remeasure(labels: &Volume<u16>, records: &mut [LesionRecord]) {
    let g = &labels.grid;
    // Label id → (record, slot: 0 the lesion's own id, 1… its parts).
    let owner: HashMap<u16, (usize, usize)> = records
        .iter()
        .enumerate()
        .flat_map(|(r, rec)| rec.label_ids().enumerate().map(move |(s, id)| (id, (r, s))))
        .collect();
    let mut sum = vec![[0.0f64; 3]; records.len()];
    let mut count: Vec<Vec<usize>> = records.iter().map(|r| vec![0; 1 + r.parts.len()]).collect();
    for (v, l) in labels.data.iter().enumerate() {
        if let Some(&(r, slot)) = owner.get(l) {
            let [i, j, k] = g.ijk(v);
            let p = g.world(i, j, k);
            (0..3).for_each(|a| sum[r][a] += p[a]);
            count[r][slot] += 1;
        }
    }
    for ((rec, s), c) in records.iter_mut().zip(&sum).zip(&count) {
        let n: usize = c.iter().sum();
        if n == 0 {
            continue;
        }
        rec.center_mm = s.map(|x| x / n as f64);
        rec.volume_ml = n as f64 * g.voxel_ml();
        for (part, &m) in rec.parts.iter_mut().zip(&c[1..]) {
            part.volume_ml = m as f64 * g.voxel_ml();
        }
    }
}

/// Which of a placed lesion's voxels belong to its second part (see
/// [`LesionShape::second_part`]). A cavity or necrotic core never reaches the lesion's outer
/// voxel layer, so the wall or rim shows at any spacing; a part-solid nodule keeps at least
/// its centre voxel solid.
fn split_parts(
    grid: &Grid,
    shape: &lesion::ShapeInst,
    family: LesionShape,
    centre: [f64; 3],
    vox: &[usize],
) -> Vec<bool> {
    let Some(part) = family.second_part() else {
        return vec![false; vox.len()];
    };
    let set: std::collections::HashSet<usize> = vox.iter().copied().collect();
    let offset = |v: usize| {
        let [i, j, k] = grid.ijk(v);
        let p = grid.world(i, j, k);
        [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]]
    };
    let [nx, ny, nz] = grid.dims;
    let on_rim = |v: usize| {
        let [i, j, k] = grid.ijk(v);
        if i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz {
            return true;
        }
        [v - 1, v + 1, v - nx, v + nx, v - nx * ny, v + nx * ny]
            .iter()
            .any(|q| !set.contains(q))
    };
    match part {
        LesionPart::Fluid | LesionPart::NecroticCore => vox
            .iter()
            .map(|&v| shape.in_core(offset(v)) && !on_rim(v))
            .collect(),
        LesionPart::GroundGlass => {
            let mut glass: Vec<bool> = vox.iter().map(|&v| !shape.in_core(offset(v))).collect();
            if glass.iter().all(|&g| g) {
                let d2 = |v: usize| offset(v).iter().map(|x| x * x).sum::<f64>();
                if let Some((i, _)) = vox
                    .iter()
                    .enumerate()
                    .min_by(|a, b| d2(*a.1).total_cmp(&d2(*b.1)))
                {
                    glass[i] = false;
                }
            }
            glass
        }
    }
}

/// Mass effect: moves the tissue within three radii of `centre` radially outward as an
/// incompressible medium around a sphere of `radius` growing from nothing would move
/// (a point at distance ρ comes from (ρ³ − R³)^⅓), blended smoothly to no displacement
/// between two and three radii. The radial map stays monotonic, so nothing folds.
fn displace(labels: &mut Volume<u16>, centre: [f64; 3], radius: f64) {
    let grid = labels.grid.clone();
    let src = labels.data.clone();
    let reach = 3.0 * radius;
    let mut range = [(0usize, 0usize); 3];
    for a in 0..3 {
        let lo = ((centre[a] - reach - grid.origin_mm[a]) / grid.spacing_mm[a]).floor();
        let hi = ((centre[a] + reach - grid.origin_mm[a]) / grid.spacing_mm[a]).ceil();
        let top = grid.dims[a] as f64 - 1.0;
        range[a] = (lo.clamp(0.0, top) as usize, hi.clamp(0.0, top) as usize);
    }
    let r3 = radius.powi(3);
    for k in range[2].0..=range[2].1 {
        for j in range[1].0..=range[1].1 {
            for i in range[0].0..=range[0].1 {
                let p = grid.world(i, j, k);
                let d = [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]];
                let rho = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                if rho >= reach {
                    continue;
                }
                let incompressible = (rho.powi(3) - r3).max(0.0).cbrt();
                let t = ((rho - 2.0 * radius) / radius).clamp(0.0, 1.0);
                let w = 1.0 - t * t * (3.0 - 2.0 * t);
                let rho_src = rho - (rho - incompressible) * w;
                let f = if rho > 0.0 { rho_src / rho } else { 0.0 };
                let q = [0, 1, 2].map(|a| centre[a] + d[a] * f);
                let ijk = [0, 1, 2].map(|a| {
                    (((q[a] - grid.origin_mm[a]) / grid.spacing_mm[a]).round())
                        .clamp(0.0, grid.dims[a] as f64 - 1.0) as usize
                });
                labels.data[grid.index(i, j, k)] = src[grid.index(ijk[0], ijk[1], ijk[2])];
            }
        }
    }
}

/// Voxel indices whose centres fall inside the shape's body at `centre` (at least
/// `fallback`), and those only its spicules reach.
fn voxelise(
    grid: &Grid,
    shape: &lesion::ShapeInst,
    centre: [f64; 3],
    fallback: usize,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng_ijk = [(0usize, 0usize); 3];
    for a in 0..3 {
        let lo = ((centre[a] - shape.r_max - grid.origin_mm[a]) / grid.spacing_mm[a])
            .floor()
            .max(0.0) as usize;
        let hi = (((centre[a] + shape.r_max - grid.origin_mm[a]) / grid.spacing_mm[a])
            .ceil()
            .max(0.0) as usize)
            .min(grid.dims[a] - 1);
        rng_ijk[a] = (lo, hi);
    }
    let (mut body, mut spicules) = (Vec::new(), Vec::new());
    for k in rng_ijk[2].0..=rng_ijk[2].1 {
        for j in rng_ijk[1].0..=rng_ijk[1].1 {
            for i in rng_ijk[0].0..=rng_ijk[0].1 {
                let p = grid.world(i, j, k);
                let d = [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]];
                if shape.in_body(d) {
                    body.push(grid.index(i, j, k));
                } else if shape.contains(d) {
                    spicules.push(grid.index(i, j, k));
                }
            }
        }
    }
    if body.is_empty() {
        body.push(fallback);
    }
    (body, spicules)
}

/// Smallest typical extent (mm) of an organ (or group) in a template at median adult size:
/// the diameter of the largest ball that fits inside it, measured once on
/// [`Template::covering_grid`] and cached. For validating lesion diameters before any work;
/// None when the template has no such organ (or the name is unknown).
pub fn organ_min_extent_mm(t: Template, organ: &str) -> Option<f64> {
    let ids = organ_group(organ)?;
    let available = template_labels(t);
    if !ids.iter().any(|i| available.contains(i)) {
        return None;
    }
    type Cache = Mutex<HashMap<(Template, Vec<u16>), Option<f64>>>;
    static RESULTS: OnceLock<Cache> = OnceLock::new();
    let cache = RESULTS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().ok()?.get(&(t, ids.clone())) {
        return *v;
    }
    static MAPS: [OnceLock<Volume<u16>>; Template::ALL.len()] =
        [const { OnceLock::new() }; Template::ALL.len()];
    let idx = Template::ALL.iter().position(|x| *x == t)?;
    let map = if t.is_atlas() {
        &atlas::load(t).ok()?.labels
    } else {
        MAPS[idx]
            .get_or_init(|| phantom::render_template(t, &t.covering_grid(), &BodySize::median(), 0))
    };
    let v =
        lesion::edt_full(map, &ids).map(|d| 2.0 * d.iter().cloned().fold(0.0f32, f32::max) as f64);
    cache.lock().ok()?.insert((t, ids), v);
    v
}

#[cfg(test)]
mod tests;
