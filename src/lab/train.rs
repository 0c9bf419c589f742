//! `synthcohort train`: two-stage training of a latent diffusion model on an nnU-Net-layout
//! dataset, with progress bars, a loss log (`loss.csv`), periodic checkpoints, `--resume`
//! and a model card.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use synthcohort_ldm::cpu;
use synthcohort_ldm::hu_histogram::ClassHistogram;
use synthcohort_ldm::train::{
    self, CaseSource, Hooks, OptimState, Resume, Stage, StepLog, TrainOptions,
};
use synthcohort_ldm::{
    AutodiffBackend, ChannelSpec, Ldm, LdmConfig, LdmError, Modality, Tokenizer,
};

use super::data as dataset;
use super::data::cache::{self, CacheDir};
use super::data::unlabeled::{self, Unlabeled};
use super::loss_log::{self, LossRow};
use super::LabError;

/// The `--config` file of `synthcohort train` (YAML or JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Model name, e.g. `ct-thorax`.
    pub name: String,
    pub modality: Modality,
    /// Object channels and their normalisation (`(value − offset) / scale`).
    pub channels: Vec<ChannelSpec>,
    /// synthcohort runs: the arms whose cases make the channels, in channel order.
    #[serde(default)]
    pub arms: Option<Vec<String>>,
    /// The last N subjects (by name) are held out for `eval-model`.
    #[serde(default)]
    pub hold_out: usize,
    /// Read at most this many subjects.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Resample every case to this voxel spacing (mm) before training: channels trilinear,
    /// labels nearest. Without it each case keeps its own spacing, which the model is given
    /// as a condition.
    #[serde(default)]
    pub resample_mm: Option<[f64; 3]>,
    /// CT images without labels (NIfTI, HU) that the autoencoder trains on as well, e.g. scans
    /// of other patients or at other spacings (resampled like the cases with `resample_mm`).
    /// Their labels are derived by Hounsfield window, as the atlas labels a body's
    /// unsegmented voxels (body, subcutaneous and torso fat, skeletal muscle, soft tissue,
    /// intestinal gas; a tissue the model has no class for is background). They have no
    /// prompt and their labels name no organ, so the denoiser and the class statistics use
    /// the labelled cases only. Relative paths are relative to this config file's folder.
    /// CT only: an MR image has no Hounsfield units to derive labels from.
    #[serde(default)]
    pub unlabeled_images: Vec<PathBuf>,
    /// Autoencoder widths at full, 1/2, 1/4 resolution.
    #[serde(default)]
    pub autoencoder_channels: Option<[usize; 3]>,
    /// Denoiser widths at latent, 1/2, 1/4 latent resolution.
    #[serde(default)]
    pub denoiser_channels: Option<[usize; 3]>,
    #[serde(default)]
    pub training: TrainOptions,
    /// Companding width of the shortcut latent channels (residual units), e.g. 0.1 for a
    /// real CT whose organs vary by a few HU beside lung, bone and gas (see
    /// `LdmConfig::latent_compand`); absent: linear.
    #[serde(default)]
    pub latent_compand: Option<f32>,
    /// Guidance scales to recommend in the checkpoint (set from an evaluation of an earlier
    /// run of the same config; see the model card).
    #[serde(default)]
    pub guidance: Option<synthcohort_ldm::Guidance>,
}

pub fn read_config(path: &Path) -> Result<TrainConfig, LabError> {
    let text = crate::io::bounded::read_text(
        path,
        crate::io::bounded::SMALL_TEXT_BYTES,
        "training config",
    )?;
    let bad = |msg: String| LabError::Input(format!("{}: {msg}", path.display()));
    let (value, _) = crate::pipeline::yaml::parse(&text).map_err(|issues| {
        let first = issues.first().map(|i| format!("{i:?}")).unwrap_or_default();
        bad(format!("not valid YAML: {first}"))
    })?;
    let mut cfg: TrainConfig = serde_path_to_error::deserialize(value)
        .map_err(|e| bad(format!("`{}`: {}", e.path(), e.inner())))?;
    if cfg.channels.is_empty() {
        return Err(bad("`channels` is empty".into()));
    }
    if let Some(a) = &cfg.arms {
        if a.len() != cfg.channels.len() {
            return Err(LabError::Input(format!(
                "{}: {} arms for {} channels; give one arm per channel",
                path.display(),
                a.len(),
                cfg.channels.len()
            )));
        }
    }
    cfg.training.check().map_err(|e| bad(e.to_string()))?;
    check_unlabeled(&mut cfg, path)?;
    Ok(cfg)
}

/// Resolves `unlabeled_images` against the config's folder and refuses what cannot be used.
fn check_unlabeled(cfg: &mut TrainConfig, path: &Path) -> Result<(), LabError> {
    if cfg.unlabeled_images.is_empty() {
        return Ok(());
    }
    let bad =
        |msg: String| LabError::Input(format!("{}: `unlabeled_images`: {msg}", path.display()));
    if cfg.modality == Modality::Mri {
        return Err(bad("an MR image has no Hounsfield units to derive tissue labels from (CT only); give MR images with their label maps in the dataset instead".into()));
    }
    if cfg.channels.len() != 1 {
        return Err(bad(format!(
            "an unlabeled image is one channel, the model has {}",
            cfg.channels.len()
        )));
    }
    let base = path.parent().unwrap_or(Path::new(""));
    cfg.unlabeled_images = unlabeled::resolve(&cfg.unlabeled_images, base);
    if let Some(missing) = cfg.unlabeled_images.iter().find(|p| !p.is_file()) {
        return Err(bad(format!("{} is not a file", missing.display())));
    }
    Ok(())
}

/// Training and held-out split: the last `hold_out` subjects are held out.
pub fn split(n: usize, hold_out: usize) -> (Vec<usize>, Vec<usize>) {
    let h = hold_out.min(n.saturating_sub(1));
    ((0..n - h).collect(), (n - h..n).collect())
}

#[derive(Serialize, Deserialize)]
struct State {
    stage: Stage,
    step: usize,
}

const CHECKPOINT: &str = "checkpoint";
const LOSS_CSV: &str = "loss.csv";
pub const HELD_OUT_FILE: &str = "held_out.json";

struct TrainHooks {
    out: PathBuf,
    csv: csv::Writer<std::fs::File>,
    bar: ProgressBar,
    ema: f64,
    quiet: bool,
    started: std::time::Instant,
}

impl TrainHooks {
    fn bar(total: usize, start: usize, label: &str, quiet: bool) -> ProgressBar {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_position(start as u64);
        bar
    }
}

impl<B: AutodiffBackend> Hooks<B> for TrainHooks {
    fn step(&mut self, log: &StepLog) {
        self.ema = if self.ema == 0.0 {
            log.loss
        } else {
            0.98 * self.ema + 0.02 * log.loss
        };
        let _ = loss_log::append(&mut self.csv, log, self.started.elapsed().as_secs_f64());
        self.bar.set_position(log.step as u64);
        self.bar.set_message(format!("loss {:.4}", self.ema));
    }

    fn checkpoint(
        &mut self,
        m: &Ldm<B>,
        cfg: &LdmConfig,
        stage: Stage,
        step: usize,
        optim: &dyn OptimState,
    ) -> Result<(), LdmError> {
        let dir = self.out.join(CHECKPOINT);
        synthcohort_ldm::model::save(m, cfg, &dir)?;
        optim.save(&dir.join("optimizer"))?;
        let _ = self.csv.flush();
        let state = serde_json::to_string(&State { stage, step }).unwrap_or_default();
        std::fs::write(dir.join("state.json"), state).map_err(|e| LdmError::io(&dir, e))?;
        if self.quiet {
            return Ok(());
        }
        self.bar
            .println(format!("checkpoint: {stage:?} step {step}"));
        Ok(())
    }
}

pub struct TrainArgs<'a> {
    pub data: &'a Path,
    pub config: &'a Path,
    pub out: &'a Path,
    pub resume: bool,
    /// Keep the finished model in `out` and only (re)measure its sampling statistics on the
    /// training data: residual texture and block spread (config.json and the model card are
    /// rewritten, the weights kept).
    pub statistics_only: bool,
    /// `cpu`, or `cuda` / `cuda:N` (feature `cuda`).
    pub device: &'a str,
    pub quiet: bool,
}

/// Runs both stages and writes the finished model into `out`.
pub fn run(a: &TrainArgs) -> Result<LdmConfig, LabError> {
    let tc = read_config(a.config)?;
    // Refuse an unusable device before reading the data.
    let device = cpu::Device::parse(a.device).map_err(|e| match e {
        LdmError::Config(m) => LabError::Input(format!("--device: {m}")),
        e => e.into(),
    })?;
    let ds = dataset::open(a.data, tc.arms.as_deref(), tc.channels.len(), tc.limit)?;
    if ds.subjects[0].images.len() != tc.channels.len() {
        return Err(LabError::Input(format!(
            "the dataset has {} channels per case, the config {}",
            ds.subjects[0].images.len(),
            tc.channels.len()
        )));
    }
    let (train_idx, held) = split(ds.len(), tc.hold_out);
    // One pass over the label maps, one at a time: the classes the training cases hold, and
    // every subject's spacing for the model card.
    let mut seen = BTreeSet::new();
    let mut spacings = BTreeSet::new();
    for i in 0..ds.len() {
        let mut labels = ds.read_labels(i)?;
        if let Some(s) = tc.resample_mm {
            let to = dataset::target_grid(&labels.grid, s, &ds.subjects[i].name)?;
            labels = dataset::resample_labels(&labels, &to);
        }
        spacings.insert(format!("{:?}", labels.grid.spacing_mm));
        if i < train_idx.len() {
            dataset::note_seen(&mut seen, &ds.class_of_id, &labels.data);
        }
    }
    let unlabeled: Vec<(PathBuf, String)> = tc
        .unlabeled_images
        .iter()
        .map(|p| Ok((p.clone(), crate::io::hash::sha256_file(p)?)))
        .collect::<Result<_, LabError>>()?;
    let extra: Vec<(String, String)> = unlabeled
        .iter()
        .map(|(p, h)| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            (name.into_owned(), h.clone())
        })
        .collect();
    let data_hash = ds.hash(&extra)?;
    let (classes, absent) = dataset::model_classes_seen(&ds.class_of_id, &seen);
    if !absent.is_empty() {
        tracing::warn!(
            "{} class(es) of dataset.json have no voxel in the training cases and are not model classes (drawn by their mirror or a class of their tissue, or refused at validate): {}",
            absent.len(),
            absent.join(", ")
        );
    }
    if classes.len() > 255 {
        return Err(LabError::Input(format!(
            "{} label classes; at most 255 are supported",
            classes.len()
        )));
    }
    let tokenizer = Tokenizer::build(
        train_idx.iter().map(|&i| ds.subjects[i].prompt.as_str()),
        32,
    );
    let mut cfg = LdmConfig::for_data(
        &tc.name,
        tc.modality,
        tc.channels.clone(),
        classes,
        tokenizer,
    );
    if let Some(c) = tc.autoencoder_channels {
        cfg.autoencoder.channels = c;
    }
    if let Some(c) = tc.denoiser_channels {
        cfg.unet.channels = c;
    }
    cfg.guidance = tc.guidance;
    cfg.latent_compand = tc.latent_compand;
    let opts = &tc.training;
    cfg.training = synthcohort_ldm::TrainingRecord {
        data_hash,
        cases: train_idx.len(),
        autoencoder_steps: opts.ae_steps,
        denoiser_steps: opts.dm_steps,
        seed: opts.seed,
        ..Default::default()
    };
    cfg.check().map_err(LabError::from)?;
    let held_names: Vec<&str> = held.iter().map(|&i| ds.subjects[i].name.as_str()).collect();
    let card = CardFacts {
        tc: &tc,
        dir: &ds.dir,
        spacings: spacings.into_iter().collect(),
        held: &held_names,
        absent: &absent,
    };
    if a.statistics_only {
        return refit_statistics(a, &device, &cfg, &ds, &train_idx, &unlabeled, &card);
    }

    std::fs::create_dir_all(a.out).map_err(LabError::file("cannot create", a.out))?;
    let split_info = serde_json::json!({"arms": tc.arms, "held_out": held_names});
    let split_path = a.out.join(HELD_OUT_FILE);
    std::fs::write(&split_path, serde_json::to_string_pretty(&split_info)?)
        .map_err(LabError::file("cannot write", &split_path))?;
    let ck = a.out.join(CHECKPOINT);
    let state: Option<State> = if a.resume {
        let p = ck.join("state.json");
        let s = std::fs::read_to_string(&p).map_err(LabError::file("--resume: cannot read", &p))?;
        Some(
            serde_json::from_str(&s)
                .map_err(|e| LabError::Input(format!("--resume: {}: {e}", p.display())))?,
        )
    } else {
        None
    };
    let csv_path = a.out.join(LOSS_CSV);
    let mut model = match &state {
        Some(s) => {
            let (m, saved) = cpu::TrainModel::load(&ck, &device).map_err(LabError::from)?;
            if saved.training.data_hash != cfg.training.data_hash {
                return Err(LabError::Input(
                    "--resume: the checkpoint was trained on different data".into(),
                ));
            }
            cfg.latent_scale = saved.latent_scale;
            let kept = loss_log::keep_until(loss_log::read(&csv_path), s.stage, s.step);
            loss_log::write(&csv_path, &kept).map_err(|e| csv_error(&csv_path, e))?;
            m
        }
        None => {
            loss_log::write(&csv_path, &[]).map_err(|e| csv_error(&csv_path, e))?;
            cpu::TrainModel::init(&cfg, opts.seed, &device).map_err(LabError::from)?
        }
    };
    let csv = std::fs::OpenOptions::new()
        .append(true)
        .open(&csv_path)
        .map_err(LabError::file("cannot append to", &csv_path))?;
    let csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(csv);
    let opt_path = ck.join("optimizer");
    let mut hooks = TrainHooks {
        out: a.out.to_path_buf(),
        csv,
        bar: ProgressBar::hidden(),
        ema: 0.0,
        quiet: a.quiet,
        started: std::time::Instant::now(),
    };
    // The cases go to disk one at a time and are read back by crops: training holds about
    // one case and a batch, not the dataset.
    let cache_dir = CacheDir::create(a.out)?;
    let bar = TrainHooks::bar(train_idx.len() + unlabeled.len(), 0, "data", a.quiet);
    let prepared = cache::prepare(
        &ds,
        &train_idx,
        &cfg.classes,
        tc.resample_mm,
        &unlabeled,
        cache_dir.path(),
        &mut |k| bar.set_position(k as u64),
    )?;
    bar.finish();
    let cases = prepared.cases;
    let labelled = cases.labelled_only();
    tracing::info!(
        "training `{}` on {} cases ({} held out) and {} unlabeled images, {} classes, vocabulary {}",
        cfg.name,
        labelled.len(),
        held.len(),
        prepared.unlabeled.len(),
        cfg.classes.len(),
        cfg.tokenizer.len()
    );
    let stage1_done = matches!(&state, Some(s) if s.stage == Stage::Denoiser);
    let logged = loss_log::read(&csv_path);
    cfg.training.autoencoder_loss = loss_log::smoothed(&logged, "autoencoder");
    if !stage1_done {
        hooks.ema = cfg.training.autoencoder_loss;
        let start = state.as_ref().map_or(0, |s| s.step);
        hooks.bar = TrainHooks::bar(opts.ae_steps, start, "autoencoder", a.quiet);
        let resume = state.as_ref().map(|s| Resume {
            stage: s.stage,
            step: s.step,
            optimizer: &opt_path,
        });
        model = model
            .train_autoencoder(&cfg, &cases, opts, resume, &mut hooks)
            .map_err(LabError::from)?;
        hooks.bar.finish();
        cfg.training.autoencoder_loss = hooks.ema;
    }
    hooks.ema = if stage1_done {
        loss_log::smoothed(&logged, "denoiser")
    } else {
        0.0
    };
    let hist = ClassHistogram::of_cases(&cfg, &labelled).map_err(LabError::from)?;
    let (mut latents, texture) =
        latents_and_texture(&model, &cfg, &labelled, hist.as_ref(), a.quiet)?;
    cfg.texture = Some(texture);
    cfg.metal_classes = Some(metal_classes(&cfg, hist.as_ref()));
    for (z, _) in &mut latents {
        cfg.compand_latent(z);
    }
    cfg.latent_scale = train::latent_scale(&latents, cfg.autoencoder.latent_channels);
    let start = state
        .as_ref()
        .filter(|s| s.stage == Stage::Denoiser)
        .map_or(0, |s| s.step);
    hooks.bar = TrainHooks::bar(opts.dm_steps, start, "denoiser", a.quiet);
    let resume = state
        .as_ref()
        .filter(|s| s.stage == Stage::Denoiser)
        .map(|s| Resume {
            stage: s.stage,
            step: s.step,
            optimizer: &opt_path,
        });
    let model = model
        .train_denoiser(&cfg, &labelled, &latents, opts, resume, &mut hooks)
        .map_err(LabError::from)?;
    hooks.bar.finish();
    cfg.training.denoiser_loss = hooks.ema;
    cfg.spread = Some(block_spread(&model, &cfg, &labelled, a.quiet)?);
    model.save(&cfg, a.out).map_err(LabError::from)?;
    drop(cache_dir);
    let csv_path = a.out.join(LOSS_CSV);
    let csv = loss_log::read(&csv_path);
    let png = a.out.join("loss.png");
    std::fs::write(&png, loss_plot(&csv)).map_err(LabError::file("cannot write", &png))?;
    card.write(a.out, &cfg, &prepared.unlabeled)?;
    tracing::info!("model written to {}", a.out.display());
    Ok(cfg)
}

/// `train --statistics-only`: the finished model in `a.out` (trained on this data with this
/// config, else refused) measures its sampling statistics on the training cases again — the
/// residual texture and the block spread — and its config.json and card are rewritten, the
/// weights untouched. `fresh` is the configuration the data and config would train.
fn refit_statistics(
    a: &TrainArgs,
    device: &cpu::Device,
    fresh: &LdmConfig,
    ds: &dataset::Listing,
    train_idx: &[usize],
    unlabeled: &[(PathBuf, String)],
    card: &CardFacts,
) -> Result<LdmConfig, LabError> {
    let (model, mut saved) = cpu::TrainModel::load(a.out, device).map_err(LabError::from)?;
    if saved.training.data_hash != fresh.training.data_hash || saved.classes != fresh.classes {
        return Err(LabError::Input(format!(
            "--statistics-only: the model in {} was not trained on this data with this config",
            a.out.display()
        )));
    }
    let cache_dir = CacheDir::create(a.out)?;
    let prepared = cache::prepare(
        ds,
        train_idx,
        &saved.classes,
        card.tc.resample_mm,
        unlabeled,
        cache_dir.path(),
        &mut |_| {},
    )?;
    let labelled = prepared.cases.labelled_only();
    let hist = ClassHistogram::of_cases(&saved, &labelled).map_err(LabError::from)?;
    let (_, texture) = latents_and_texture(&model, &saved, &labelled, hist.as_ref(), a.quiet)?;
    saved.texture = Some(texture);
    saved.metal_classes = Some(metal_classes(&saved, hist.as_ref()));
    saved.spread = Some(block_spread(&model, &saved, &labelled, a.quiet)?);
    drop(cache_dir);
    synthcohort_ldm::model::save_config(&saved, a.out).map_err(LabError::from)?;
    card.write(a.out, &saved, &prepared.unlabeled)?;
    tracing::info!("sampling statistics of {} measured again", a.out.display());
    Ok(saved)
}

/// The trained model's per-class block spread ([`synthcohort_ldm::spread`]): it samples up to
/// `SPREAD_CASES` labelled cases once at the default number of steps, with a bar.
fn block_spread(
    model: &cpu::TrainModel,
    cfg: &LdmConfig,
    labelled: &dyn CaseSource,
    quiet: bool,
) -> Result<synthcohort_ldm::spread::BlockSpread, LabError> {
    let bar = TrainHooks::bar(
        labelled.len().min(synthcohort_ldm::train::SPREAD_CASES),
        0,
        "block spread",
        quiet,
    );
    let spread = model
        .fit_spread(
            cfg,
            labelled,
            synthcohort_ldm::DEFAULT_STEPS,
            cfg.training.seed,
            &mut |k| bar.set_position(k as u64),
        )
        .map_err(LabError::from)?;
    bar.finish();
    Ok(spread)
}

/// The classes of the labelled cases that hold metal ([`synthcohort_ldm::metal`]; none
/// without a CT histogram), each logged with its share, for generation to draw by a
/// stand-in.
fn metal_classes(cfg: &LdmConfig, hist: Option<&ClassHistogram>) -> Vec<String> {
    let found = hist.map_or_else(Vec::new, |h| {
        synthcohort_ldm::metal::metal_classes(h, &cfg.classes)
    });
    for (name, share) in &found {
        tracing::warn!(
            "{name}: {:.1} % of its training voxels are above {} HU (metal: an implant?); samples draw it by a stand-in class, not as itself",
            100.0 * share,
            synthcohort_ldm::metal::METAL_HU
        );
    }
    found.into_iter().map(|(name, _)| name).collect()
}

/// The labelled cases' posterior-mean latents (unscaled, not companded) and the trained
/// autoencoder's residual texture measured on them, each with a bar; focal findings, by the
/// cases' CT histogram `hist`, left out of the texture.
fn latents_and_texture(
    model: &cpu::TrainModel,
    cfg: &LdmConfig,
    labelled: &dyn CaseSource,
    hist: Option<&ClassHistogram>,
    quiet: bool,
) -> Result<(cpu::Latents, synthcohort_ldm::texture::ResidualTexture), LabError> {
    let bar = TrainHooks::bar(labelled.len(), 0, "latents", quiet);
    let latents = model
        .encode_cases(cfg, labelled, &mut |k| bar.set_position(k as u64))
        .map_err(LabError::from)?;
    bar.finish();
    let parenchyma: Vec<bool> = cfg
        .classes
        .iter()
        .map(|c| crate::tissue::is_parenchyma(c))
        .collect();
    let focal = hist.map_or_else(
        || vec![None; cfg.classes.len()],
        |h| synthcohort_ldm::focal::ceilings(h, &parenchyma),
    );
    let bar = TrainHooks::bar(2 * labelled.len(), 0, "texture", quiet);
    let texture = model
        .fit_texture(cfg, labelled, &latents, &focal, &mut |k| {
            bar.set_position(k as u64)
        })
        .map_err(LabError::from)?;
    bar.finish();
    for (name, (k, ceiling)) in cfg
        .classes
        .iter()
        .zip(texture.focal_voxels.iter().zip(&focal))
    {
        if *k > 0 {
            tracing::info!(
                "{name}: {k} training voxel(s) above {:.0} HU left out of the stochastic detail as a focal finding (a stone, a calcification?)",
                ceiling.unwrap_or(f32::NAN)
            );
        }
    }
    Ok((latents, texture))
}

/// Both stages' losses against step (moving average over 20 steps, log–log), from the
/// loss log, so a resumed run plots its whole history.
fn loss_plot(rows: &[LossRow]) -> Vec<u8> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for stage in ["autoencoder", "denoiser"] {
        let pts = loss_log::series(rows, stage);
        let smoothed = pts
            .iter()
            .enumerate()
            .map(|(i, &(x, _))| {
                let w = &pts[i.saturating_sub(19)..=i];
                (x, w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64)
            })
            .collect();
        series.push((stage.to_string(), smoothed));
    }
    crate::trial::plots::plot_xy(
        "Training loss (20-step mean)",
        "step",
        "loss",
        &series,
        true,
    )
}

/// What the model card says of the data and the split, gathered before training.
struct CardFacts<'a> {
    tc: &'a TrainConfig,
    dir: &'a Path,
    spacings: Vec<String>,
    held: &'a [&'a str],
    absent: &'a [String],
}

impl CardFacts<'_> {
    /// Writes the card; a section of the previous card whose heading says "(added by hand"
    /// is kept, with everything after it, so `--statistics-only` or `--resume` does not
    /// erase what a person wrote there (the shipped cards' held-out evaluations).
    fn write(&self, out: &Path, cfg: &LdmConfig, unlabeled: &[Unlabeled]) -> Result<(), LabError> {
        let mut text = model_card(cfg, self, unlabeled);
        let path = out.join("MODEL_CARD.md");
        if let Some(kept) = std::fs::read_to_string(&path)
            .ok()
            .as_deref()
            .and_then(hand_written_tail)
        {
            text = format!("{}\n\n{kept}", text.trim_end());
        }
        std::fs::write(&path, text).map_err(LabError::file("cannot write", &path))
    }
}

/// The part of a model card from its first `## … (added by hand…` heading on.
fn hand_written_tail(card: &str) -> Option<&str> {
    let mut at = 0;
    for line in card.split_inclusive('\n') {
        if line.starts_with("## ") && line.contains("(added by hand") {
            return Some(&card[at..]);
        }
        at += line.len();
    }
    None
}

fn model_card(cfg: &LdmConfig, facts: &CardFacts, unlabeled: &[Unlabeled]) -> String {
    let CardFacts {
        tc,
        dir,
        spacings,
        held,
        absent,
    } = facts;
    let t = &cfg.training;
    let o = &tc.training;
    let mut s = String::new();
    let _ = writeln!(s, "# Model card: `{}`\n", cfg.name);
    let _ = writeln!(
        s,
        "Latent diffusion model of synthcohort ({:?} tissue object: {}).\n",
        cfg.modality,
        cfg.channels
            .iter()
            .map(|c| format!("{} [{}]", c.name, c.unit))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "## Training data\n");
    let _ = writeln!(s, "- Dataset: `{}` ({} subjects used for training, {} held out for evaluation: `held_out.json`).", dir.display(), t.cases, held.len());
    if !unlabeled.is_empty() {
        let _ = writeln!(s, "- Unlabeled images, for the autoencoder only (labels derived by Hounsfield window: body, fat, muscle, gas, soft tissue; no prompt; not in the class statistics):");
        for u in unlabeled {
            let _ = writeln!(
                s,
                "  - `{}`: SHA-256 `{}`, {} × {} × {} voxels of {:?} mm.",
                u.path.display(),
                u.sha256,
                u.dims[0],
                u.dims[1],
                u.dims[2],
                u.spacing_mm
            );
        }
    }
    let _ = writeln!(
        s,
        "- Data hash (SHA-256 over every file read): `{}`.",
        t.data_hash
    );
    let _ = writeln!(
        s,
        "- Label classes ({}): {}.",
        cfg.classes.len(),
        cfg.classes.join(", ")
    );
    let _ = writeln!(
        s,
        "- Voxel spacing (mm) of the cases: {}{}.",
        spacings.join(", "),
        if tc.resample_mm.is_some() {
            " (every case resampled to it: `resample_mm`, channels trilinear, labels nearest)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "- Prompt vocabulary: {} tokens.\n", cfg.tokenizer.len());
    let _ = writeln!(s, "## Training\n");
    let _ = writeln!(
        s,
        "- Seed {}; autoencoder {} steps (batch {}, crop {:?}, lr {}), final smoothed loss {:.4}.",
        t.seed, t.autoencoder_steps, o.ae_batch, o.ae_crop, o.ae_lr, t.autoencoder_loss
    );
    if !o.ae_flip.is_empty() || o.ae_gain_jitter > 0.0 || o.ae_shift_jitter > 0.0 {
        let _ = writeln!(
            s,
            "- Autoencoder augmentation: mirrored along {:?} (each with probability ½, labels alike), gain 1 ± {}, shift ± {} (network units).",
            o.ae_flip, o.ae_gain_jitter, o.ae_shift_jitter
        );
    }
    let _ = writeln!(s, "- Denoiser + text encoder {} steps (batch {}, latent crop {:?}, {:.0} % of crops centred on an organ, lr {}), {:?}, condition dropout text {} / labels {}; final smoothed loss {:.4}.", t.denoiser_steps, o.dm_batch, o.dm_crop, 100.0 * o.organ_crops, o.dm_lr, cfg.scheduler, o.drop_text, o.drop_labels, t.denoiser_loss);
    let _ = writeln!(
        s,
        "- Latent scale per channel {:.4?}{}. Loss curves: `loss.csv`, plotted in `loss.png`.\n",
        cfg.latent_scale,
        cfg.latent_compand.map_or(String::new(), |a| format!(
            ", after companding the shortcut channel by {a}·asinh(z / {a})"
        ))
    );
    if let Some(t) = &cfg.texture {
        let nc = &t.neighbour_correlation[0];
        let _ = writeln!(s, "- Stochastic detail (`synthcohort_ldm::texture`): per class, 129 quantiles of the autoencoder's residual on the {} training voxels, and its spatial correlation (neighbour correlation of the normal scores x / y / z: {:.2} / {:.2} / {:.2}). Samples draw a Gaussian-copula field with them and add it without changing any 4×4×4 block's mean: noise and sub-block texture with the data's values and correlation length, not anatomy (no vessel tree, no trabecular network as such).{}\n", t.voxels, nc[0], nc[1], nc[2], focal_line(cfg, t));
    }
    if let Some(sp) = &cfg.spread {
        // The classes whose blocks the calibration changes most, for a reader to judge.
        let mut moved: Vec<(f32, String)> = sp.factors[0]
            .iter()
            .zip(&cfg.classes)
            .zip(&sp.blocks)
            .filter(|((f, _), _)| (**f - 1.0).abs() > 1e-6)
            .map(|((f, name), b)| (*f, format!("{name} {f:.2} ({b} blocks)")))
            .collect();
        moved.sort_by(|a, b| (b.0.ln().abs()).total_cmp(&a.0.ln().abs()));
        let listed: Vec<String> = moved.iter().take(10).map(|m| m.1.clone()).collect();
        let _ = writeln!(s, "- Block spread (`synthcohort_ldm::spread`): per class, the factor a sample's 4×4×4 block deviations from its class means are scaled by, so that they vary as much as the training data's (measured on blocks wholly inside one class, the model sampling {} training case(s) once with {} steps at labels guidance {}; classes with fewer than {} such blocks keep 1). {} of {} classes changed; most: {}.\n", sp.cases, sp.steps, sp.guidance_labels, synthcohort_ldm::spread::MIN_BLOCKS, moved.len(), cfg.classes.len(), if listed.is_empty() { "none".to_string() } else { listed.join(", ") });
    }
    if let Some(g) = cfg.guidance {
        let _ = writeln!(s, "## Use\n");
        let _ = writeln!(s, "- Recommended classifier-free guidance: text {} / labels {} (from the evaluation of this config; pipelines and `eval-model` use these unless they set their own).\n", g.text, g.labels);
    }
    let _ = writeln!(s, "## Limits\n");
    let _ = writeln!(s, "- {}", data_origin(dir));
    if !cfg.metal_classes().is_empty() {
        let _ = writeln!(s, "- Metal in the training data (`synthcohort_ldm::metal`: at least {:.0} % of a class's training voxels above {} HU — an implant and its streaks): {}. Generation never draws these classes as themselves but by their mirror or another class of their tissue (else the procedural renderer or a refusal, as for unseen labels), so a label that says \"femur\" does not come with a prosthesis; the streaks an implant casts on its neighbours stay in what the model learned of them.", 100.0 * synthcohort_ldm::metal::METAL_FRACTION, synthcohort_ldm::metal::METAL_HU, cfg.metal_classes().join(", "));
    }
    if !absent.is_empty() {
        let _ = writeln!(s, "- Classes the data name but no training case holds, so not model classes (drawn by their mirror or a class of their tissue, by the procedural renderer with `generator.unseen_labels: procedural`, or refused): {}.", absent.join(", "));
    }
    let words: Vec<&str> = cfg
        .tokenizer
        .vocab
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('[') && !w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let _ = writeln!(
        s,
        "- Prompt words it was trained with (any other word is refused at `validate`): {}.",
        if words.is_empty() {
            "none".to_string()
        } else {
            words.join(", ")
        }
    );
    let _ = writeln!(s, "- {} training cases: what varies between them (patients, scanners, contrast phases) is all the variety it can draw.", t.cases);
    let _ = writeln!(s, "- To train on real data: put images and label maps in the nnU-Net layout (`imagesTr/`, `labelsTr/`, `dataset.json` with label names from `synthcohort labels`), add `prompts.jsonl` (`{{\"case\": …, \"prompt\": …}}`), and run `synthcohort train --data DIR --config CONFIG --out DIR`.");
    let _ = writeln!(
        s,
        "- Evaluation figures: see `eval/report.md` (written by `synthcohort eval-model`)."
    );
    s
}

/// The card's account of the focal findings the stochastic detail left out, or nothing.
fn focal_line(cfg: &LdmConfig, t: &synthcohort_ldm::texture::ResidualTexture) -> String {
    let left: Vec<String> = cfg
        .classes
        .iter()
        .zip(&t.focal_voxels)
        .filter(|(_, &k)| k > 0)
        .map(|(name, k)| format!("{name} {k}"))
        .collect();
    if left.is_empty() {
        return String::new();
    }
    format!(
        " Left out of it as focal findings (`synthcohort_ldm::focal`: voxels of a solid organ or muscle above both their class's median + {} robust SDs and {} HU — a stone, a calcification, an implant's streak — which the detail would scatter over every sample as specks), voxels per class: {}.",
        synthcohort_ldm::focal::FOCAL_SDS,
        synthcohort_ldm::focal::CALCIUM_HU,
        left.join(", ")
    )
}

/// What the card says the training data were, from the data folder itself: a synthcohort run
/// leaves `provenance.json` naming its generator and pipeline; anything else is external data.
fn data_origin(dir: &Path) -> String {
    let prov = std::fs::read(dir.join("provenance.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    match prov {
        Some(v) => {
            let generator = v["generator"].as_str().unwrap_or("unknown").to_string();
            let pipeline = v["pipeline"]["name"]
                .as_str()
                .unwrap_or("unknown")
                .to_string();
            let sha = v["pipeline_sha256"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(12)
                .collect::<String>();
            format!(
                "Trained on synthcohort output (generator `{generator}`, pipeline `{pipeline}` {sha}), not on real scans: it reproduces that generator's texture, tissue means and the diffuse diseases named in prompts, not real patient appearance."
            )
        }
        None => {
            let mut s =
                "Trained on external data (no synthcohort provenance.json in the data folder)"
                    .to_string();
            let dj = std::fs::read(dir.join("dataset.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            // nnU-Net's dataset.json carries these fields; quote what the data say of themselves.
            let said: Vec<String> = ["description", "reference", "licence", "release"]
                .iter()
                .filter_map(|k| {
                    let v = dj.as_ref()?.get(*k)?.as_str()?.trim();
                    (!v.is_empty()).then(|| format!("{k}: {v}"))
                })
                .collect();
            if said.is_empty() {
                s.push_str(": see the dataset's own documentation for its sources and licences; this card cannot vouch for them.");
            } else {
                s.push_str(&format!(
                    "; its dataset.json says — {}. The card quotes them and cannot vouch for them.",
                    said.join("; ")
                ));
            }
            s
        }
    }
}

fn csv_error(path: &Path, e: csv::Error) -> LabError {
    LabError::File {
        op: "cannot write",
        path: path.to_path_buf(),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::hand_written_tail;

    #[test]
    fn a_hand_written_card_section_is_found_with_everything_after_it() {
        let card = "# m\n\n## Limits\n\n- x\n\n## Held-out evaluation (added by hand; …)\n\nfigures\n\n## More\ntext\n";
        assert_eq!(
            hand_written_tail(card),
            Some("## Held-out evaluation (added by hand; …)\n\nfigures\n\n## More\ntext\n")
        );
        assert_eq!(
            hand_written_tail("# m\n\n## Limits\n- added by hand\n"),
            None
        );
    }
}
