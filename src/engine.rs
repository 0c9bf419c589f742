//! Runs a pipeline: plans the subjects, runs them in parallel (sample → anatomy → generate →
//! acquire → write), then writes the run-level files (manifest, labels.json, dataset.json,
//! provenance, preview). Owns the loop, the parallelism, the progress bar and every write.
//!
//! Crash safety: each file is written under a temporary name and renamed; a subject's
//! manifest rows are written (atomically) only after all its files, to
//! `.synthcohort/rows/<subject>.json`. `--resume` keeps subjects whose rows exist and whose
//! files still hash to the recorded sha256, and redoes the rest. Run-level files are
//! assembled from the row files, so a resumed run ends byte-identical to an uninterrupted one.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::anatomy::{self, ontology, AnatomyParams, BodySize, LesionRequest};
use crate::cohort::{self, CohortPlan, Subject};
use crate::generate::{self, procedural::Procedural, Generator, LesionTissue, Needs, TissueObject};
use crate::io::{self, manifest::LesionRow, manifest::ManifestRow, nifti::ImageDtype};
use crate::pipeline::spec::{Compression, Layout, OutputDtype, PropertyMap};
use crate::pipeline::{Protocol, Resolved};
use crate::rng::{self, Stage};
use crate::volume::{Grid, Volume};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run folder (overrides `outputs.dir`).
    pub out: Option<PathBuf>,
    /// Subjects processed in parallel (0 = all cores).
    pub jobs: usize,
    /// Subject indices to produce (0-based, end exclusive); default all.
    pub subjects: Option<Range<u64>>,
    pub resume: bool,
    /// Replace an earlier synthcohort run in the same folder.
    pub overwrite: bool,
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("output folder {} already holds files; pass --resume to continue that run, --overwrite to replace it, or --out to choose another folder", .0.display())]
    OutputExists(PathBuf),
    #[error("cannot --resume in {}: it was made from a different pipeline (sha256 {found}, this one {expected}); use a new --out", dir.display())]
    ResumeMismatch {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("--subjects {start}..{end} selects no subject of a cohort of {size}")]
    EmptySelection { start: u64, end: u64, size: u32 },
    #[error("{}", render_failures(.0))]
    Subjects(Vec<(String, String)>),
    #[error("anatomy source: {0}")]
    Source(String),
    #[error(transparent)]
    Io(#[from] io::IoError),
    #[error("{0}")]
    Other(String),
}

fn render_failures(f: &[(String, String)]) -> String {
    let mut s = format!("{} subject(s) failed:", f.len());
    for (id, e) in f {
        s.push_str(&format!("\n  {id}: {e}"));
    }
    s
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub generated: usize,
    pub resumed: usize,
    pub seconds: f64,
}

/// One subject's finished record: its manifest rows plus what labels.json needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SubjectRecord {
    index: u64,
    rows: Vec<ManifestRow>,
    lesion_ids: Vec<u16>,
}

const STATE_DIR: &str = ".synthcohort";

/// The run folder a pipeline writes to, given the options.
pub fn out_dir(p: &Resolved, opts: &RunOptions) -> PathBuf {
    opts.out
        .clone()
        .or_else(|| p.spec.outputs.dir.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("out").join(&p.spec.name))
}

/// The subject indices a run covers.
pub fn selection(p: &Resolved, opts: &RunOptions) -> Result<Range<u64>, EngineError> {
    let size = p.spec.cohort.size as u64;
    let r = opts.subjects.clone().unwrap_or(0..size);
    let sel = r.start.min(size)..r.end.min(size);
    if sel.is_empty() {
        return Err(EngineError::EmptySelection {
            start: r.start,
            end: r.end,
            size: p.spec.cohort.size,
        });
    }
    Ok(sel)
}

/// Rough resource needs of a run, for `--dry-run`.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub subjects: u64,
    pub voxels_per_subject: u64,
    pub peak_memory_bytes: u64,
    pub disk_bytes: u64,
}

pub fn estimate(p: &Resolved, opts: &RunOptions) -> Result<Estimate, EngineError> {
    let sel = selection(p, opts)?;
    let n = sel.end - sel.start;
    let vox: u64 = p.spec.anatomy.size.iter().map(|&d| d as u64).product();
    let needs = needs(p);
    // labels (2) + texture and a blur buffer (8) + CT maps (9) + 16 per MRI field + image (4).
    let per_voxel = 2 + 8 + if needs.ct { 9 } else { 0 } + 16 * needs.mri_fields_t.len() as u64 + 4;
    let jobs = jobs(opts) as u64;
    let arms = p.arms.len() as u64;
    // Compressed synthetic images run ~2–3 bytes a voxel in float32, labels far less.
    let bytes_img = if p.spec.outputs.dtype == OutputDtype::Int16 {
        1
    } else {
        3
    };
    let nnunet = if p.spec.outputs.layout == Layout::Nnunet {
        2
    } else {
        1
    };
    Ok(Estimate {
        subjects: n,
        voxels_per_subject: vox,
        peak_memory_bytes: vox * per_voxel * jobs.min(n) + (64 << 20),
        disk_bytes: n * nnunet * (vox * bytes_img * arms + vox / 4),
    })
}

fn jobs(opts: &RunOptions) -> usize {
    if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    }
}

/// The maps the arms need from the tissue object.
pub fn needs(p: &Resolved) -> Needs {
    let mut n = Needs::default();
    for arm in &p.arms {
        match &arm.protocol {
            Protocol::None {
                property: PropertyMap::Hu,
                ..
            } => n.ct = true,
            Protocol::None { field_t, .. } => {
                if !n.mri_fields_t.contains(field_t) {
                    n.mri_fields_t.push(*field_t);
                }
            }
        }
    }
    n
}

fn generator(p: &Resolved) -> Box<dyn Generator> {
    let g = &p.spec.generator;
    Box::new(Procedural {
        texture_mm: g.texture_mm,
        texture_strength: g.texture_strength,
        partial_volume_mm: g.partial_volume_mm,
    })
}

fn extension(p: &Resolved) -> &'static str {
    match p.spec.outputs.compression {
        Compression::Gzip => ".nii.gz",
        Compression::None => ".nii",
    }
}

fn descrip() -> String {
    format!("synthcohort {}", crate::VERSION)
}

/// Everything a subject needs that is shared by all subjects of a run.
struct Shared<'a> {
    p: &'a Resolved,
    plan: CohortPlan,
    grid: Grid,
    base: Option<Volume<u16>>,
    generator: Box<dyn Generator>,
    needs: Needs,
    dir: PathBuf,
    timings: Mutex<BTreeMap<&'static str, f64>>,
}

impl Shared<'_> {
    fn time<T>(&self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        let dt = t.elapsed().as_secs_f64();
        if let Ok(mut m) = self.timings.lock() {
            *m.entry(stage).or_insert(0.0) += dt;
        }
        out
    }
}

/// Loads and maps an imported label map (anatomy.source) onto the pipeline grid.
fn load_source(
    p: &Resolved,
    grid: &Grid,
) -> Result<Option<(Volume<u16>, anatomy::import::ImportReport)>, EngineError> {
    let Some(src) = &p.spec.anatomy.source else {
        return Ok(None);
    };
    let file = p.resolve_input(&src.file);
    let names_path = p.resolve_input(&src.names);
    let mut vol = io::nifti::read_labels(&file)?;
    // Scanner coordinates put real scans anywhere in space; synthcohort grids are centred on
    // the world origin, so the source is centred too (its spacing and orientation kept).
    vol.grid = Grid::centered(vol.grid.dims, vol.grid.spacing_mm);
    let text = std::fs::read_to_string(&names_path)
        .map_err(|e| EngineError::Source(format!("cannot read {}: {e}", names_path.display())))?;
    let names =
        anatomy::import::parse_names_file(&text).map_err(|e| EngineError::Source(e.to_string()))?;
    let (mapped, report) = anatomy::import::import_labels(&vol, &names, grid);
    Ok(Some((mapped, report)))
}

/// Runs the pipeline. Progress goes to stderr unless `quiet`.
pub fn run(p: &Resolved, opts: &RunOptions) -> Result<RunSummary, EngineError> {
    let start = Instant::now();
    let sel = selection(p, opts)?;
    let dir = out_dir(p, opts);
    let state = dir.join(STATE_DIR);
    prepare_dir(p, &dir, opts)?;

    let a = &p.spec.anatomy;
    let grid = Grid::centered(a.size.map(|d| d as usize), a.spacing_mm);
    let mut import_note = None;
    let base = match load_source(p, &grid)? {
        Some((v, report)) => {
            if !report.unmapped.is_empty() {
                let names: Vec<String> = report
                    .unmapped
                    .iter()
                    .map(|(id, n)| format!("{id} {n}"))
                    .collect();
                import_note = Some(names.clone());
                if !opts.quiet {
                    eprintln!(
                        "note: {} source label(s) have no synthcohort name and become background: {}",
                        names.len(),
                        names.join(", ")
                    );
                }
            }
            Some(v)
        }
        None => None,
    };

    let shared = Shared {
        p,
        plan: CohortPlan::new(&p.spec),
        grid,
        base,
        generator: generator(p),
        needs: needs(p),
        dir: dir.clone(),
        timings: Mutex::new(BTreeMap::new()),
    };

    // Which subjects are already complete (resume)?
    let mut done = BTreeSet::new();
    if opts.resume {
        for idx in sel.clone() {
            if let Some(rec) = read_record(&state, &cohort::subject_id(idx, p.spec.cohort.size)) {
                if record_verified(&dir, &rec) {
                    done.insert(idx);
                }
            }
        }
        clean_temporaries(&dir);
    }
    let todo: Vec<u64> = sel.clone().filter(|i| !done.contains(i)).collect();

    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        let b =
            ProgressBar::with_draw_target(Some(todo.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} subjects  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs(opts))
        .build()
        .map_err(|e| EngineError::Other(format!("cannot start worker threads: {e}")))?;
    let failures: Vec<(String, String)> = pool.install(|| {
        todo.par_iter()
            .filter_map(|&idx| {
                let out = run_subject(&shared, idx);
                bar.inc(1);
                out.err()
                    .map(|e| (cohort::subject_id(idx, p.spec.cohort.size), e))
            })
            .collect()
    });
    bar.finish_and_clear();
    if !failures.is_empty() {
        return Err(EngineError::Subjects(failures));
    }

    finish_run(&shared, &state, &dir, sel.clone(), opts, start, import_note)?;
    Ok(RunSummary {
        out_dir: dir,
        generated: todo.len(),
        resumed: done.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn prepare_dir(p: &Resolved, dir: &Path, opts: &RunOptions) -> Result<(), EngineError> {
    let state = dir.join(STATE_DIR);
    let marker = state.join("pipeline.sha256");
    let nonempty = dir
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if nonempty {
        let ours = marker.is_file();
        if opts.resume && ours {
            let found = std::fs::read_to_string(&marker)
                .unwrap_or_default()
                .trim()
                .to_string();
            if found != p.sha256 {
                return Err(EngineError::ResumeMismatch {
                    dir: dir.to_path_buf(),
                    found,
                    expected: p.sha256.clone(),
                });
            }
        } else if opts.overwrite && ours {
            std::fs::remove_dir_all(dir)
                .map_err(|e| EngineError::Other(format!("cannot clear {}: {e}", dir.display())))?;
        } else if !opts.resume {
            return Err(EngineError::OutputExists(dir.to_path_buf()));
        }
    }
    io::atomic::write_atomic(&marker, format!("{}\n", p.sha256).as_bytes())?;
    Ok(())
}

fn record_path(state: &Path, id: &str) -> PathBuf {
    state.join("rows").join(format!("{id}.json"))
}

fn read_record(state: &Path, id: &str) -> Option<SubjectRecord> {
    let bytes = std::fs::read(record_path(state, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn record_verified(dir: &Path, rec: &SubjectRecord) -> bool {
    let mut seen = BTreeMap::new();
    for r in &rec.rows {
        seen.insert(r.image_path.clone(), r.image_sha256.clone());
        seen.insert(r.label_path.clone(), r.label_sha256.clone());
    }
    seen.iter().all(|(rel, sha)| {
        io::hash::sha256_file(&dir.join(rel))
            .map(|h| &h == sha)
            .unwrap_or(false)
    })
}

/// Removes temporary files a killed run left behind (never final names).
fn clean_temporaries(dir: &Path) {
    for sub in [
        "images",
        "labels",
        "imagesTr",
        "labelsTr",
        "",
        STATE_DIR,
        ".synthcohort/rows",
    ] {
        let Ok(rd) = dir.join(sub).read_dir() else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.contains(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The lesion-free part of the label map keeps organ ids; lesions are LESION_ID_BASE + k.
fn lesion_rows(rec: &[anatomy::LesionRecord]) -> Vec<LesionRow> {
    rec.iter()
        .map(|l| LesionRow {
            label_id: l.label_id,
            condition: l.condition.clone(),
            kind: l.kind.clone(),
            organ: l.organ.clone(),
            shape: format!("{:?}", l.shape).to_lowercase(),
            center_mm: l.center_mm,
            diameter_mm: l.diameter_mm,
            volume_ml: l.volume_ml,
        })
        .collect()
}

fn kind_name(k: crate::pipeline::spec::LesionKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Builds one subject's labels and tissue object (no files).
pub struct SubjectData {
    pub subject: Subject,
    pub anatomy: anatomy::Anatomy,
    pub object: TissueObject,
}

fn make_subject(s: &Shared, idx: u64) -> Result<SubjectData, String> {
    let p = &s.p.spec;
    let subject = s.time("cohort", || cohort::sample(p, &s.plan, idx));
    let (height_cm, weight_kg) = if p.anatomy.body_scaling {
        (subject.height_cm, subject.weight_kg)
    } else {
        // The template's reference adult.
        (170.0, 72.0)
    };
    let params = AnatomyParams {
        template: crate::pipeline::validate::template_of(p.anatomy.template),
        grid: s.grid.clone(),
        body: BodySize {
            height_cm,
            weight_kg,
            sex: subject.sex,
        },
        deformation_mm: p.anatomy.deformation_mm,
        lesions: subject
            .lesions
            .iter()
            .map(|l| LesionRequest {
                condition: l.condition.clone(),
                kind: kind_name(l.kind),
                organ: l.organ.clone(),
                diameter_mm: l.diameter_mm,
                shape: l.shape,
            })
            .collect(),
    };
    let mut arng = rng::stream(subject.seed, Stage::Anatomy, 0);
    let mut lrng = rng::stream(subject.seed, Stage::Lesions, 0);
    let anat = s
        .time("anatomy", || {
            anatomy::build(&params, s.base.as_ref(), &mut arng, &mut lrng)
        })
        .map_err(|e| e.to_string())?;
    let lesions: Vec<LesionTissue> = anat
        .lesions
        .iter()
        .zip(&subject.lesions)
        .map(|(rec, draw)| LesionTissue {
            label_id: rec.label_id,
            hu: draw.hu,
            pd: draw.pd,
            t1_ms: draw.t1_ms,
            t2_ms: draw.t2_ms,
        })
        .collect();
    let req = generate::Request {
        labels: &anat.labels,
        lesions: &lesions,
        prompt: &subject.prompt,
        needs: &s.needs,
        seed: subject.seed,
    };
    let object = s
        .time("generate", || s.generator.generate(&req))
        .map_err(|e| e.to_string())?;
    Ok(SubjectData {
        subject,
        anatomy: anat,
        object,
    })
}

/// Builds one subject in memory, for library users, benchmarks and tests.
pub fn build_subject(p: &Resolved, idx: u64) -> Result<SubjectData, EngineError> {
    let a = &p.spec.anatomy;
    let grid = Grid::centered(a.size.map(|d| d as usize), a.spacing_mm);
    let base = load_source(p, &grid)?.map(|(v, _)| v);
    let s = Shared {
        p,
        plan: CohortPlan::new(&p.spec),
        grid,
        base,
        generator: generator(p),
        needs: needs(p),
        dir: PathBuf::new(),
        timings: Mutex::new(BTreeMap::new()),
    };
    make_subject(&s, idx).map_err(EngineError::Other)
}

/// The image an arm produces from the object (physical units).
fn acquire(arm: &Protocol, obj: &TissueObject) -> Result<Volume<f32>, String> {
    match arm {
        Protocol::None { property, field_t } => {
            let pick = |f: fn(&generate::MriMaps) -> &Volume<f32>| {
                obj.mri_at(*field_t)
                    .map(|m| f(m).clone())
                    .ok_or_else(|| "object has no MRI maps".to_string())
            };
            match property {
                PropertyMap::Hu => obj
                    .ct
                    .as_ref()
                    .map(|c| c.hu.clone())
                    .ok_or_else(|| "object has no CT maps".into()),
                PropertyMap::Pd => pick(|m| &m.pd),
                PropertyMap::T1 => pick(|m| &m.t1_ms),
                PropertyMap::T2 => pick(|m| &m.t2_ms),
                PropertyMap::T2star => pick(|m| &m.t2star_ms),
            }
        }
    }
}

fn dtype(p: &Resolved) -> ImageDtype {
    match p.spec.outputs.dtype {
        OutputDtype::Float32 => ImageDtype::Float32,
        OutputDtype::Int16 => ImageDtype::Int16,
    }
}

fn run_subject(s: &Shared, idx: u64) -> Result<(), String> {
    let data = make_subject(s, idx)?;
    let p = s.p;
    let ext = extension(p);
    let gz = p.spec.outputs.compression == Compression::Gzip;
    let subj = &data.subject;
    let labels = &data.anatomy.labels;

    let label_rel = format!("labels/{}{ext}", subj.id);
    let label_bytes = s
        .time("write", || io::nifti::encode_labels(labels, gz, &descrip()))
        .map_err(|e| e.to_string())?;
    let label_sha = io::hash::sha256_hex(&label_bytes);
    let nnunet = p.spec.outputs.layout == Layout::Nnunet;

    let nnunet_lab = if nnunet {
        let lab = nnunet_labels(p, s.base.as_ref(), labels, &data.anatomy.lesions);
        Some(io::nifti::encode_labels(&lab, gz, &descrip()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for arm in &p.arms {
        let image = s.time("acquire", || acquire(&arm.protocol, &data.object))?;
        let bytes = s
            .time("write", || {
                io::nifti::encode_image(&image, dtype(p), gz, &descrip())
            })
            .map_err(|e| e.to_string())?;
        let image_rel = format!("images/{}_{}{ext}", subj.id, arm.name);
        s.time("write", || {
            io::atomic::write_atomic(&s.dir.join(&image_rel), &bytes)
        })
        .map_err(|e| e.to_string())?;
        if let Some(lab_bytes) = &nnunet_lab {
            let case = format!("{}_{}", subj.id, arm.name);
            s.time("write", || {
                io::atomic::write_atomic(
                    &s.dir.join(format!("imagesTr/{case}_0000{ext}")),
                    &bytes,
                )?;
                io::atomic::write_atomic(&s.dir.join(format!("labelsTr/{case}{ext}")), lab_bytes)
            })
            .map_err(|e| e.to_string())?;
        }
        rows.push(ManifestRow {
            subject_id: subj.id.clone(),
            subject_index: subj.index,
            arm: arm.name.clone(),
            modality: arm.protocol.modality().to_string(),
            seed: subj.seed,
            age: subj.age,
            sex: if subj.sex == anatomy::Sex::Female {
                "female".into()
            } else {
                "male".into()
            },
            height_cm: subj.height_cm,
            weight_kg: subj.weight_kg,
            bmi: subj.bmi,
            conditions: subj.conditions.clone(),
            lesions: lesion_rows(&data.anatomy.lesions),
            prompt: subj.prompt.clone(),
            image_path: image_rel,
            label_path: label_rel.clone(),
            image_sha256: io::hash::sha256_hex(&bytes),
            label_sha256: label_sha.clone(),
            image_dims: image.grid.dims.map(|d| d as u32),
            spacing_mm: image.grid.spacing_mm,
            generator: s.generator.name(),
            pipeline_sha256: p.sha256.clone(),
            synthcohort_version: crate::VERSION.to_string(),
        });
    }
    s.time("write", || {
        io::atomic::write_atomic(&s.dir.join(&label_rel), &label_bytes)
    })
    .map_err(|e| e.to_string())?;
    let rec = SubjectRecord {
        index: idx,
        rows,
        lesion_ids: data.anatomy.lesions.iter().map(|l| l.label_id).collect(),
    };
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| e.to_string())?;
    io::atomic::write_atomic(&record_path(&s.dir.join(STATE_DIR), &subj.id), &json)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Organ classes of the run (ontology ids the anatomy can produce), in id order.
fn organ_ids(p: &Resolved, base: Option<&Volume<u16>>) -> Vec<u16> {
    match base {
        Some(v) => {
            let set: BTreeSet<u16> = v.data.iter().copied().filter(|&l| l != 0).collect();
            set.into_iter().collect()
        }
        None => {
            let mut ids = ontology::template_labels(crate::pipeline::validate::template_of(
                p.spec.anatomy.template,
            ));
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    }
}

/// Lesion conditions in pipeline order (one nnU-Net class each).
fn lesion_conditions(p: &Resolved) -> Vec<String> {
    p.spec
        .cohort
        .conditions
        .iter()
        .filter(|c| c.lesion.is_some())
        .map(|c| c.name.clone())
        .collect()
}

/// nnU-Net needs consecutive class ids and semantic (not instance) classes: organs keep their
/// order, each lesion condition becomes one class.
fn nnunet_classes(p: &Resolved, base: Option<&Volume<u16>>) -> Vec<(String, u16)> {
    let mut classes = vec![("background".to_string(), 0u16)];
    for id in organ_ids(p, base) {
        let name =
            ontology::label_by_id(id).map_or_else(|| format!("label_{id}"), |l| l.name.to_string());
        classes.push((name, classes.len() as u16));
    }
    for c in lesion_conditions(p) {
        classes.push((c, classes.len() as u16));
    }
    classes
}

fn nnunet_labels(
    p: &Resolved,
    base: Option<&Volume<u16>>,
    labels: &Volume<u16>,
    lesions: &[anatomy::LesionRecord],
) -> Volume<u16> {
    let organs = organ_ids(p, base);
    let conds = lesion_conditions(p);
    let mut map: BTreeMap<u16, u16> = BTreeMap::new();
    for (i, id) in organs.iter().enumerate() {
        map.insert(*id, i as u16 + 1);
    }
    for l in lesions {
        if let Some(ci) = conds.iter().position(|c| *c == l.condition) {
            map.insert(l.label_id, (organs.len() + 1 + ci) as u16);
        }
    }
    labels.map(|v| map.get(&v).copied().unwrap_or(0))
}

#[allow(clippy::too_many_arguments)]
fn finish_run(
    s: &Shared,
    state: &Path,
    dir: &Path,
    sel: Range<u64>,
    opts: &RunOptions,
    start: Instant,
    import_note: Option<Vec<String>>,
) -> Result<(), EngineError> {
    let p = s.p;
    // Every subject recorded in this folder (a run over several --subjects ranges adds up).
    let mut records: Vec<SubjectRecord> = Vec::new();
    if let Ok(rd) = state.join("rows").read_dir() {
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path)
                .map_err(|e| EngineError::Other(format!("cannot read {}: {e}", path.display())))?;
            let rec: SubjectRecord = serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Other(format!("corrupt run record {}: {e}", path.display()))
            })?;
            records.push(rec);
        }
    }
    records.sort_by_key(|r| r.index);
    let rows: Vec<ManifestRow> = records
        .iter()
        .flat_map(|r| r.rows.iter().cloned())
        .collect();
    io::atomic::write_atomic(
        &dir.join("manifest.parquet"),
        &io::manifest::encode_manifest(&rows)?,
    )?;

    // labels.json: the organ classes plus one entry per lesion id used.
    let mut entries: Vec<io::labels_json::LabelEntry> = organ_ids(p, s.base.as_ref())
        .into_iter()
        .filter_map(ontology::label_by_id)
        .map(|l| io::labels_json::LabelEntry {
            id: l.id,
            name: l.name.to_string(),
            color: l.color,
        })
        .collect();
    let lesion_ids: BTreeSet<u16> = records
        .iter()
        .flat_map(|r| r.lesion_ids.iter().copied())
        .collect();
    for id in lesion_ids {
        let k = id - ontology::LESION_ID_BASE + 1;
        entries.push(io::labels_json::LabelEntry {
            id,
            name: format!("lesion_{k}"),
            color: lesion_colour(k),
        });
    }
    io::atomic::write_atomic(
        &dir.join("labels.json"),
        &io::labels_json::labels_json(&entries),
    )?;

    if p.spec.outputs.layout == Layout::Nnunet {
        let channel = match p.arms.first().map(|a| &a.protocol) {
            Some(Protocol::None {
                property: PropertyMap::Hu,
                ..
            }) => "CT",
            Some(Protocol::None {
                property: PropertyMap::Pd,
                ..
            }) => "PD",
            Some(Protocol::None {
                property: PropertyMap::T1,
                ..
            }) => "T1",
            Some(Protocol::None {
                property: PropertyMap::T2,
                ..
            }) => "T2",
            Some(Protocol::None {
                property: PropertyMap::T2star,
                ..
            }) => "T2star",
            None => "image",
        };
        let classes = nnunet_classes(p, s.base.as_ref());
        let ds = io::nnunet::dataset_json(
            &p.spec.name,
            &[channel.to_string()],
            &classes,
            rows.len(),
            extension(p),
        );
        let mut bytes =
            serde_json::to_vec_pretty(&ds).map_err(|e| EngineError::Other(e.to_string()))?;
        bytes.push(b'\n');
        io::atomic::write_atomic(&dir.join("dataset.json"), &bytes)?;
    }

    if p.spec.outputs.preview {
        let png = preview_png(dir, &rows, p.spec.outputs.preview_subjects as usize)?;
        io::atomic::write_atomic(&dir.join("preview.png"), &png)?;
    }

    let timings = s.timings.lock().map(|m| m.clone()).unwrap_or_default();
    let prov = serde_json::json!({
        "synthcohort_version": crate::VERSION,
        "pipeline": p.spec,
        "pipeline_sha256": p.sha256,
        "arms": p.arms,
        "generator": s.generator.name(),
        "subjects": {"start": sel.start, "end": sel.end, "in_folder": records.len()},
        "jobs": jobs(opts),
        "resumed": opts.resume,
        "anatomy_source_unmapped": import_note,
        "grid": s.grid,
        "seconds": {"total_wall": start.elapsed().as_secs_f64(), "stages_cpu": timings},
        "finished_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "dependencies": {"nifti": "0.18", "parquet": "60.1", "rayon": "1.12"},
    });
    let mut bytes =
        serde_json::to_vec_pretty(&prov).map_err(|e| EngineError::Other(e.to_string()))?;
    bytes.push(b'\n');
    io::atomic::write_atomic(&dir.join("provenance.json"), &bytes)?;
    Ok(())
}

/// Distinct, saturated colours for lesion instances (golden-angle hue steps).
fn lesion_colour(k: u16) -> [u8; 3] {
    let h = (k as f64 * 137.508) % 360.0;
    let x = 1.0 - ((h / 60.0) % 2.0 - 1.0).abs();
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

fn colour_of(id: u16) -> [u8; 3] {
    if id >= ontology::LESION_ID_BASE {
        return [255, 230, 0];
    }
    ontology::label_by_id(id).map_or([128, 128, 128], |l| l.color)
}

/// The preview mosaic of the first `n` subjects (first arm of each), read from the files.
fn preview_png(dir: &Path, rows: &[ManifestRow], n: usize) -> Result<Vec<u8>, EngineError> {
    let mut seen = BTreeSet::new();
    let mut tiles = Vec::new();
    for r in rows {
        if seen.len() >= n || !seen.insert(r.subject_id.clone()) {
            continue;
        }
        let img = io::nifti::read_image(&dir.join(&r.image_path))?;
        let lab = io::nifti::read_labels(&dir.join(&r.label_path))?;
        tiles.push(tile(&img, &lab, &format!("{} {}", r.subject_id, r.arm)));
    }
    Ok(io::preview::render_mosaic(&tiles, &colour_of)?)
}

/// A mid-axial tile; the window is soft-tissue/lung CT for HU-like data, else the 1–99th
/// percentile range.
fn tile(img: &Volume<f32>, lab: &Volume<u16>, title: &str) -> io::preview::PreviewTile {
    let k = img.grid.dims[2] / 2;
    let image = img.axial_slice(k);
    let labels = if lab.grid.dims == img.grid.dims {
        lab.axial_slice(k)
    } else {
        vec![0; image.len()]
    };
    let mut sorted: Vec<f32> = image.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let q = |f: f64| {
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * f) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let window = if q(0.01) <= -900.0 {
        (-1000.0, 400.0)
    } else {
        (q(0.01), q(0.99).max(q(0.01) + 1e-3))
    };
    io::preview::PreviewTile {
        title: title.to_string(),
        width: img.grid.dims[0],
        height: img.grid.dims[1],
        pixel_aspect: img.grid.spacing_mm[1] / img.grid.spacing_mm[0],
        image,
        labels,
        window,
    }
}

/// Rebuilds preview.png of an existing run folder from its manifest and files.
pub fn preview(dir: &Path, subjects: usize) -> Result<PathBuf, EngineError> {
    let rows = io::manifest::read_manifest(&dir.join("manifest.parquet"))?;
    let png = preview_png(dir, &rows, subjects)?;
    let out = dir.join("preview.png");
    io::atomic::write_atomic(&out, &png)?;
    Ok(out)
}
