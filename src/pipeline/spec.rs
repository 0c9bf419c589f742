//! The pipeline language, version 1: serde + schemars types.
//!
//! The JSON Schema in `schemas/pipeline.schema.json` is generated from these types
//! (`synthcohort schema`), so doc comments here are what editors show as hover help.
//! Structural rules (types, ranges, enums, unknown fields) live in the schema; rules that
//! span fields (exactly one of `prevalence`/`count`, counts ≤ cohort size, lesion fits its
//! organ, …) live in [`super::validate`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A synthcohort pipeline: one cohort, its anatomy, generator, acquisition arms and outputs.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Pipeline language version. Must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Short identifier of the cohort (letters, digits, `-`, `_`, `.`); used in dataset names.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub name: String,
    /// Free-text description, copied to provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Pipeline seed. Subject k's outputs depend only on (seed, k) and the pipeline.
    #[serde(default)]
    pub seed: u64,
    pub cohort: CohortSpec,
    pub anatomy: AnatomySpec,
    #[serde(default)]
    pub generator: GeneratorSpec,
    pub acquisition: AcquisitionSpec,
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// Virtual-trial analysis of the arms (model observers, ROC statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<crate::trial::TrialSpec>,
}

// ---------------------------------------------------------------------------------------------
// Distributions

/// A random quantity: a plain number (fixed), or an object with exactly one of
/// `fixed`, `uniform`, `normal`, `lognormal`, `poisson`, `categorical`, optionally truncated
/// to [`min`, `max`] (a normal with bounds is a truncated normal).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Dist {
    Fixed(f64),
    Spec(DistSpec),
}

/// Parameters of a distribution. Exactly one family key must be given.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistSpec {
    /// Always this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<f64>,
    /// Uniform on [low, high].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<[f64; 2]>,
    /// Normal (Gaussian); truncated when `min`/`max` are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<NormalSpec>,
    /// Log-normal given by its median and the SD of its logarithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lognormal: Option<LogNormalSpec>,
    /// Poisson with this mean (for counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub poisson: Option<f64>,
    /// A finite set of values with weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical: Option<CategoricalSpec>,
    /// Lower truncation bound (samples below are redrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper truncation bound (samples above are redrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NormalSpec {
    pub mean: f64,
    #[schemars(range(min = 0.0))]
    pub sd: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogNormalSpec {
    #[schemars(range(min = 0.0))]
    pub median: f64,
    #[schemars(range(min = 0.0))]
    pub sigma: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoricalSpec {
    #[schemars(length(min = 1))]
    pub values: Vec<f64>,
    /// Relative weights, one per value (normalised); equal weights when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

// ---------------------------------------------------------------------------------------------
// Cohort

/// Who is in the cohort.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CohortSpec {
    /// Number of subjects.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub size: u32,
    #[serde(default)]
    pub demographics: Demographics,
    /// Conditions (diseases, findings); a subject can have several.
    #[serde(default)]
    pub conditions: Vec<ConditionSpec>,
}

/// Demographics. Height defaults by sex (female 162 ± 7 cm, male 176 ± 7 cm); body mass
/// comes from `bmi` (default log-normal, median 26, σ 0.15) or from `weight_kg`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// Age in years.
    #[serde(default = "default_age")]
    pub age: Dist,
    #[serde(default)]
    pub sex: SexMix,
    /// Height in cm (overrides the sex-specific default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_cm: Option<Dist>,
    /// Weight in kg. Give either this or `bmi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<Dist>,
    /// Body-mass index in kg/m². Give either this or `weight_kg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmi: Option<Dist>,
}

fn default_age() -> Dist {
    Dist::Spec(DistSpec {
        normal: Some(NormalSpec {
            mean: 55.0,
            sd: 15.0,
        }),
        min: Some(18.0),
        max: Some(90.0),
        ..Default::default()
    })
}

impl Default for Demographics {
    fn default() -> Self {
        Demographics {
            age: default_age(),
            sex: SexMix::default(),
            height_cm: None,
            weight_kg: None,
            bmi: None,
        }
    }
}

/// Proportions of each sex; must sum to 1.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SexMix {
    #[schemars(range(min = 0.0, max = 1.0))]
    pub female: f64,
    #[schemars(range(min = 0.0, max = 1.0))]
    pub male: f64,
}

impl Default for SexMix {
    fn default() -> Self {
        SexMix {
            female: 0.5,
            male: 0.5,
        }
    }
}

/// A condition, assigned either by `prevalence` (independent per subject) or by an exact
/// `count` of subjects (spread over the cohort by a seeded shuffle: enrichment of rare
/// findings).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// Identifier (letters, digits, `_`), e.g. `solid_nodule`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Probability that a subject has the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub prevalence: Option<f64>,
    /// Exact number of subjects with the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Words for the prompt (default: the name with `_` as spaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Focal lesions this condition inserts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesion: Option<LesionSpec>,
    /// A diffuse change of a whole tissue that no label expresses (only the prompt names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffuse: Option<DiffuseSpec>,
}

/// A diffuse disease: what changes, and by how much.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffuseSpec {
    pub kind: DiffuseKind,
    /// Severity, per kind: `steatosis` liver attenuation drop in HU (default uniform 25–60);
    /// `emphysema` low-attenuation fraction of the lungs (default uniform 0.10–0.30);
    /// `osteopenia` relative drop of bone attenuation (default uniform 0.20–0.40);
    /// `wm_hyperintensity` fraction of white matter affected (default uniform 0.02–0.08).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Dist>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DiffuseKind {
    /// Fatty liver: the liver's attenuation is lowered.
    Steatosis,
    /// Low-attenuation lung with bullae.
    Emphysema,
    /// Lower bone mineral density: bone attenuation is lowered.
    Osteopenia,
    /// White-matter hyperintensities (longer T2 and T1 in patches of white matter).
    WmHyperintensity,
}

impl DiffuseKind {
    /// Default severity range and the allowed range.
    pub fn severity_range(self) -> ((f64, f64), (f64, f64)) {
        match self {
            DiffuseKind::Steatosis => ((25.0, 60.0), (0.0, 200.0)),
            DiffuseKind::Emphysema => ((0.10, 0.30), (0.0, 0.9)),
            DiffuseKind::Osteopenia => ((0.20, 0.40), (0.0, 0.9)),
            DiffuseKind::WmHyperintensity => ((0.02, 0.08), (0.0, 0.5)),
        }
    }
}

/// A focal lesion model.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LesionSpec {
    #[serde(default)]
    pub kind: LesionKind,
    /// Target organ: a label name (`liver`, `white_matter`) or a group (`lung`, `kidney`, `brain`).
    pub organ: String,
    /// Lesions per affected subject (rounded; at least 1).
    #[serde(default = "one")]
    pub count: Dist,
    /// Lesion diameter in mm.
    pub diameter_mm: Dist,
    /// Shape family: `sphere` (default), `ellipsoid`, `lobulated`, `spiculated`, or one with
    /// a second part carrying its own label id: `cystic` (wall + fluid), `necrotic` (rim +
    /// necrotic core), `part_solid` (solid component + ground glass). The properties below
    /// describe the lesion's own tissue (wall, rim, solid component); the second part's
    /// follow from them (see the README's lesion section).
    #[serde(default)]
    pub shape: crate::anatomy::LesionShape,
    /// Where the lesion sits against its organ: `inside` (default, wholly inside), `surface`
    /// (inside and touching the boundary: pleural-based nodules, subcapsular lesions) or
    /// `exophytic` (growing out of the organ into the body's neighbouring tissue, a quarter to
    /// three quarters outside; it may be larger than the organ is thick).
    #[serde(default)]
    pub placement: crate::anatomy::LesionPlacement,
    /// `replace` (default: the lesion takes the place of the tissue it occupies) or
    /// `displace` (mass effect: surrounding tissue is pushed outward, the organ keeps its
    /// volume and neighbours shift).
    #[serde(default)]
    pub growth: crate::anatomy::LesionGrowth,
    /// CT attenuation of the lesion in HU, unenhanced (default by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hu: Option<Dist>,
    /// CT material the lesion is made of, by its name in the attenuation table (ICRU 46 /
    /// ICRP 110: `water` for soft-tissue lesions (default), `adipose` for fat-containing ones,
    /// `cortical_bone` for calcified ones, …); its density follows from `hu`, so the lesion's
    /// contrast changes with kVp as that material's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// Uptake of iodinated contrast (CT arms with a `contrast` phase): `none`,
    /// `hypervascular` (arterial hyperenhancement, later washout) or `hypovascular`.
    /// Default by kind: cysts none, tumours hypervascular, metastases and nodules hypovascular.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhancement: Option<crate::tissue::contrast::LesionEnhancement>,
    /// MRI properties of the lesion (default by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxation: Option<RelaxationSpec>,
    /// Apparent diffusion coefficient for diffusion-weighted MRI, µm²/ms (= 10⁻³ mm²/s; 0–4).
    /// Default by kind: cyst 2.8, tumour 0.9, metastasis 1.0, nodule 1.1 (cellular lesions
    /// restrict diffusion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adc_um2_ms: Option<Dist>,
}

fn one() -> Dist {
    Dist::Fixed(1.0)
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LesionKind {
    #[default]
    Nodule,
    Tumour,
    Cyst,
    Metastasis,
}

impl LesionKind {
    /// The kind's name as the pipeline writes it.
    pub fn name(self) -> &'static str {
        match self {
            LesionKind::Nodule => "nodule",
            LesionKind::Tumour => "tumour",
            LesionKind::Cyst => "cyst",
            LesionKind::Metastasis => "metastasis",
        }
    }
}

/// Lesion relaxation properties (at the arm's field strength).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelaxationSpec {
    /// Proton density relative to CSF.
    pub pd: Dist,
    pub t1_ms: Dist,
    pub t2_ms: Dist,
}

// ---------------------------------------------------------------------------------------------
// Anatomy

/// The subject's anatomy: a procedural template or an imported label map, on one grid.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnatomySpec {
    /// Procedural phantom (also names the body region when `source` is given).
    pub template: crate::anatomy::Template,
    /// Import a real label map instead of the template, or a list of them: with
    /// `body_scaling`, each subject is drawn from one of the list (seeded, uniform), so a
    /// cohort spans several real anatomies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Sources>,
    /// Grid size in voxels (x, y, z).
    pub size: [u32; 3],
    /// Voxel spacing in mm (x, y, z).
    pub spacing_mm: [f64; 3],
    /// Scale the body and organs with each subject's height and BMI.
    #[serde(default = "yes")]
    pub body_scaling: bool,
    /// SD of the smooth random deformation, in mm (0 = none).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 50.0))]
    pub deformation_mm: f64,
}

fn yes() -> bool {
    true
}

/// A real label map to import (NIfTI), with its class names (`id<TAB>name` per line).
/// Relative paths are relative to the pipeline file. The map is centred on the pipeline
/// grid and resampled to it (nearest neighbour); names map onto the ontology.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A label map: NIfTI (`.nii`, `.nii.gz`) or a DICOM Segmentation (`.dcm`).
    #[schemars(length(min = 1))]
    pub file: String,
    /// Label id → name table (`<id> <name>` per line). Needed for NIfTI; for a DICOM SEG
    /// optional (segments are named by their codes and labels), and when given it maps
    /// segment numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub names: Option<String>,
    /// DICOM SEG only: the folder of the image series the SEG references. Its slices then
    /// define the grid (the SEG's frames must lie on them and name that series); without it
    /// the grid spans the SEG's own frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub series: Option<String>,
}

impl SourceSpec {
    /// A DICOM file by its name (`.dcm`, any case); everything else is read as NIfTI.
    pub fn is_dicom(&self) -> bool {
        self.file.to_ascii_lowercase().ends_with(".dcm")
    }
}

/// One imported label map or several.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Sources {
    One(SourceSpec),
    Many(Vec<SourceSpec>),
}

impl Sources {
    /// The maps in pipeline order.
    pub fn list(&self) -> Vec<&SourceSpec> {
        match self {
            Sources::One(s) => vec![s],
            Sources::Many(v) => v.iter().collect(),
        }
    }

    /// The field path of map `i` in error messages.
    pub fn path(&self, i: usize) -> String {
        match self {
            Sources::One(_) => "anatomy.source".into(),
            Sources::Many(_) => format!("anatomy.source[{i}]"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generator

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// Tissue tables + correlated texture + partial-volume smoothing.
    #[default]
    Procedural,
    /// Latent diffusion model conditioned on text and anatomy labels.
    LatentDiffusion,
}

/// How the tissue-property object is generated from the labels.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    #[serde(default)]
    pub kind: GeneratorKind,
    /// Model checkpoint (latent diffusion only); default: the shipped model for the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt template; placeholders `{age}`, `{sex}`, `{conditions}`, `{template}`.
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Sampling steps (latent diffusion).
    #[serde(default = "default_steps")]
    #[schemars(range(min = 1, max = 1000))]
    pub steps: u32,
    /// Classifier-free guidance scales (latent diffusion); each unset one is the model's
    /// recommendation (its card), else text 3 / labels 1.
    #[serde(default)]
    pub guidance: synthcohort_ldm::GuidanceChoice,
    /// ODE solver of the sampler (latent diffusion).
    #[serde(default)]
    pub solver: synthcohort_ldm::Solver,
    /// Lesion intensities of a model (latent diffusion): `target` shifts each lesion's mean to
    /// its condition's `hu` (or MR relaxation values), `model` keeps what the model drew.
    #[serde(default)]
    pub lesion_intensity: LesionIntensity,
    /// Labels a model has no class for, nor a class of their tissue (latent diffusion):
    /// `refuse` them at `validate`, or draw them with the `procedural` renderer.
    #[serde(default)]
    pub unseen_labels: UnseenLabels,
    /// Correlation length of within-tissue texture in mm (procedural).
    #[serde(default = "default_texture_mm")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub texture_mm: f64,
    /// Multiplier on the tissue tables' texture SD (0 = piecewise constant, procedural).
    #[serde(default = "one_f")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub texture_strength: f64,
    /// Gaussian partial-volume blur at tissue boundaries, SD in mm (procedural).
    #[serde(default = "default_pv_mm")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub partial_volume_mm: f64,
    /// Gas above a gas–fluid level in the stomach and bowel lumen (procedural; on by default).
    #[serde(default = "yes")]
    pub bowel_gas: bool,
}

/// What a model does with labels it never saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnseenLabels {
    /// A validation error naming them (they would otherwise come out as background).
    #[default]
    Refuse,
    /// Their voxels come from the procedural renderer (same subject, same settings).
    Procedural,
}

/// Who sets a lesion's mean intensity under a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LesionIntensity {
    /// The condition's `hu` (CT) or relaxation values (MR), as the procedural renderer does.
    #[default]
    Target,
    /// The model's own draw for the lesion class.
    Model,
}

fn default_prompt() -> String {
    "{template}, {sex}, {age} years, {conditions}".to_string()
}
fn default_steps() -> u32 {
    synthcohort_ldm::DEFAULT_STEPS as u32
}
fn default_texture_mm() -> f64 {
    4.0
}
fn one_f() -> f64 {
    1.0
}
fn default_pv_mm() -> f64 {
    0.6
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            kind: GeneratorKind::Procedural,
            model: None,
            prompt: default_prompt(),
            steps: default_steps(),
            guidance: Default::default(),
            solver: Default::default(),
            lesion_intensity: Default::default(),
            unseen_labels: Default::default(),
            texture_mm: default_texture_mm(),
            texture_strength: 1.0,
            partial_volume_mm: default_pv_mm(),
            bowel_gas: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Acquisition

/// Imaging protocols ("arms"). Every subject is imaged under every arm.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquisitionSpec {
    /// Fields shared by all arms (an arm's own fields win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<super::arm::ArmDefaults>,
    /// The arms; at least one, with distinct names.
    #[schemars(length(min = 1, max = 64))]
    pub arms: Vec<super::arm::ArmFields>,
}

// ---------------------------------------------------------------------------------------------
// Outputs

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// images/, labels/, manifest.parquet.
    #[default]
    Plain,
    /// Also the nnU-Net v2 raw layout: imagesTr/, labelsTr/, dataset.json.
    Nnunet,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OutputDtype {
    #[default]
    Float32,
    /// 16-bit integers with scl_slope/scl_inter.
    Int16,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// `.nii.gz`
    #[default]
    Gzip,
    /// `.nii`
    None,
}

/// Where and how the cohort is written.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputsSpec {
    /// Run folder (relative paths are relative to the working directory); default `out/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub dir: Option<String>,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub dtype: OutputDtype,
    #[serde(default)]
    pub compression: Compression,
    /// Write preview.png (mid-slice mosaic with label overlay).
    #[serde(default = "yes")]
    pub preview: bool,
    /// Number of subjects in the preview mosaic.
    #[serde(default = "default_preview_subjects")]
    #[schemars(range(min = 1, max = 64))]
    pub preview_subjects: u32,
    /// Also write every CT and MR arm as a DICOM series (`dicom/<subject>/<arm>/`, one file
    /// per slice) with a DICOM SEG of its labels (`dicom/<subject>/labels_<arm>.dcm`).
    /// `modality: none` arms stay NIfTI only.
    #[serde(default)]
    pub dicom: bool,
    /// UID root of the DICOM objects (Study/Series/SOP Instance UIDs are derived from the
    /// pipeline's hash, subject, arm and slice under it); default `2.25` (UUID-derived UIDs,
    /// no registration needed). Give your organisation's root to keep UIDs under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)*$"), length(min = 1, max = 44))]
    pub dicom_uid_root: Option<String>,
}

fn default_preview_subjects() -> u32 {
    8
}

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec {
            dir: None,
            layout: Layout::Plain,
            dtype: OutputDtype::Float32,
            compression: Compression::Gzip,
            preview: true,
            preview_subjects: default_preview_subjects(),
            dicom: false,
            dicom_uid_root: None,
        }
    }
}
