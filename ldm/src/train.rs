//! Two-stage training: the autoencoder on object crops, then the denoiser (with the text
//! encoder) on cached posterior-mean latents. The loops are ours (burn::optim); progress,
//! loss logs and checkpoint files are the caller's, through [`Hooks`]. Cases come from a
//! [`CaseSource`]: memory, or a folder read a crop at a time ([`DiskCases`]), so a dataset
//! need not fit in memory.
//!
//! Every random draw of step `s` comes from a ChaCha stream seeded by (seed, stage, s), so
//! a run resumed at step `s` from a checkpoint repeats the uninterrupted run.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkGzFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{backend::Backend, ElementConversion, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::model::{decode_physical, pad_volume, pooled_fractions, Ldm, LdmConfig, AE_FACTOR};
use crate::sampler::GuidanceChoice;
use crate::scheduler::{Scheduler, Solver};
use crate::spread::{BlockSpread, SpreadFit};
use crate::texture::{ResidualTexture, TextureFit};
use crate::unet::Cond;
use crate::LdmError;

mod augment;
mod options;
pub(crate) mod source;

pub use augment::Axis;
pub use options::TrainOptions;
pub use source::{CaseParts, CaseSource, DiskCaseWriter, DiskCases};

/// One training case: physical values channel-major (`channels × nx·ny·nz`, x fastest),
/// class indices, grid and prompt.
#[derive(Clone, Debug)]
pub struct Case {
    pub object: Vec<f32>,
    pub classes: Vec<u8>,
    pub dims: [usize; 3],
    pub spacing_mm: [f32; 3],
    pub prompt: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Autoencoder,
    Denoiser,
}

/// One logged step.
#[derive(Clone, Debug)]
pub struct StepLog {
    pub stage: Stage,
    pub step: usize,
    pub loss: f64,
    /// Stage 1: (L1, gradient L1, KL); stage 2: (loss, 0, 0).
    pub parts: [f64; 3],
}

/// What the training loop asks of its caller.
pub trait Hooks<B: AutodiffBackend> {
    fn step(&mut self, log: &StepLog);
    /// Called every `checkpoint_every` steps and at the end of each stage.
    fn checkpoint(
        &mut self,
        model: &Ldm<B>,
        cfg: &LdmConfig,
        stage: Stage,
        step: usize,
        optim: &dyn OptimState,
    ) -> Result<(), LdmError>;
}

/// Lets hooks save the optimizer without naming its type. The recorder appends `.mpk.gz` to
/// the path; [`Resume::optimizer`] takes the same path without it.
pub trait OptimState {
    fn save(&self, path: &Path) -> Result<(), LdmError>;
}

struct Saver<'a, O, B, M>(&'a O, std::marker::PhantomData<(B, M)>);

fn saver<O, B, M>(o: &O) -> Saver<'_, O, B, M> {
    Saver(o, std::marker::PhantomData)
}

impl<O, B, M> OptimState for Saver<'_, O, B, M>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    fn save(&self, path: &Path) -> Result<(), LdmError> {
        let rec = NamedMpkGzFileRecorder::<FullPrecisionSettings>::new();
        // The recorder appends its extension to `path`.
        crate::model::remove_before_replacing(&path.with_extension("mpk.gz"))?;
        Recorder::<B>::record(&rec, self.0.to_record(), path.to_path_buf())
            .map(|_| ())
            .map_err(|e| LdmError::Weights(format!("{}: {e}", path.display())))
    }
}

fn load_optim<B, M, O>(optim: O, path: &Path, device: &B::Device) -> Result<O, LdmError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let rec = NamedMpkGzFileRecorder::<FullPrecisionSettings>::new();
    let record = Recorder::<B>::load(&rec, path.to_path_buf(), device)
        .map_err(|e| LdmError::Weights(format!("{}: {e}", path.display())))?;
    Ok(optim.load_record(record))
}

/// Where a run starts: fresh, or from a checkpoint's stage/step and optimizer file.
#[derive(Clone, Debug)]
pub struct Resume<'a> {
    pub stage: Stage,
    pub step: usize,
    pub optimizer: &'a Path,
}

fn step_rng(seed: u64, stage: Stage, step: usize) -> ChaCha8Rng {
    let tag = match stage {
        Stage::Autoencoder => 0x4145_u64,
        Stage::Denoiser => 0x444d_u64,
    };
    ChaCha8Rng::seed_from_u64(
        seed ^ (tag << 48) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

fn normals(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

/// A random crop (zero/background padded where the case is smaller) of a channel-major
/// volume with `ch` channels.
fn crop<T: Copy + Default>(
    v: &[T],
    ch: usize,
    dims: [usize; 3],
    size: [usize; 3],
    at: [usize; 3],
) -> Vec<T> {
    let n = dims[0] * dims[1] * dims[2];
    let mut out = vec![T::default(); ch * size[0] * size[1] * size[2]];
    let mut o = 0;
    for c in 0..ch {
        for z in 0..size[2] {
            for y in 0..size[1] {
                for x in 0..size[0] {
                    let (sx, sy, sz) = (at[0] + x, at[1] + y, at[2] + z);
                    if sx < dims[0] && sy < dims[1] && sz < dims[2] {
                        out[o] = v[c * n + (sz * dims[1] + sy) * dims[0] + sx];
                    }
                    o += 1;
                }
            }
        }
    }
    out
}

fn crop_origin(
    rng: &mut ChaCha8Rng,
    dims: [usize; 3],
    size: [usize; 3],
    align: usize,
) -> [usize; 3] {
    let mut at = [0; 3];
    for a in 0..3 {
        let free = dims[a].saturating_sub(size[a]) / align;
        at[a] = rng.random_range(0..=free) * align;
    }
    at
}

/// Per class (background excluded), the latent cells it fills at least half of.
fn class_cells(fractions: &[f32], k: usize) -> Vec<Vec<usize>> {
    let n = fractions.len() / k;
    (1..k)
        .map(|c| (0..n).filter(|&i| fractions[c * n + i] >= 0.5).collect())
        .collect()
}

/// A crop centred on a cell of a class drawn uniformly among the classes present, so small
/// organs (liver, bone) and what the prompt says about them are in most training crops;
/// `None` when the case has no labelled cell.
fn organ_crop_origin(
    rng: &mut ChaCha8Rng,
    cells: &[Vec<usize>],
    dims: [usize; 3],
    size: [usize; 3],
) -> Option<[usize; 3]> {
    let present: Vec<&Vec<usize>> = cells.iter().filter(|c| !c.is_empty()).collect();
    if present.is_empty() {
        return None;
    }
    let list = present[rng.random_range(0..present.len())];
    let cell = list[rng.random_range(0..list.len())];
    let centre = [
        cell % dims[0],
        (cell / dims[0]) % dims[1],
        cell / (dims[0] * dims[1]),
    ];
    let mut at = [0; 3];
    for a in 0..3 {
        let max = dims[a].saturating_sub(size[a]);
        at[a] = centre[a].saturating_sub(size[a] / 2).min(max);
    }
    Some(at)
}

/// Normalised object (network units) of a case.
fn normalise(cfg: &LdmConfig, case: &Case) -> Vec<f32> {
    let n = case.dims.iter().product::<usize>();
    let mut out = case.object.clone();
    for (c, spec) in cfg.channels.iter().enumerate() {
        for v in &mut out[c * n..(c + 1) * n] {
            *v = (*v - spec.offset) / spec.scale;
        }
    }
    out
}

/// Normalises a crop taken at `at` from a case of `dims` in place, leaving the padding
/// outside the case at 0 (network units), as a crop of the normalised case has it.
fn normalise_crop(
    cfg: &LdmConfig,
    x: &mut [f32],
    dims: [usize; 3],
    at: [usize; 3],
    size: [usize; 3],
) {
    let per: usize = size.iter().product();
    let w = dims[0].saturating_sub(at[0]).min(size[0]);
    for (c, spec) in cfg.channels.iter().enumerate() {
        for z in (0..size[2]).filter(|z| at[2] + z < dims[2]) {
            for y in (0..size[1]).filter(|y| at[1] + y < dims[1]) {
                let row = c * per + (z * size[1] + y) * size[0];
                for v in &mut x[row..row + w] {
                    *v = (*v - spec.offset) / spec.scale;
                }
            }
        }
    }
}

/// L1 of forward differences along the three spatial axes.
fn gradient_l1<B: Backend>(a: Tensor<B, 5>, b: Tensor<B, 5>) -> Tensor<B, 1> {
    let d = a - b;
    let [_, _, z, y, x] = d.dims();
    let diff =
        |dim: usize, n: usize| d.clone().narrow(dim, 1, n - 1) - d.clone().narrow(dim, 0, n - 1);
    let (dz, dy, dx) = (diff(2, z), diff(3, y), diff(4, x));
    (dz.abs().mean() + dy.abs().mean() + dx.abs().mean()).div_scalar(3.0)
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// Stage 1: trains the autoencoder. Returns the model.
pub fn train_autoencoder<B: AutodiffBackend>(
    mut model: Ldm<B>,
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    opts: &TrainOptions,
    resume: Option<Resume>,
    hooks: &mut dyn Hooks<B>,
    device: &B::Device,
) -> Result<Ldm<B>, LdmError> {
    opts.check()?;
    cases.check(cfg)?;
    let ch = cfg.channels.len();
    let mut optim = AdamConfig::new().init::<B, Ldm<B>>();
    let mut start = 0;
    if let Some(r) = resume.filter(|r| r.stage == Stage::Autoencoder) {
        optim = load_optim(optim, r.optimizer, device)?;
        start = r.step;
    } else {
        let means = class_means(cfg, cases)?;
        let scales = residual_rms(cfg, cases, &means)?;
        model.autoencoder =
            model
                .autoencoder
                .with_residual_stats(&means, &scales, cfg.classes.len(), ch);
    }
    let [cx, cy, cz] = opts.ae_crop;
    let zc = cfg.autoencoder.latent_channels;
    for step in start..opts.ae_steps {
        let mut rng = step_rng(opts.seed, Stage::Autoencoder, step);
        let (mut xs, mut ls) = (Vec::new(), Vec::new());
        for _ in 0..opts.ae_batch {
            let i = rng.random_range(0..cases.len());
            let dims = cases.dims(i);
            let at = crop_origin(&mut rng, dims, opts.ae_crop, 1);
            let (mut x, l) = cases.crop(i, at, opts.ae_crop)?;
            normalise_crop(cfg, &mut x, dims, at, opts.ae_crop);
            xs.extend(x);
            ls.extend(l.into_iter().map(i64::from));
        }
        let b = opts.ae_batch;
        let eps = normals(
            &mut rng,
            b * zc * (cx / AE_FACTOR) * (cy / AE_FACTOR) * (cz / AE_FACTOR),
        );
        // Drawn after every other draw of the step, so runs without augmentation repeat
        // the runs from before it existed.
        augment::batch(&mut rng, opts, &mut xs, &mut ls, ch);
        let x = Tensor::<B, 5>::from_data(TensorData::new(xs, [b, ch, cz, cy, cx]), device);
        let labels = Tensor::<B, 4, Int>::from_data(TensorData::new(ls, [b, cz, cy, cx]), device);
        let eps = Tensor::<B, 5>::from_data(
            TensorData::new(eps, [b, zc, cz / AE_FACTOR, cy / AE_FACTOR, cx / AE_FACTOR]),
            device,
        );
        // In residual units, so the loss weighs what the latent must carry (texture,
        // disease) rather than the label contrast the class means already give.
        let r = model.autoencoder.residual(x, labels.clone());
        let post = model.autoencoder.encode_residual(r.clone());
        let recon = model.autoencoder.decode_residual(post.sample(eps), labels);
        let l1 = (recon.clone() - r.clone()).abs().mean();
        let gl = gradient_l1(recon, r);
        let kl = post.kl();
        let loss = l1.clone()
            + gl.clone().mul_scalar(opts.grad_weight)
            + kl.clone().mul_scalar(opts.kl_weight);
        let log = StepLog {
            stage: Stage::Autoencoder,
            step: step + 1,
            loss: scalar(loss.clone()),
            parts: [scalar(l1), scalar(gl), scalar(kl)],
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr_at(opts.ae_lr, step, opts.ae_steps), model, grads);
        hooks.step(&log);
        if (step + 1) % opts.checkpoint_every == 0 || step + 1 == opts.ae_steps {
            hooks.checkpoint(
                &model,
                cfg,
                Stage::Autoencoder,
                step + 1,
                &saver::<_, B, Ldm<B>>(&optim),
            )?;
        }
    }
    Ok(model)
}

/// Mean of each channel over each labelled case's voxels of each class (`classes ×
/// channels`, network units), one case in memory at a time.
fn class_means(cfg: &LdmConfig, cases: &dyn CaseSource) -> Result<Vec<f32>, LdmError> {
    let (k, ch) = (cfg.classes.len(), cfg.channels.len());
    let mut sum = vec![0f64; k * ch];
    let mut count = vec![0f64; k];
    for i in (0..cases.len()).filter(|&i| cases.labelled(i)) {
        let case = cases.case(i)?;
        let x = normalise(cfg, &case);
        let n = case.classes.len();
        for (i, &c) in case.classes.iter().enumerate() {
            count[c as usize] += 1.0;
            for j in 0..ch {
                sum[c as usize * ch + j] += f64::from(x[j * n + i]);
            }
        }
    }
    Ok((0..k * ch)
        .map(|i| (sum[i] / count[i / ch].max(1.0)) as f32)
        .collect())
}

/// Per channel, the RMS of the labelled cases' residual from the class means (network
/// units), floored so a residual-free channel does not divide by zero. A second pass over the
/// cases rather than one of moments, so the statistics are exactly the two-pass ones.
fn residual_rms(
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    means: &[f32],
) -> Result<Vec<f32>, LdmError> {
    let ch = cfg.channels.len();
    let (mut sum2, mut n) = (vec![0f64; ch], 0f64);
    for i in (0..cases.len()).filter(|&i| cases.labelled(i)) {
        let case = cases.case(i)?;
        let x = normalise(cfg, &case);
        let nv = case.classes.len();
        for (i, &c) in case.classes.iter().enumerate() {
            for (j, s) in sum2.iter_mut().enumerate() {
                let r = f64::from(x[j * nv + i] - means[c as usize * ch + j]);
                *s += r * r;
            }
        }
        n += nv as f64;
    }
    Ok(sum2
        .iter()
        .map(|s| ((s / n.max(1.0)).sqrt() as f32).max(1e-3))
        .collect())
}

/// Cosine decay to 10 % after a 5 % warm-up.
fn lr_at(base: f64, step: usize, total: usize) -> f64 {
    let warm = (total / 20).max(1);
    if step < warm {
        return base * (step + 1) as f64 / warm as f64;
    }
    let p = (step - warm) as f64 / (total - warm).max(1) as f64;
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Posterior-mean latents of every case (unscaled), each `[zc, lz, ly, lx]` flattened, and
/// the padded object dims they came from.
pub fn encode_cases<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<Latents, LdmError> {
    cases.check(cfg)?;
    let ch = cfg.channels.len();
    // The grid is padded to a multiple of 16 with background labels; the object is padded
    // with the background's mean so the padding's residual is zero. (Zero padding made it
    // 0 HU "air": a residual of +20 residual-SDs in the padded CT slices, which set the
    // shortcut channel's latent scale and drowned the organ shifts in it.)
    let fill = model.autoencoder.class_mean(0);
    let mut out = Vec::with_capacity(cases.len());
    for i in 0..cases.len() {
        let case = cases.case(i)?;
        let pd = case.dims.map(crate::model::padded);
        let mut x = crop(&normalise(cfg, &case), ch, case.dims, pd, [0, 0, 0]);
        fill_padding(&mut x, case.dims, pd, &fill);
        let x = Tensor::<B, 5>::from_data(TensorData::new(x, [1, ch, pd[2], pd[1], pd[0]]), device);
        let l: Vec<i64> = crop(&case.classes, 1, case.dims, pd, [0, 0, 0])
            .into_iter()
            .map(i64::from)
            .collect();
        let l =
            Tensor::<B, 4, Int>::from_data(TensorData::new(l, [1, pd[2], pd[1], pd[0]]), device);
        let mean = model.autoencoder.encode(x, l).mean;
        let v = mean
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| LdmError::Input(format!("{e:?}")))?;
        out.push((v, pd));
        progress(i + 1);
    }
    Ok(out)
}

/// Sets every voxel of a channel-major volume on grid `pd` outside the low-corner `dims`
/// to its channel's `fill` value.
fn fill_padding(x: &mut [f32], dims: [usize; 3], pd: [usize; 3], fill: &[f32]) {
    let n = pd[0] * pd[1] * pd[2];
    for (c, &f) in fill.iter().enumerate() {
        for z in 0..pd[2] {
            for y in 0..pd[1] {
                for xx in 0..pd[0] {
                    if xx >= dims[0] || y >= dims[1] || z >= dims[2] {
                        x[c * n + (z * pd[1] + y) * pd[0] + xx] = f;
                    }
                }
            }
        }
    }
}

/// Latents of cases (flattened `[zc, lz, ly, lx]`) with the padded object dims they came from.
pub type Latents = Vec<(Vec<f32>, [usize; 3])>;

/// Per latent channel, 1 / standard deviation of its values (latents flattened
/// `[zc, lz, ly, lx]`).
///
/// Per channel, not one factor for all as in MAISI: the shortcut channels (4×-averaged
/// residual) and the learned channels need not share a spread, and the shortcut channel
/// carries the organ-wide disease shifts; one common factor once left it at SD 0.07 in the
/// denoiser's units, below the denoiser's error. (That spread came mostly from the grid
/// padding, now background-filled in [`encode_cases`]; with it fixed the shipped
/// `ct-thorax` channels have SD 0.49–0.53, and per-channel scaling keeps it so whatever
/// the autoencoder learns.)
pub fn latent_scale(latents: &[(Vec<f32>, [usize; 3])], zc: usize) -> Vec<f32> {
    let (mut n, mut s, mut s2) = (vec![0f64; zc], vec![0f64; zc], vec![0f64; zc]);
    for (v, _) in latents {
        let per = v.len() / zc;
        for (i, &x) in v.iter().enumerate() {
            let c = i / per;
            n[c] += 1.0;
            s[c] += f64::from(x);
            s2[c] += f64::from(x) * f64::from(x);
        }
    }
    (0..zc)
        .map(|c| {
            let var = (s2[c] / n[c].max(1.0) - (s[c] / n[c].max(1.0)).powi(2)).max(1e-12);
            (1.0 / var.sqrt()) as f32
        })
        .collect()
}

/// Stage 2: trains the denoiser and text encoder on cached latents (`latents[i]` from
/// [`encode_cases`], unscaled). The autoencoder is not in the graph.
#[allow(clippy::too_many_arguments)]
pub fn train_denoiser<B: AutodiffBackend>(
    mut model: Ldm<B>,
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    latents: &[(Vec<f32>, [usize; 3])],
    opts: &TrainOptions,
    resume: Option<Resume>,
    hooks: &mut dyn Hooks<B>,
    device: &B::Device,
) -> Result<Ldm<B>, LdmError> {
    opts.check()?;
    cases.check(cfg)?;
    if latents.len() != cases.len() {
        return Err(LdmError::Input(format!(
            "{} latents for {} cases",
            latents.len(),
            cases.len()
        )));
    }
    let k = cfg.classes.len();
    let zc = cfg.autoencoder.latent_channels;
    let scheduler = cfg.scheduler.build();
    // Only the organ cells stay in memory, one case's labels at a time: a crop's label
    // fractions are pooled from its labels when it is drawn (the whole case's fractions, k
    // values per latent cell, would weigh as much as its object).
    let centres: Vec<Vec<Vec<usize>>> = (0..cases.len())
        .map(|i| {
            let pd = latents[i].1;
            let padded = crate::model::pad_volume(&cases.classes(i)?, cases.dims(i), pd);
            Ok(class_cells(&pooled_fractions(&padded, pd, k, AE_FACTOR), k))
        })
        .collect::<Result<_, LdmError>>()?;
    let mut optim = AdamConfig::new().init::<B, Ldm<B>>();
    let mut start = 0;
    if let Some(r) = resume.filter(|r| r.stage == Stage::Denoiser) {
        optim = load_optim(optim, r.optimizer, device)?;
        start = r.step;
    }
    for step in start..opts.dm_steps {
        let mut rng = step_rng(opts.seed, Stage::Denoiser, step);
        let b = opts.dm_batch;
        // One crop size per batch: the smallest of the crop and the sampled cases' latents.
        let picks: Vec<usize> = (0..b).map(|_| rng.random_range(0..cases.len())).collect();
        let mut size = opts.dm_crop;
        for &i in &picks {
            let ld = latents[i].1.map(|d| d / AE_FACTOR);
            for a in 0..3 {
                size[a] = size[a].min(ld[a]);
            }
        }
        let (mut xs, mut fs, mut prompts, mut scal, mut ts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &i in &picks {
            let ld = latents[i].1.map(|d| d / AE_FACTOR);
            let at = if rng.random_bool(opts.organ_crops) {
                organ_crop_origin(&mut rng, &centres[i], ld, size)
            } else {
                None
            }
            .unwrap_or_else(|| crop_origin(&mut rng, ld, size, 1));
            let per = size.iter().product::<usize>();
            let z: Vec<f32> = crop(&latents[i].0, zc, ld, size, at)
                .into_iter()
                .enumerate()
                .map(|(j, v)| v * cfg.latent_scale[j / per])
                .collect();
            xs.extend(z);
            let drop_labels = rng.random_bool(opts.drop_labels);
            if drop_labels {
                fs.extend(std::iter::repeat_n(0.0, k * per));
            } else {
                // The crop's 4×-aligned block of labels; outside the case it is background,
                // as the grid padding is.
                let full = size.map(|s| s * AE_FACTOR);
                let classes = cases.crop_classes(i, at.map(|a| a * AE_FACTOR), full)?;
                fs.extend(pooled_fractions(&classes, full, k, AE_FACTOR));
            }
            let drop_text = rng.random_bool(opts.drop_text);
            prompts.push(if drop_text { "" } else { cases.prompt(i) });
            scal.extend(cfg.scalars(cases.spacing_mm(i)));
            ts.push(rng.random_range(0.0f32..1.0));
        }
        let [sx, sy, sz] = size;
        let x0 = Tensor::<B, 5>::from_data(TensorData::new(xs, [b, zc, sz, sy, sx]), device);
        let eps = Tensor::<B, 5>::from_data(
            TensorData::new(
                normals(&mut rng, b * zc * sx * sy * sz),
                [b, zc, sz, sy, sx],
            ),
            device,
        );
        let (xt, target, ts) = scheduler.training_pair(x0, eps, &ts);
        let tb = cfg.tokenizer.batch::<B>(&prompts, device);
        let cond = Cond {
            labels: Tensor::from_data(TensorData::new(fs, [b, k, sz, sy, sx]), device),
            text: model.text.forward(&tb),
            pad: tb.pad,
            scalars: Tensor::from_data(TensorData::new(scal, [b, 4]), device),
        };
        let pred = model.unet.forward(xt, &ts, &cond);
        let loss = (pred - target).powf_scalar(2.0).mean();
        let value = scalar(loss.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr_at(opts.dm_lr, step, opts.dm_steps), model, grads);
        hooks.step(&StepLog {
            stage: Stage::Denoiser,
            step: step + 1,
            loss: value,
            parts: [value, 0.0, 0.0],
        });
        if (step + 1) % opts.checkpoint_every == 0 || step + 1 == opts.dm_steps {
            hooks.checkpoint(
                &model,
                cfg,
                Stage::Denoiser,
                step + 1,
                &saver::<_, B, Ldm<B>>(&optim),
            )?;
        }
    }
    Ok(model)
}

/// The autoencoder's reconstruction of a case (posterior mean, decoded with the case's own
/// labels), physical values channel-major: what the model can express at best, so that an
/// evaluation can tell an autoencoder limit from a denoiser one.
pub fn reconstruct<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    case: &Case,
    device: &B::Device,
) -> Result<Vec<f32>, LdmError> {
    let lat = encode_cases(model, cfg, &std::slice::from_ref(case), device, |_| {})?;
    decode_latent(model, cfg, case, &lat[0], device)
}

/// Decodes a case's latent (from [`encode_cases`]) with the case's labels, without
/// stochastic detail; physical values channel-major on the case's grid.
fn decode_latent<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    case: &Case,
    latent: &(Vec<f32>, [usize; 3]),
    device: &B::Device,
) -> Result<Vec<f32>, LdmError> {
    let (z, pdims) = latent;
    let [lx, ly, lz] = pdims.map(|d| d / AE_FACTOR);
    let zc = cfg.autoencoder.latent_channels;
    let z = Tensor::<B, 5>::from_data(TensorData::new(z.clone(), [1, zc, lz, ly, lx]), device);
    let classes = pad_volume(&case.classes, case.dims, *pdims);
    decode_physical(model, cfg, z, &classes, *pdims, case.dims, None)
}

/// Measures the residual texture ([`crate::texture`]) of a trained autoencoder on labelled
/// cases and their posterior-mean latents: each case is decoded twice (marginals, then
/// correlations), one at a time. Voxels above their class's `focal` ceiling
/// ([`crate::focal`], HU; empty: none) are left out. `progress(k)` after each of the
/// 2 × cases decodes.
pub fn fit_texture<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    latents: &Latents,
    focal: &[Option<f32>],
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<ResidualTexture, LdmError> {
    if latents.len() != cases.len() {
        return Err(LdmError::Input(format!(
            "{} latents for {} cases",
            latents.len(),
            cases.len()
        )));
    }
    let scales: Vec<f32> = cfg.channels.iter().map(|c| c.scale).collect();
    let mut fit = TextureFit::new(&scales, cfg.classes.len());
    let hu = cfg.hu_channel();
    let mut focal_voxels = vec![0u64; cfg.classes.len()];
    for pass in 0..2 {
        for (i, latent) in latents.iter().enumerate() {
            let case = cases.case(i)?;
            let recon = decode_latent(model, cfg, &case, latent, device)?;
            let mut residual: Vec<f32> =
                case.object.iter().zip(&recon).map(|(a, b)| a - b).collect();
            if let Some(ch) = hu {
                let n = case.classes.len();
                for (j, &c) in case.classes.iter().enumerate() {
                    if crate::focal::is_focal(focal, c, case.object[ch * n + j]) {
                        for k in 0..cfg.channels.len() {
                            residual[k * n + j] = f32::NAN;
                        }
                        if pass == 0 {
                            let last = focal_voxels.len() - 1;
                            focal_voxels[usize::from(c).min(last)] += 1;
                        }
                    }
                }
            }
            if pass == 0 {
                fit.add_marginals(&residual, &case.classes, case.dims);
            } else {
                fit.add_correlation(&residual, &case.classes, case.dims);
            }
            progress(pass * cases.len() + i + 1);
        }
    }
    let mut texture = fit.finish();
    if focal_voxels.iter().any(|&k| k > 0) {
        texture.focal_voxels = focal_voxels;
    }
    Ok(texture)
}

/// Cases the block-spread fit samples at most (evenly spaced through the list): a sample
/// costs a whole generation, and a few cases give thousands of blocks.
pub const SPREAD_CASES: usize = 8;

/// The block-spread calibration of a trained model ([`crate::spread`]): a labelled case's
/// real object against the model's sample of its label map (its own prompt and spacing,
/// `steps` Euler steps, the model's recommended guidance, seed `seed + case index`), for up
/// to [`SPREAD_CASES`] cases, one at a time; `progress` counts them.
pub fn fit_spread<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    cases: &dyn CaseSource,
    steps: usize,
    seed: u64,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<BlockSpread, LdmError> {
    // Measured on the denoiser's own spread, not on a previous calibration's.
    let plain = LdmConfig {
        spread: None,
        ..cfg.clone()
    };
    let guidance = GuidanceChoice::default().resolve(cfg.guidance);
    let mut fit = SpreadFit::new(cfg.channels.len(), cfg.classes.len());
    let n = cases.len().min(SPREAD_CASES);
    for k in 0..n {
        let i = k * cases.len() / n;
        let case = cases.case(i)?;
        let req = crate::model::SampleRequest {
            classes: &case.classes,
            dims: case.dims,
            spacing_mm: case.spacing_mm,
            prompt: &case.prompt,
            seed: seed.wrapping_add(i as u64),
            steps,
            solver: Solver::Euler,
            guidance,
        };
        let sampled = crate::model::sample(model, &plain, &req, device, |_, _| {})?;
        fit.add(&case.object, &sampled, &case.classes, case.dims);
        progress(k + 1);
    }
    Ok(fit.finish(steps, guidance.labels))
}
