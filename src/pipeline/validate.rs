//! Rules that span fields, checked on the typed pipeline after the schema pass, plus the
//! resolution of arms (defaults merged in) into their typed form.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::Problem;
use super::spec::*;
use crate::acquire::ct::{Bowtie, CtProtocol, Kernel, ScanMode};
use crate::acquire::mri::{
    Artifacts, Combine, Motion, MriProtocol, SamplingPattern, Sequence, Undersampling,
};
use crate::anatomy::{self, Template};

/// An arm with its defaults merged in and its modality-specific settings resolved.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Arm {
    pub name: String,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "modality", rename_all = "snake_case")]
pub enum Protocol {
    /// The image is a property map of the tissue object.
    None { property: PropertyMap, field_t: f64 },
    /// A CT scan (spectrum, projection, noise, reconstruction in HU).
    Ct(Box<CtProtocol>),
    /// An MRI acquisition (signal equations, k-space, coils, noise, artifacts).
    Mri(Box<MriProtocol>),
}

impl Protocol {
    pub fn modality(&self) -> &'static str {
        match self {
            Protocol::None { .. } => "none",
            Protocol::Ct(_) => "ct",
            Protocol::Mri(_) => "mri",
        }
    }
}

/// Resolves a CT arm: the scanner preset (default `generic64`), then the arm's fields; the
/// recon grid defaults to the object grid so labels need no resampling.
fn ct_protocol(c: &mut Checker, path: &str, arm: &ArmSpec, a: &AnatomySpec) -> Option<CtProtocol> {
    let scanner = arm.scanner.clone().unwrap_or_else(|| "generic64".into());
    let Some(mut p) = CtProtocol::preset(&scanner) else {
        c.err(
            format!("{path}.scanner"),
            format!(
                "unknown scanner `{scanner}`; presets: {}",
                CtProtocol::preset_names().join(", ")
            ),
        );
        return None;
    };
    let ext = [
        a.size[0] as f64 * a.spacing_mm[0],
        a.size[1] as f64 * a.spacing_mm[1],
    ];
    p.fov_mm = ext[0].max(ext[1]);
    p.matrix = a.size[0].max(a.size[1]) as usize;
    p.slice_mm = a.spacing_mm[2];
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = arm.$f { p.$f = v.into(); } )* };
    }
    set!(
        kvp,
        mas,
        filtration_mm_al,
        filtration_mm_cu,
        pixel_mm,
        sid_mm,
        sdd_mm,
        slice_mm,
        beam_hardening_correction,
        noise,
        electronic_noise
    );
    if let Some(v) = arm.views {
        p.views = v as usize;
    }
    if let Some(v) = arm.detector_cols {
        p.detector_cols = v as usize;
    }
    if let Some(v) = arm.detector_rows {
        p.detector_rows = v as usize;
    }
    if let Some(b) = arm.bowtie {
        p.bowtie = match b {
            BowtieSpec::None => Bowtie::None,
            BowtieSpec::Small => Bowtie::Small,
            BowtieSpec::Medium => Bowtie::Medium,
            BowtieSpec::Large => Bowtie::Large,
        };
    }
    if let Some(m) = arm.scan_mode {
        p.scan_mode = match m {
            ScanModeSpec::Axial => ScanMode::Axial,
            ScanModeSpec::Cone => ScanMode::Cone,
        };
    }
    if let Some(k) = arm.kernel {
        p.kernel = match k {
            CtKernel::Ramp => Kernel::Ramp,
            CtKernel::SheppLogan => Kernel::SheppLogan,
            CtKernel::Smooth => Kernel::Smooth,
            CtKernel::Standard => Kernel::Standard,
            CtKernel::Sharp => Kernel::Sharp,
        };
    }
    match arm.fov_mm {
        Some(InPlane::Same(v)) => p.fov_mm = v,
        Some(InPlane::Each(_)) => c.err(
            format!("{path}.fov_mm"),
            "a CT reconstruction field of view is one number (mm)",
        ),
        None => {}
    }
    match arm.matrix {
        Some(InPlane::Same(v)) => p.matrix = v as usize,
        Some(InPlane::Each(_)) => c.err(
            format!("{path}.matrix"),
            "a CT reconstruction matrix is one number",
        ),
        None => {}
    }
    for (field, msg) in p.validate() {
        c.err(format!("{path}.{field}"), msg);
    }
    Some(p)
}

/// Resolves an MRI arm: the sequence's clinical defaults at the field strength, then the
/// arm's fields; the acquisition grid defaults to the object grid.
fn mri_protocol(
    c: &mut Checker,
    path: &str,
    arm: &ArmSpec,
    a: &AnatomySpec,
) -> Option<MriProtocol> {
    let Some(seq) = arm.sequence else {
        c.err(path, "an MRI arm needs `sequence` (spin_echo, spoiled_gre, inversion_recovery, flair, stir, mprage or bssfp)");
        return None;
    };
    let seq = match seq {
        MriSequence::SpinEcho => Sequence::SpinEcho,
        MriSequence::SpoiledGre => Sequence::SpoiledGre,
        MriSequence::InversionRecovery => Sequence::InversionRecovery,
        MriSequence::Flair => Sequence::Flair,
        MriSequence::Stir => Sequence::Stir,
        MriSequence::Mprage => Sequence::Mprage,
        MriSequence::Bssfp => Sequence::Bssfp,
    };
    let mut p = MriProtocol::default_for(seq, arm.field_t.unwrap_or(3.0));
    p.fov_mm = [
        a.size[0] as f64 * a.spacing_mm[0],
        a.size[1] as f64 * a.spacing_mm[1],
    ];
    p.matrix = [a.size[0] as usize, a.size[1] as usize];
    p.slice_mm = a.spacing_mm[2];
    if let Some(v) = arm.tr_ms {
        p.tr_ms = v;
    }
    if let Some(v) = arm.te_ms {
        p.te_ms = v;
    }
    if arm.ti_ms.is_some() {
        p.ti_ms = arm.ti_ms;
    }
    if let Some(v) = arm.flip_deg {
        p.flip_deg = v;
    }
    if let Some(v) = arm.etl {
        p.etl = v as usize;
    }
    if let Some(v) = arm.fov_mm {
        p.fov_mm = v.pair();
    }
    if let Some(v) = arm.matrix {
        p.matrix = v.pair().map(|n| n as usize);
    }
    if let Some(v) = arm.slice_mm {
        p.slice_mm = v;
    }
    if let Some(r) = arm.readout {
        p.readout_axis = match r {
            ReadoutAxis::X => 0,
            ReadoutAxis::Y => 1,
        };
    }
    if let Some(v) = arm.nex {
        p.nex = v;
    }
    if let Some(v) = arm.coils {
        p.coils = v as usize;
    }
    if let Some(v) = arm.combine {
        p.combine = match v {
            CombineSpec::Rss => Combine::Rss,
            CombineSpec::Sense => Combine::Sense,
        };
    }
    if let Some(v) = arm.partial_fourier {
        p.partial_fourier = v;
    }
    if let Some(u) = &arm.undersampling {
        p.undersampling = Some(Undersampling {
            factor: u.factor,
            pattern: match u.pattern {
                SamplingPatternSpec::Regular => SamplingPattern::Regular,
                SamplingPatternSpec::VariableDensity => SamplingPattern::VariableDensity,
            },
            center_lines: u.center_lines as usize,
        });
    }
    if let Some(v) = arm.bandwidth_hz_per_px {
        p.bandwidth_hz_per_px = v;
    }
    if let Some(v) = arm.noise {
        p.noise = v;
    }
    if let Some(v) = arm.snr {
        p.snr_reference = v;
    }
    if let Some(v) = arm.export_kspace {
        p.export_kspace = v;
    }
    if let Some(a) = &arm.artifacts {
        p.artifacts = Artifacts {
            bias_field: a.bias_field,
            motion: a.motion.as_ref().map(|m| Motion {
                translation_mm: m.translation_mm,
                rotation_deg: m.rotation_deg,
                fraction_of_lines: m.fraction_of_lines,
            }),
            ghosting: a.ghosting,
            spike: a.spike,
            chemical_shift: a.chemical_shift,
            b0_offresonance_ppm: a.b0_offresonance_ppm,
        };
    }
    for (field, msg) in p.validate() {
        c.err(format!("{path}.{field}"), msg);
    }
    Some(p)
}

pub fn template_of(t: TemplateSpec) -> Template {
    match t {
        TemplateSpec::Thorax => Template::Thorax,
        TemplateSpec::Abdomen => Template::Abdomen,
        TemplateSpec::Head => Template::Head,
        TemplateSpec::WaterCylinder => Template::WaterCylinder,
        TemplateSpec::CtQa => Template::CtQa,
    }
}

/// Largest grid one subject may have: beyond this a subject's working set (about 40 bytes a
/// voxel across labels, tissue maps and images) exceeds several GiB.
const MAX_VOXELS: u64 = 512 * 512 * 512;

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            pos: None,
            message: message.into(),
        });
    }

    /// Checks a distribution's form, and that every value it can take (after the implicit
    /// truncation to `[lo, hi]`) is meaningful for the quantity it describes.
    fn dist(&mut self, path: &str, d: &Dist, lo: f64, hi: f64, unit: &str) {
        let s = match d {
            Dist::Fixed(v) => {
                if *v < lo || *v > hi {
                    self.err(
                        path,
                        format!("{v} {unit} is outside the allowed range [{lo}, {hi}]"),
                    );
                }
                return;
            }
            Dist::Spec(s) => s,
        };
        let families = [
            s.fixed.is_some(),
            s.uniform.is_some(),
            s.normal.is_some(),
            s.lognormal.is_some(),
            s.poisson.is_some(),
            s.categorical.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if families != 1 {
            self.err(
                path,
                format!(
                    "a distribution needs exactly one of `fixed`, `uniform`, `normal`, `lognormal`, `poisson`, `categorical` (found {families})"
                ),
            );
            return;
        }
        let check_value = |me: &mut Self, sub: &str, v: f64| {
            if v < lo || v > hi {
                me.err(
                    format!("{path}.{sub}"),
                    format!("{v} {unit} is outside the allowed range [{lo}, {hi}]"),
                );
            }
        };
        if let Some(v) = s.fixed {
            check_value(self, "fixed", v);
        }
        if let Some([a, b]) = s.uniform {
            check_value(self, "uniform", a);
            check_value(self, "uniform", b);
            if a > b {
                self.err(
                    format!("{path}.uniform"),
                    format!("low {a} is larger than high {b}"),
                );
            }
        }
        if let Some(n) = &s.normal {
            check_value(self, "normal.mean", n.mean);
        }
        if let Some(l) = &s.lognormal {
            if l.median <= 0.0 {
                self.err(
                    format!("{path}.lognormal.median"),
                    "the median of a log-normal must be positive",
                );
            } else {
                check_value(self, "lognormal.median", l.median);
            }
        }
        if let Some(m) = s.poisson {
            check_value(self, "poisson", m);
        }
        if let Some(c) = &s.categorical {
            for (i, v) in c.values.iter().enumerate() {
                check_value(self, &format!("categorical.values[{i}]"), *v);
            }
            if let Some(w) = &c.weights {
                if w.len() != c.values.len() {
                    self.err(
                        format!("{path}.categorical.weights"),
                        format!("{} weights for {} values", w.len(), c.values.len()),
                    );
                } else if w.iter().any(|x| *x < 0.0) || w.iter().sum::<f64>() <= 0.0 {
                    self.err(
                        format!("{path}.categorical.weights"),
                        "weights must be non-negative with a positive sum",
                    );
                }
            }
        }
        if let Some(v) = s.min {
            check_value(self, "min", v);
        }
        if let Some(v) = s.max {
            check_value(self, "max", v);
        }
        if let (Some(a), Some(b)) = (s.min, s.max) {
            if a > b {
                self.err(
                    format!("{path}.min"),
                    format!("min {a} is larger than max {b}"),
                );
            }
        }
        // A normal truncated far into its tail cannot be sampled by redrawing.
        if let Some(n) = &s.normal {
            let (a, b) = (
                s.min.unwrap_or(f64::NEG_INFINITY),
                s.max.unwrap_or(f64::INFINITY),
            );
            let sd = n.sd.max(1e-12);
            if (a - n.mean) / sd > 6.0 || (n.mean - b) / sd > 6.0 {
                self.err(
                    path,
                    format!(
                        "the bounds [{a}, {b}] leave almost no probability for mean {} and sd {}",
                        n.mean, n.sd
                    ),
                );
            }
        }
    }
}

/// Upper bound of the values a distribution can take (its max, or the largest explicit value).
pub fn dist_upper(d: &Dist) -> f64 {
    match d {
        Dist::Fixed(v) => *v,
        Dist::Spec(s) => {
            if let Some(m) = s.max {
                return m;
            }
            if let Some(v) = s.fixed {
                return v;
            }
            if let Some([_, b]) = s.uniform {
                return b;
            }
            if let Some(c) = &s.categorical {
                return c.values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            }
            if let Some(n) = &s.normal {
                return n.mean + 3.0 * n.sd;
            }
            if let Some(l) = &s.lognormal {
                return l.median * (3.0 * l.sigma).exp();
            }
            f64::INFINITY
        }
    }
}

/// Arm fields each modality accepts (besides `name` and `modality`).
const CT_FIELDS: &[&str] = &[
    "fov_mm",
    "matrix",
    "slice_mm",
    "noise",
    "scanner",
    "kvp",
    "mas",
    "filtration_mm_al",
    "filtration_mm_cu",
    "bowtie",
    "views",
    "detector_cols",
    "detector_rows",
    "pixel_mm",
    "sid_mm",
    "sdd_mm",
    "scan_mode",
    "kernel",
    "beam_hardening_correction",
    "electronic_noise",
];
const MRI_FIELDS: &[&str] = &[
    "fov_mm",
    "matrix",
    "slice_mm",
    "noise",
    "sequence",
    "field_t",
    "tr_ms",
    "te_ms",
    "ti_ms",
    "flip_deg",
    "etl",
    "readout",
    "nex",
    "coils",
    "combine",
    "partial_fourier",
    "undersampling",
    "bandwidth_hz_per_px",
    "snr",
    "artifacts",
    "export_kspace",
];

/// Placeholders a prompt template may use.
pub const PROMPT_FIELDS: [&str; 5] = ["age", "sex", "conditions", "template", "bmi"];

/// All cross-field rules. `base_dir` resolves relative paths (the pipeline file's folder).
pub fn check(p: &Pipeline, base_dir: &Path) -> (Vec<Arm>, Vec<Problem>) {
    let mut c = Checker {
        problems: Vec::new(),
    };

    // --- cohort
    let d = &p.cohort.demographics;
    c.dist("cohort.demographics.age", &d.age, 0.0, 120.0, "years");
    if let Some(h) = &d.height_cm {
        c.dist("cohort.demographics.height_cm", h, 40.0, 250.0, "cm");
    }
    if let Some(w) = &d.weight_kg {
        c.dist("cohort.demographics.weight_kg", w, 2.0, 400.0, "kg");
    }
    if let Some(b) = &d.bmi {
        c.dist("cohort.demographics.bmi", b, 10.0, 80.0, "kg/m²");
    }
    if d.weight_kg.is_some() && d.bmi.is_some() {
        c.err("cohort.demographics.bmi", "give either `weight_kg` or `bmi`, not both (one follows from the other and the height)");
    }
    let sum = d.sex.female + d.sex.male;
    if (sum - 1.0).abs() > 1e-6 {
        c.err(
            "cohort.demographics.sex",
            format!("female + male must be 1 (found {sum})"),
        );
    }

    let template = template_of(p.anatomy.template);
    let mut names = BTreeSet::new();
    for (i, cond) in p.cohort.conditions.iter().enumerate() {
        let path = format!("cohort.conditions[{i}]");
        if !names.insert(cond.name.clone()) {
            c.err(
                format!("{path}.name"),
                format!("condition `{}` is listed twice", cond.name),
            );
        }
        match (cond.prevalence, cond.count) {
            (Some(_), Some(_)) => c.err(&path, "give either `prevalence` or `count`, not both"),
            (None, None) => c.err(&path, "needs `prevalence` (probability per subject) or `count` (exact number of subjects)"),
            (None, Some(n)) if n > p.cohort.size => c.err(
                format!("{path}.count"),
                format!("{n} subjects with `{}` but the cohort has only {} (cohort.size)", cond.name, p.cohort.size),
            ),
            _ => {}
        }
        if let Some(d) = &cond.diffuse {
            let dp = format!("{path}.diffuse");
            let (_, (lo, hi)) = d.kind.severity_range();
            if let Some(sev) = &d.severity {
                c.dist(&format!("{dp}.severity"), sev, lo, hi, "");
            }
            let host: fn(&str) -> bool = match d.kind {
                DiffuseKind::Steatosis => |t| t == "liver",
                DiffuseKind::Emphysema => |t| t == "lung",
                DiffuseKind::Osteopenia => |t| t.contains("bone"),
                DiffuseKind::WmHyperintensity => |t| t == "white_matter",
            };
            if p.anatomy.source.is_none() {
                let present = anatomy::ontology::template_labels(template);
                let has = present.iter().any(|&id| {
                    host(
                        crate::tissue::tissue_for_label(
                            anatomy::ontology::label_by_id(id).map_or("", |l| l.name),
                        )
                        .name,
                    )
                });
                if !has {
                    c.err(
                        format!("{dp}.kind"),
                        format!(
                            "the `{}` template has no tissue that `{:?}` changes",
                            template_name(p.anatomy.template),
                            d.kind
                        ),
                    );
                }
            }
        }
        if let Some(les) = &cond.lesion {
            let lp = format!("{path}.lesion");
            c.dist(&format!("{lp}.count"), &les.count, 0.0, 50.0, "lesions");
            c.dist(
                &format!("{lp}.diameter_mm"),
                &les.diameter_mm,
                0.1,
                300.0,
                "mm",
            );
            if let Some(hu) = &les.hu {
                c.dist(&format!("{lp}.hu"), hu, -1100.0, 3000.0, "HU");
            }
            if let Some(r) = &les.relaxation {
                c.dist(&format!("{lp}.relaxation.pd"), &r.pd, 0.0, 1.5, "");
                c.dist(
                    &format!("{lp}.relaxation.t1_ms"),
                    &r.t1_ms,
                    1.0,
                    10000.0,
                    "ms",
                );
                c.dist(
                    &format!("{lp}.relaxation.t2_ms"),
                    &r.t2_ms,
                    0.1,
                    5000.0,
                    "ms",
                );
            }
            match anatomy::organ_group(&les.organ) {
                None => c.err(format!("{lp}.organ"), format!("unknown organ `{}`; use a label name from `synthcohort labels {}` or a group (lung, kidney, brain)", les.organ, template_name(p.anatomy.template))),
                Some(ids) => {
                    if p.anatomy.source.is_none() {
                        let present = anatomy::ontology::template_labels(template);
                        if !ids.iter().any(|id| present.contains(id)) {
                            c.err(format!("{lp}.organ"), format!("the `{}` template has no `{}`", template_name(p.anatomy.template), les.organ));
                        } else if let Some(extent) = anatomy::organ_min_extent_mm(template, &les.organ) {
                            let dmax = dist_upper(&les.diameter_mm);
                            if dmax > 0.8 * extent {
                                c.err(
                                    format!("{lp}.diameter_mm"),
                                    format!("lesions up to {dmax:.1} mm cannot fit inside `{}` (about {extent:.0} mm across at its narrowest); keep diameters below {:.0} mm", les.organ, 0.8 * extent),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    // --- anatomy
    let a = &p.anatomy;
    for (ax, n) in a.size.iter().enumerate() {
        if !(4..=1024).contains(n) {
            c.err(
                format!("anatomy.size[{ax}]"),
                format!("{n} voxels; allowed 4 to 1024"),
            );
        }
    }
    for (ax, s) in a.spacing_mm.iter().enumerate() {
        if !(*s >= 0.05 && *s <= 20.0) {
            c.err(
                format!("anatomy.spacing_mm[{ax}]"),
                format!("{s} mm; allowed 0.05 to 20 mm"),
            );
        }
    }
    let voxels: u64 = a.size.iter().map(|&n| n as u64).product();
    if voxels > MAX_VOXELS {
        c.err(
            "anatomy.size",
            format!(
                "{voxels} voxels per subject would need about {:.1} GiB of memory; the limit is {MAX_VOXELS} (512³)",
                voxels as f64 * 40.0 / (1u64 << 30) as f64
            ),
        );
    }
    if let Some(src) = &a.source {
        for (field, f) in [("file", &src.file), ("names", &src.names)] {
            let path = base_dir.join(f);
            if !path.is_file() {
                c.err(
                    format!("anatomy.source.{field}"),
                    format!("file not found: {}", path.display()),
                );
            }
        }
    }

    // --- generator
    check_prompt(&mut c, &p.generator.prompt);

    // --- acquisition
    let mut arms = Vec::new();
    let mut arm_names = BTreeSet::new();
    if let Some(def) = &p.acquisition.defaults {
        if def.name.is_some() {
            c.err(
                "acquisition.defaults.name",
                "defaults apply to every arm, so they cannot carry a name",
            );
        }
    }
    for (i, raw) in p.acquisition.arms.iter().enumerate() {
        let path = format!("acquisition.arms[{i}]");
        let arm = merge(raw, p.acquisition.defaults.as_ref());
        let Some(name) = arm.name.clone() else {
            c.err(&path, "missing required field `name`");
            continue;
        };
        if !arm_names.insert(name.clone()) {
            c.err(
                format!("{path}.name"),
                format!("arm name `{name}` is used twice"),
            );
        }
        let Some(modality) = arm.modality else {
            c.err(
                &path,
                "missing `modality` (none, ct or mri), here or in `acquisition.defaults`",
            );
            continue;
        };
        // Fields that belong to another modality are errors, not silently ignored settings.
        let set: Vec<String> = match serde_json::to_value(&arm) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let allowed: &[&str] = match modality {
            Modality::None => &["property", "field_t"],
            Modality::Ct => CT_FIELDS,
            Modality::Mri => MRI_FIELDS,
        };
        for f in set.iter().filter(|f| {
            !["name", "modality"].contains(&f.as_str()) && !allowed.contains(&f.as_str())
        }) {
            let owner = if CT_FIELDS.contains(&f.as_str()) && MRI_FIELDS.contains(&f.as_str()) {
                "CT and MRI"
            } else if CT_FIELDS.contains(&f.as_str()) {
                "CT"
            } else if MRI_FIELDS.contains(&f.as_str()) {
                "MRI"
            } else {
                "`modality: none`"
            };
            c.err(
                format!("{path}.{f}"),
                format!(
                    "`{f}` is a {owner} setting but arm `{name}` has modality {}",
                    modality_name(modality)
                ),
            );
        }
        match modality {
            Modality::None => {
                arms.push(Arm {
                    name,
                    protocol: Protocol::None {
                        property: arm.property.unwrap_or_default(),
                        field_t: arm.field_t.unwrap_or(3.0),
                    },
                });
            }
            Modality::Ct => {
                if let Some(ct) = ct_protocol(&mut c, &path, &arm, &p.anatomy) {
                    arms.push(Arm {
                        name,
                        protocol: Protocol::Ct(Box::new(ct)),
                    });
                }
            }
            Modality::Mri => {
                if let Some(mri) = mri_protocol(&mut c, &path, &arm, &p.anatomy) {
                    arms.push(Arm {
                        name,
                        protocol: Protocol::Mri(Box::new(mri)),
                    });
                }
            }
        }
    }

    // --- outputs: a pipeline file may only name a folder below the working directory;
    // anywhere else needs an explicit `--out` from the person running it.
    if let Some(dir) = &p.outputs.dir {
        let path = Path::new(dir);
        if path.is_absolute() || dir.starts_with('~') {
            c.err("outputs.dir", format!("`{dir}` is absolute; a pipeline names a folder relative to where it runs (use --out for anywhere else)"));
        } else if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            c.err("outputs.dir", format!("`{dir}` climbs out with `..`; a pipeline names a folder below where it runs (use --out for anywhere else)"));
        }
    }

    // --- latent diffusion model: present, readable, and able to make what the arms image
    if p.generator.kind == GeneratorKind::LatentDiffusion {
        check_model(&mut c, p, &arms, base_dir);
    }

    // --- trial
    if let Some(t) = &p.trial {
        if let Some(list) = &t.arms {
            for (i, n) in list.iter().enumerate() {
                if !arm_names.contains(n) {
                    c.err(format!("trial.arms[{i}]"), format!("no arm named `{n}`"));
                }
            }
        }
        if !p.cohort.conditions.iter().any(|c| c.lesion.is_some()) {
            c.err(
                "trial",
                "a detection trial needs lesions: add a condition with a `lesion` to the cohort",
            );
        }
    }

    (arms, c.problems)
}

fn check_model(c: &mut Checker, p: &Pipeline, arms: &[Arm], base_dir: &Path) {
    use crate::generate::ldm;
    let at = if p.generator.model.is_some() {
        "generator.model"
    } else {
        "generator.kind"
    };
    let dir = match ldm::resolve_model(
        p.generator.model.as_deref(),
        template_name(p.anatomy.template),
        base_dir,
    ) {
        Ok(d) => d,
        Err(e) => return c.err(at, e),
    };
    let cfg = match ldm::read_config(&dir) {
        Ok(cfg) => cfg,
        Err(e) => return c.err(at, e),
    };
    let is_ct = cfg.modality == synthcohort_ldm::Modality::Ct;
    for (i, arm) in arms.iter().enumerate() {
        let (wants_ct, field) = match &arm.protocol {
            Protocol::None {
                property: PropertyMap::Hu,
                ..
            }
            | Protocol::Ct(_) => (true, None),
            Protocol::None { field_t, .. } => (false, Some(*field_t)),
            Protocol::Mri(m) => (false, Some(m.field_t)),
        };
        let path = format!("acquisition.arms[{i}]");
        if wants_ct != is_ct {
            c.err(
                &path,
                format!(
                    "arm `{}` needs {} maps but the model `{}` makes {} objects; use a model that makes {} maps or `generator.kind: procedural`",
                    arm.name,
                    if wants_ct { "CT" } else { "MRI" },
                    cfg.name,
                    if is_ct { "CT (HU)" } else { "MRI (PD/T1/T2/T2*)" },
                    if wants_ct { "CT" } else { "MRI" }
                ),
            );
        } else if let Some(f) = field.filter(|f| (f - ldm::MRI_MODEL_FIELD_T).abs() > 1e-6) {
            c.err(
                format!("{path}.field_t"),
                format!(
                    "the model `{}` makes {} T relaxation maps, not {f} T",
                    cfg.name,
                    ldm::MRI_MODEL_FIELD_T
                ),
            );
        }
    }
}

fn check_prompt(c: &mut Checker, prompt: &str) {
    let mut rest = prompt;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            c.err("generator.prompt", "unclosed `{` in the prompt template");
            return;
        };
        let field = &after[..close];
        if !PROMPT_FIELDS.contains(&field) {
            c.err(
                "generator.prompt",
                format!(
                    "unknown placeholder `{{{field}}}`; allowed: {}",
                    PROMPT_FIELDS.map(|f| format!("{{{f}}}")).join(", ")
                ),
            );
        }
        rest = &after[close + 1..];
    }
}

/// Fills an arm's unset fields from `acquisition.defaults` (the arm's own fields win; nested
/// objects such as `artifacts` are taken whole).
fn merge(arm: &ArmSpec, defaults: Option<&ArmSpec>) -> ArmSpec {
    let Some(d) = defaults else {
        return arm.clone();
    };
    let (Ok(serde_json::Value::Object(mut base)), Ok(serde_json::Value::Object(own))) =
        (serde_json::to_value(d), serde_json::to_value(arm))
    else {
        return arm.clone();
    };
    base.remove("name");
    base.extend(own);
    serde_json::from_value(serde_json::Value::Object(base)).unwrap_or_else(|_| arm.clone())
}

fn modality_name(m: Modality) -> &'static str {
    match m {
        Modality::None => "none",
        Modality::Ct => "ct",
        Modality::Mri => "mri",
    }
}

pub fn template_name(t: TemplateSpec) -> &'static str {
    match t {
        TemplateSpec::Thorax => "thorax",
        TemplateSpec::Abdomen => "abdomen",
        TemplateSpec::Head => "head",
        TemplateSpec::WaterCylinder => "water_cylinder",
        TemplateSpec::CtQa => "ct_qa",
    }
}
