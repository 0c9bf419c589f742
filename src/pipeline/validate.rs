//! Rules that span fields, checked on the typed pipeline after the schema pass, plus the
//! resolution of arms (defaults already merged in) into their typed form.

use std::collections::BTreeSet;
use std::path::Path;

use super::arm::{self, Arm, PropertyMap, Protocol};
use super::error::Problem;
use super::spec::*;
use crate::anatomy;

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

/// Placeholders a prompt template may use.
pub const PROMPT_FIELDS: [&str; 5] = ["age", "sex", "conditions", "template", "bmi"];

/// All cross-field rules. `base_dir` resolves relative paths (the pipeline file's folder).
pub fn check(p: &Pipeline, base_dir: &Path) -> (Vec<Arm>, Vec<Problem>) {
    let mut c = Checker {
        problems: Vec::new(),
    };
    check_demographics(&mut c, &p.cohort.demographics);
    let mut names = BTreeSet::new();
    for (i, cond) in p.cohort.conditions.iter().enumerate() {
        let path = format!("cohort.conditions[{i}]");
        if !names.insert(cond.name.clone()) {
            c.err(
                format!("{path}.name"),
                format!("condition `{}` is listed twice", cond.name),
            );
        }
        check_condition(&mut c, p, &path, cond);
    }
    check_anatomy(&mut c, &p.anatomy, base_dir);
    check_prompt(&mut c, &p.generator.prompt);
    let (arms, arm_names) = check_arms(&mut c, p);
    check_outputs(&mut c, p);
    if p.outputs.dicom
        && !arms.is_empty()
        && arms
            .iter()
            .all(|a| matches!(a.protocol, Protocol::None { .. }))
    {
        c.err(
            "outputs.dicom",
            "no arm makes a CT or MR image (`modality: none` property maps stay NIfTI only), so nothing would be written as DICOM; add a CT or MR arm or drop outputs.dicom",
        );
    }
    // The model must be present, readable, and able to make what the arms image.
    if p.generator.kind == GeneratorKind::LatentDiffusion {
        check_model(&mut c, p, &arms, base_dir);
    }
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

fn check_demographics(c: &mut Checker, d: &Demographics) {
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
}

/// One condition: prevalence or count, diffuse severity on a tissue the anatomy has, and a
/// lesion organ that exists and can hold the lesion.
fn check_condition(c: &mut Checker, p: &Pipeline, path: &str, cond: &ConditionSpec) {
    let template = p.anatomy.template;
    match (cond.prevalence, cond.count) {
        (Some(_), Some(_)) => c.err(path, "give either `prevalence` or `count`, not both"),
        (None, None) => c.err(
            path,
            "needs `prevalence` (probability per subject) or `count` (exact number of subjects)",
        ),
        (None, Some(n)) if n > p.cohort.size => c.err(
            format!("{path}.count"),
            format!(
                "{n} subjects with `{}` but the cohort has only {} (cohort.size)",
                cond.name, p.cohort.size
            ),
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
            let present = anatomy::template_labels(template);
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
                        p.anatomy.template.name(),
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
        if let Some(m) = &les.material {
            let known = crate::tissue::attenuation::material_names();
            if !known.contains(&m.as_str()) {
                c.err(
                    format!("{lp}.material"),
                    format!(
                        "unknown CT material `{m}`; the attenuation table has: {}",
                        known.join(", ")
                    ),
                );
            }
        }
        if let Some(d) = &les.adc_um2_ms {
            c.dist(&format!("{lp}.adc_um2_ms"), d, 0.0, 4.0, "µm²/ms");
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
        if les.placement == anatomy::LesionPlacement::Surface
            && anatomy::organ_group(&les.organ).is_some()
            && anatomy::surface_of(&les.organ).is_none()
        {
            c.err(
                format!("{lp}.placement"),
                format!("`surface` places a lesion against an organ's lining (pleura, capsule, serosa, bone cortex, pia), and `{}` has none; use `inside` or `exophytic`, or a lined organ", les.organ),
            );
        }
        match anatomy::organ_group(&les.organ) {
            None => c.err(format!("{lp}.organ"), format!("unknown organ `{}`; use a label name from `synthcohort labels {}` or a group (lung, kidney, brain)", les.organ, p.anatomy.template.name())),
            Some(ids) => {
                if p.anatomy.source.is_none() {
                    let present = anatomy::template_labels(template);
                    if !ids.iter().any(|id| present.contains(id)) {
                        c.err(format!("{lp}.organ"), format!("the `{}` template has no `{}`", p.anatomy.template.name(), les.organ));
                    } else if les.placement == anatomy::LesionPlacement::Exophytic {
                        // Grows out of the organ: its size is not bounded by the organ's.
                    } else if let Some(extent) = anatomy::organ_min_extent_mm(template, &les.organ) {
                        let dmax = dist_upper(&les.diameter_mm);
                        if dmax > 0.8 * extent {
                            c.err(
                                format!("{lp}.diameter_mm"),
                                format!("lesions up to {dmax:.1} mm cannot fit inside `{}` (about {extent:.0} mm across at its narrowest); keep diameters below {:.0} mm, or let them grow out of it with `placement: exophytic`", les.organ, 0.8 * extent),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn check_anatomy(c: &mut Checker, a: &AnatomySpec, base_dir: &Path) {
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
    if let Some(sources) = &a.source {
        let list = sources.list();
        if list.is_empty() {
            c.err(
                "anatomy.source",
                "an empty list; give one label map or several",
            );
        }
        if list.len() > 1 && !a.body_scaling {
            c.err(
                "anatomy.source",
                format!("{} label maps need `body_scaling: true` (each subject is drawn from one of them as an atlas); without it give one map", list.len()),
            );
        }
        for (i, src) in list.into_iter().enumerate() {
            let at = sources.path(i);
            if !src.is_dicom() && src.names.is_none() {
                c.err(
                    format!("{at}.names"),
                    "a NIfTI label map needs a names table (`<id> <name>` per line); only a DICOM SEG names its own segments",
                );
            }
            if src.series.is_some() && !src.is_dicom() {
                c.err(
                    format!("{at}.series"),
                    "only a DICOM SEG (`.dcm`) refers to an image series",
                );
            }
            let files = [("file", Some(&src.file)), ("names", src.names.as_ref())];
            for (field, f) in files.into_iter().filter_map(|(n, f)| f.map(|f| (n, f))) {
                let path = base_dir.join(f);
                if !path.is_file() {
                    c.err(
                        format!("{at}.{field}"),
                        format!("file not found: {}", path.display()),
                    );
                }
            }
            if let Some(dir) = &src.series {
                let path = base_dir.join(dir);
                if !path.is_dir() {
                    c.err(
                        format!("{at}.series"),
                        format!("folder not found: {}", path.display()),
                    );
                }
            }
        }
    }
}

/// Resolves every arm (defaults merged, ranges checked); returns them and their names.
fn check_arms(c: &mut Checker, p: &Pipeline) -> (Vec<Arm>, BTreeSet<String>) {
    let mut arms = Vec::new();
    let mut arm_names = BTreeSet::new();
    for (i, raw) in p.acquisition.arms.iter().enumerate() {
        let path = format!("acquisition.arms[{i}]");
        if let Some(name) = raw.0.get("name").and_then(|v| v.as_str()) {
            if !arm_names.insert(name.to_string()) {
                c.err(
                    format!("{path}.name"),
                    format!("arm name `{name}` is used twice"),
                );
            }
        }
        match arm::resolve(&raw.0, &path, p.anatomy.size, p.anatomy.spacing_mm) {
            Ok(a) => arms.push(a),
            Err(problems) => c.problems.extend(problems),
        }
    }

    (arms, arm_names)
}

/// A pipeline file may only name a folder below the working directory; anywhere else
/// needs an explicit `--out` from the person running it.
fn check_outputs(c: &mut Checker, p: &Pipeline) {
    if let Some(root) = &p.outputs.dicom_uid_root {
        if let Some(why) = crate::io::dicom::uid_root_problem(root) {
            c.err("outputs.dicom_uid_root", why);
        }
    }
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
        p.anatomy.template.name(),
        base_dir,
    ) {
        Ok(d) => d,
        Err(e) => return c.err(at, e.to_string()),
    };
    let cfg = match ldm::read_config(&dir) {
        Ok(cfg) => cfg,
        Err(e) => return c.err(at, e.to_string()),
    };
    // The weights too: loading checks every tensor's shape against the config.
    if let Err(e) = synthcohort_ldm::cpu::Sampler::load(&dir) {
        return c.err(at, e.to_string());
    }
    check_prompt_words(c, p, &cfg);
    // Labels of the template the model cannot draw at all. (An imported map's labels are
    // known only when it is read; the generator then warns, naming them, or draws them
    // procedurally with `unseen_labels: procedural`.)
    let refuse = p.generator.unseen_labels == crate::pipeline::spec::UnseenLabels::Refuse;
    if p.anatomy.source.is_none() && refuse {
        let unseen = ldm::unseen_labels(&cfg, &crate::anatomy::template_labels(p.anatomy.template));
        if !unseen.is_empty() {
            c.err(
                "anatomy.template",
                format!(
                    "the model `{}` has no class for {} nor for their tissue, so it would draw them as background; use a model trained on this template, `generator.unseen_labels: procedural` (those labels drawn by the procedural renderer) or `generator.kind: procedural`",
                    cfg.name,
                    unseen.join(", ")
                ),
            );
        }
    }
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

/// Every word a subject's prompt can hold must be one the model was trained on: the model's
/// tokenizer would otherwise read an unknown word as `[UNK]` (nothing) or as the nearest
/// word it knows, which may mean the opposite (`osteopetrosis` → `osteopenia`).
fn check_prompt_words(c: &mut Checker, p: &Pipeline, cfg: &synthcohort_ldm::LdmConfig) {
    use synthcohort_ldm::text::{pieces, UNK};
    let tok = &cfg.tokenizer;
    // The template's own words (placeholders filled with every value they can take).
    let mut template = p.generator.prompt.clone();
    for (field, text) in [
        ("{sex}", "female male".to_string()),
        ("{age}", String::new()),
        ("{bmi}", "BMI".to_string()),
        (
            "{template}",
            super::prompt::template_word(p.anatomy.template).to_string(),
        ),
        (
            "{conditions}",
            if p.generator.prompt.contains("{conditions}") {
                super::prompt::NO_FINDINGS.to_string()
            } else {
                String::new()
            },
        ),
    ] {
        template = template.replace(field, &format!(" {text} "));
    }
    // The diffusion model makes a diffuse disease only from the words naming it: a condition
    // with `diffuse:` must reach the prompt.
    if !p.generator.prompt.contains("{conditions}") {
        for (i, cond) in p.cohort.conditions.iter().enumerate() {
            if cond.diffuse.is_some() {
                c.err(
                    format!("cohort.conditions[{i}].diffuse"),
                    format!(
                        "the diffusion model `{}` draws `{}` only from the prompt, but generator.prompt has no `{{conditions}}`; add it to the prompt template",
                        cfg.name, cond.name
                    ),
                );
            }
        }
    }
    let mut texts = vec![("generator.prompt".to_string(), template)];
    if p.generator.prompt.contains("{conditions}") {
        for (i, cond) in p.cohort.conditions.iter().enumerate() {
            let field = if cond.prompt.is_some() {
                "prompt"
            } else {
                "name"
            };
            texts.push((
                format!("cohort.conditions[{i}].{field}"),
                super::prompt::condition_text(cond),
            ));
        }
    }
    for (path, text) in texts {
        let mut unknown = Vec::new();
        let mut misread = Vec::new();
        for w in pieces(&text) {
            let id = tok.encode(&w).get(1).copied().unwrap_or(UNK);
            match tok.vocab.get(id as usize) {
                _ if id == UNK => unknown.push(format!("`{w}`")),
                Some(known) if *known != w => misread.push(format!("`{w}` as `{known}`")),
                _ => {}
            }
        }
        unknown.dedup();
        misread.dedup();
        if !unknown.is_empty() {
            c.err(
                &path,
                format!(
                    "the model `{}` never saw {} in training and would read nothing there; use words it knows (its vocabulary is `tokenizer.vocab` in the model's config.json) or a model trained with them",
                    cfg.name,
                    unknown.join(", ")
                ),
            );
        }
        if !misread.is_empty() {
            c.err(
                &path,
                format!(
                    "the model `{}` would read {}: a different word it was trained on, not a synonym it understands; write the word it knows if that is what you mean, or use a model trained with yours",
                    cfg.name,
                    misread.join(", ")
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
