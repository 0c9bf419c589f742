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
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::anatomy::{self, ontology, AnatomyParams, LesionRequest};
use crate::cohort::{self, CohortPlan, Subject};
use crate::generate::{self, procedural::Procedural, Generator, LesionTissue, Needs, TissueObject};
use crate::io::{self, manifest::LesionRow, manifest::ManifestRow, nifti::ImageDtype};
use crate::pipeline::spec::{Compression, GeneratorKind, Layout, OutputDtype};
use crate::pipeline::PropertyMap;
use crate::pipeline::{Protocol, Resolved};
use crate::rng::{self, Stage};
use crate::volume::{Grid, Volume};

mod dicom;
mod estimate;
mod merge;
mod outputs;
mod state;
mod subject;
mod trial;
mod verify;

pub use trial::{trial, TrialSummary};

pub use estimate::{estimate, Estimate};
pub use merge::{merge, MergeSummary};
pub use verify::{verify, VerifyReport};

pub use outputs::preview;
use outputs::*;
use state::*;
use subject::*;
pub use subject::{build_subject, SubjectData};

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
    /// Only the subjects of this shard (index ≡ k mod n).
    pub shard: Option<Shard>,
    /// Run even when the resource estimate exceeds what the machine has.
    pub force: bool,
}

/// Shard k of n: the subjects whose index ≡ k (mod n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    pub fn owns(&self, index: u64) -> bool {
        index % self.n == self.k
    }

    /// The shard's own manifest, beside the run-level one.
    pub fn manifest_name(&self) -> String {
        format!("manifests/shard-{}-of-{}.parquet", self.k, self.n)
    }
}

/// A `--shard` value that is not `K/N` with 0 ≤ K < N.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a shard: write K/N with 0 ≤ K < N, e.g. 3/16")]
pub struct ShardError(String);

impl std::str::FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let bad = || ShardError(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
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
    Subjects(Vec<(String, subject::SubjectError)>),
    #[error(transparent)]
    Subject(#[from] subject::SubjectError),
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Io(#[from] io::IoError),
    #[error("{0}")]
    Resources(String),
    #[error("cannot merge: {0}")]
    Merge(String),
    #[error("{} is not a synthcohort run folder: {reason}", dir.display())]
    NotARun { dir: PathBuf, reason: String },
    #[error("the recorded pipeline no longer validates:\n{0}")]
    RecordedPipeline(Box<crate::pipeline::PipelineError>),
    #[error("the pipeline of {} has no `trial` section", .0.display())]
    NoTrial(PathBuf),
    #[error(transparent)]
    Trial(#[from] crate::trial::TrialError),
    #[error("{} is a symbolic link; synthcohort writes only inside the run folder and does not follow links (give the real path)", .0.display())]
    SymbolicLink(PathBuf),
    #[error("{op} {}: {source}", path.display())]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Model(#[from] crate::generate::ldm::ModelError),
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}

impl EngineError {
    fn file(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.to_path_buf();
        move |source| EngineError::File { op, path, source }
    }
}

fn render_failures(f: &[(String, subject::SubjectError)]) -> String {
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
    /// Every file written for the subject (run-relative path, sha256).
    files: Vec<(String, String)>,
    /// Trial: world positions (mm) of signal-absent ROIs for a subject without lesions.
    #[serde(default)]
    absent_sites: Vec<[f64; 3]>,
}

const STATE_DIR: &str = ".synthcohort";
/// Checksums of every output file, `sha256sum` format.
pub const CHECKSUMS: &str = "files.sha256";

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

/// Free disk space (bytes) for unprivileged writes at `path` or its nearest existing ancestor.
fn available_disk(path: &Path) -> Option<u64> {
    let mut p = std::path::absolute(path).ok()?;
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(p.to_string_lossy().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct for a valid NUL-terminated path and touches nothing else.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Refuses a run whose estimated peak memory or disk exceeds what this machine has.
pub fn check_resources(p: &Resolved, opts: &RunOptions) -> Result<Estimate, EngineError> {
    let est = estimate(p, opts)?;
    if opts.force {
        return Ok(est);
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if let Some(mem) = crate::sys::available_memory() {
        if est.peak_memory_bytes > mem {
            return Err(EngineError::Resources(format!(
                "anatomy.size: this run needs about {:.1} GiB of memory at peak ({} voxels per subject × {} parallel subject(s)) but {:.1} GiB are available; lower --jobs or the grid, or pass --force",
                gib(est.peak_memory_bytes),
                est.voxels_per_subject,
                jobs(opts).min(est.subjects as usize),
                gib(mem)
            )));
        }
    }
    if let Some(disk) = available_disk(&out_dir(p, opts)) {
        if est.disk_bytes > disk {
            return Err(EngineError::Resources(format!(
                "outputs.dir: this run writes about {:.1} GiB but {:.1} GiB are free there; choose another --out or pass --force",
                gib(est.disk_bytes),
                gib(disk)
            )));
        }
    }
    Ok(est)
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
    needs_of(&p.arms)
}

/// The maps these arms image.
fn needs_of(arms: &[crate::pipeline::arm::Arm]) -> Needs {
    let mut n = Needs::default();
    for arm in arms {
        match &arm.protocol {
            Protocol::None {
                property: PropertyMap::Hu,
                ..
            } => n.ct = true,
            Protocol::Ct(_) => n.ct = true,
            Protocol::None { field_t, .. } => add_field(&mut n, *field_t),
            Protocol::Mri(m) => add_field(&mut n, m.field_t),
        }
    }
    n
}

fn add_field(n: &mut Needs, field_t: f64) {
    if !n.mri_fields_t.contains(&field_t) {
        n.mri_fields_t.push(field_t);
    }
}

fn generator(p: &Resolved) -> Result<Box<dyn Generator>, EngineError> {
    let g = &p.spec.generator;
    if g.kind == GeneratorKind::LatentDiffusion {
        let template = p.spec.anatomy.template.name();
        let dir = generate::ldm::resolve_model(g.model.as_deref(), template, &p.base_dir)?;
        let mut m = generate::ldm::LatentDiffusion::load(&dir)?;
        m.steps = g.steps as usize;
        m.guidance = g.guidance.resolve(m.config().guidance);
        m.solver = g.solver;
        m.lesion_targets = g.lesion_intensity == crate::pipeline::spec::LesionIntensity::Target;
        if g.unseen_labels == crate::pipeline::spec::UnseenLabels::Procedural {
            m.unseen_fallback = Some(procedural(g));
        }
        return Ok(Box::new(m));
    }
    Ok(Box::new(procedural(g)))
}

fn procedural(g: &crate::pipeline::spec::GeneratorSpec) -> Procedural {
    Procedural {
        texture_mm: g.texture_mm,
        texture_strength: g.texture_strength,
        partial_volume_mm: g.partial_volume_mm,
        bowel_gas: g.bowel_gas,
    }
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
    /// Imported label maps (`anatomy.source`), see [`SourceMaps`].
    sources: SourceMaps,
    generator: Box<dyn Generator>,
    needs: Needs,
    dir: PathBuf,
    timings: Mutex<BTreeMap<&'static str, f64>>,
    /// Warnings about single subjects, shown after the progress bar and kept in provenance.
    warnings: Mutex<Vec<String>>,
}

impl Shared<'_> {
    fn warn(&self, w: String) {
        if let Ok(mut v) = self.warnings.lock() {
            v.push(w);
        }
    }

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

/// One imported label map: its file name, the map on its own grid with ontology ids, and
/// what did not map.
struct LoadedSource {
    name: String,
    map: Volume<u16>,
    report: anatomy::import::ImportReport,
}

/// Loads the imported label maps (anatomy.source) and maps their names onto the ontology,
/// each on its own grid (centred on the world origin). Empty without a source.
fn load_sources(p: &Resolved) -> Result<Vec<LoadedSource>, EngineError> {
    let Some(sources) = &p.spec.anatomy.source else {
        return Ok(Vec::new());
    };
    sources
        .list()
        .into_iter()
        .enumerate()
        .map(|(i, src)| {
            let (map, report) = load_source(p, src, &sources.path(i))?;
            Ok(LoadedSource {
                name: std::path::Path::new(&src.file)
                    .file_name()
                    .map_or_else(|| src.file.clone(), |f| f.to_string_lossy().to_string()),
                map,
                report,
            })
        })
        .collect()
}

fn load_source(
    p: &Resolved,
    src: &crate::pipeline::spec::SourceSpec,
    field: &str,
) -> Result<(Volume<u16>, anatomy::import::ImportReport), EngineError> {
    let file = p.resolve_input(&src.file);
    let table = match &src.names {
        Some(n) => {
            let names_path = p.resolve_input(n);
            let text = io::bounded::read_text(
                &names_path,
                io::bounded::SMALL_TEXT_BYTES,
                "label-name table",
            )
            .map_err(|e| EngineError::Source(format!("{field}.names: {e}")))?;
            Some(anatomy::import::parse_names_file(&text).map_err(|e| {
                EngineError::Source(format!("{field}.names: {}: {e}", names_path.display()))
            })?)
        }
        None => None,
    };
    let (mut vol, names) = if src.is_dicom() {
        let series = src.series.as_ref().map(|s| p.resolve_input(s));
        let (vol, segments) = io::dicom::read_seg(&io::dicom::SegInput {
            seg: &file,
            series: series.as_deref(),
        })
        .map_err(|e| EngineError::Source(format!("{field}.file: {e}")))?;
        let names = seg_names(&segments, table.as_ref()).map_err(|unknown| {
            EngineError::Source(format!(
                "{field}.file: {}: {} match no ontology label by code or name: {}; map them with `names:` (`<segment number> <ontology name>` per line)",
                file.display(),
                if unknown.len() == 1 { "this segment does" } else { "these segments do" },
                unknown.join(", ")
            ))
        })?;
        (vol, names)
    } else {
        let vol = io::nifti::read_labels(&file)
            .map_err(|e| EngineError::Source(format!("{field}.file: {e}")))?;
        (vol, table.unwrap_or_default())
    };
    // Scanner coordinates put real scans anywhere in space; synthcohort grids are centred on
    // the world origin, so the source is centred too (its spacing and orientation kept).
    vol.grid = Grid::centered(vol.grid.dims, vol.grid.spacing_mm);
    Ok(anatomy::import::import_labels(
        &vol,
        &names,
        &vol.grid.clone(),
    ))
}

/// Ontology names of a SEG's segments: the user's table (by segment number) first, then the
/// segment's SNOMED CT type code (with its laterality), then its label text. The segments none
/// of these names are the error (described), so an organ is never silently dropped.
fn seg_names(
    segments: &[io::dicom::SegSegment],
    table: Option<&BTreeMap<u16, String>>,
) -> Result<BTreeMap<u16, String>, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for s in segments {
        let from_table = table.and_then(|t| t.get(&s.number)).cloned();
        let from_code = s.kind.as_ref().filter(|k| k.scheme == "SCT").and_then(|k| {
            anatomy::snomed::label_for_codes(
                &k.value,
                s.modifier.as_ref().map(|m| m.value.as_str()),
            )
        });
        let from_label = anatomy::import::ontology_name(&s.label);
        // Lesions are not anatomy: like a NIfTI map's lesion classes they are reported as
        // not imported (the subject's own lesions come from the cohort's conditions).
        let lesion = s
            .kind
            .as_ref()
            .is_some_and(|k| anatomy::snomed::is_lesion_code(&k.value));
        match from_table
            .or(from_code.map(str::to_string))
            .or(from_label.map(str::to_string))
        {
            Some(n) => {
                out.insert(s.number, n);
            }
            None if lesion => {
                out.insert(s.number, format!("lesion: {}", s.label));
            }
            None => unknown.push(format!(
                "segment {} `{}` ({})",
                s.number,
                s.label,
                s.kind.as_ref().map_or_else(
                    || "no type code".to_string(),
                    |k| format!("{} {} \"{}\"", k.scheme, k.value, k.meaning)
                )
            )),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// The imported maps as the engine uses them.
#[derive(Default)]
struct SourceMaps {
    /// Without `body_scaling`: the one map, resampled onto the anatomy grid.
    base: Option<Volume<u16>>,
    /// With `body_scaling`: each map made into an atlas, so its subjects vary like the
    /// shipped atlases' (organ norms, fat band, deformation); a subject is drawn from one.
    atlases: Vec<anatomy::atlas::Atlas>,
    /// File names, in the order of `atlases` (or the one of `base`).
    names: Vec<String>,
    /// Every label id any map carries (labels.json and the nnU-Net class list); None without
    /// a source (the template's set applies).
    label_ids: Option<Vec<u16>>,
}

impl SourceMaps {
    fn new(p: &Resolved, grid: &Grid, loaded: Vec<LoadedSource>) -> SourceMaps {
        let Some(ids) = SourceMaps::label_ids_of(&loaded) else {
            return SourceMaps::default();
        };
        let names = loaded.iter().map(|s| s.name.clone()).collect();
        let (base, atlases) = if p.spec.anatomy.body_scaling {
            let t = p.spec.anatomy.template;
            let atlases = loaded
                .into_iter()
                .map(|s| anatomy::atlas::from_labels(t, s.map))
                .collect();
            (None, atlases)
        } else {
            let one = loaded
                .into_iter()
                .next()
                .map(|s| subject::labels_on(&s.map, grid));
            (one, Vec::new())
        };
        SourceMaps {
            base,
            atlases,
            names,
            label_ids: Some(ids),
        }
    }

    /// Every label id the maps carry (sorted), None without a map.
    fn label_ids_of(loaded: &[LoadedSource]) -> Option<Vec<u16>> {
        if loaded.is_empty() {
            return None;
        }
        let ids: BTreeSet<u16> = loaded
            .iter()
            .flat_map(|s| s.map.data.iter().copied().filter(|&l| l != 0))
            .collect();
        Some(ids.into_iter().collect())
    }

    /// What subject `seed`'s anatomy is built on, as the manifest records it.
    fn name_for(&self, seed: u64, template: anatomy::Template) -> String {
        match self.names.get(self.pick(seed)) {
            Some(n) => n.clone(),
            None => template.name().to_string(),
        }
    }

    /// Which map subject `seed` is built on: a uniform draw from its own stream (index 1 of
    /// the anatomy stage, so the anatomy stream itself is the same with one map or several).
    fn pick(&self, seed: u64) -> usize {
        if self.atlases.len() < 2 {
            return 0;
        }
        rng::stream(seed, Stage::Anatomy, 1).random_range(0..self.atlases.len())
    }
}

/// Runs the pipeline. Progress goes to stderr unless `quiet`.
pub fn run(p: &Resolved, opts: &RunOptions) -> Result<RunSummary, EngineError> {
    let start = Instant::now();
    let sel = selection(p, opts)?;
    check_resources(p, opts)?;
    let dir = out_dir(p, opts);
    let state = dir.join(STATE_DIR);

    let a = &p.spec.anatomy;
    let grid = Grid::centered(a.size.map(|d| d as usize), a.spacing_mm);
    let mut import_note = None;
    let loaded = load_sources(p)?;
    for s in &loaded {
        if !s.report.unmapped.is_empty() {
            let names: Vec<String> = s
                .report
                .unmapped
                .iter()
                .map(|(id, n)| format!("{id} {n}"))
                .collect();
            tracing::info!(
                "note: {}: {} source label(s) have no synthcohort name and become background: {}",
                s.name,
                names.len(),
                names.join(", ")
            );
            import_note
                .get_or_insert_with(Vec::new)
                .extend(names.into_iter().map(|n| format!("{}: {n}", s.name)));
        }
        // A source whose affine lies about its orientation images fine but puts every
        // organ on the wrong side; say so before a whole cohort inherits it.
        let sides = anatomy::laterality::laterality(&s.map);
        if sides.looks_mirrored() {
            let bad: Vec<String> = sides.violations().iter().map(|c| c.to_string()).collect();
            tracing::warn!(
                "warning: anatomy.source {} looks mirrored left-right (RAS+: +x is the patient's right): {} of {} side checks fail, e.g. {}; check the file's affine",
                s.name,
                bad.len(),
                sides.checks.len(),
                bad[0]
            );
        }
    }
    let sources = SourceMaps::new(p, &grid, loaded);

    // Inputs are read before anything is written: a bad source leaves no output folder.
    prepare_dir(p, &dir, opts)?;
    write_state(p, &dir, opts, &sel)?;

    let shared = Shared {
        p,
        plan: CohortPlan::new(&p.spec),
        grid,
        sources,
        generator: generator(p)?,
        needs: needs(p),
        dir: dir.clone(),
        timings: Mutex::new(BTreeMap::new()),
        warnings: Mutex::new(Vec::new()),
    };

    // Which subjects are already complete (resume)?
    let mut done = BTreeSet::new();
    if opts.resume {
        for idx in sel
            .clone()
            .filter(|i| opts.shard.is_none_or(|sh| sh.owns(*i)))
        {
            if let Some(rec) = read_record(&state, &cohort::subject_id(idx, p.spec.cohort.size)) {
                if record_verified(&dir, &rec) {
                    done.insert(idx);
                }
            }
        }
        clean_temporaries(&dir);
    }
    let todo: Vec<u64> = sel
        .clone()
        .filter(|i| opts.shard.is_none_or(|sh| sh.owns(*i)) && !done.contains(i))
        .collect();

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
        .map_err(|e| EngineError::Threads(e.to_string()))?;
    let failures: Vec<(String, subject::SubjectError)> = pool.install(|| {
        todo.par_iter()
            .filter_map(|&idx| {
                let out = run_subject(&shared, idx);
                crate::sys::release_free_heap();
                bar.inc(1);
                out.err()
                    .map(|e| (cohort::subject_id(idx, p.spec.cohort.size), e))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut warnings = shared
        .warnings
        .lock()
        .map(|w| w.clone())
        .unwrap_or_default();
    warnings.sort();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !failures.is_empty() {
        return Err(EngineError::Subjects(failures));
    }

    let timings = shared.timings.lock().map(|m| m.clone()).unwrap_or_default();
    let facts = serde_json::json!({
        "selection": {"start": sel.start, "end": sel.end, "shard": opts.shard},
        "jobs": jobs(opts),
        "resumed": opts.resume,
        "anatomy_source_unmapped": import_note,
        "grid": shared.grid,
        "seconds": {"total_wall": start.elapsed().as_secs_f64(), "stages_cpu": timings},
        "warnings": warnings,
    });
    match opts.shard {
        // A shard writes only its own manifest; `synthcohort merge` writes the run-level files.
        Some(sh) => {
            let rows: Vec<ManifestRow> = read_records(&dir)?
                .into_iter()
                .filter(|r| sh.owns(r.index))
                .flat_map(|r| r.rows)
                .collect();
            io::atomic::write_atomic(
                &dir.join(sh.manifest_name()),
                &io::manifest::encode_manifest(&rows)?,
            )?;
        }
        None => {
            let f = Finish {
                p,
                source_ids: shared.sources.label_ids.as_deref(),
                generator: shared.generator.name(),
                provenance: facts,
            };
            finish_run(&f, &dir)?;
            if p.spec.trial.is_some() {
                trial::analyze(p, &dir)?;
            }
        }
    }
    Ok(RunSummary {
        out_dir: dir,
        generated: todo.len(),
        resumed: done.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
