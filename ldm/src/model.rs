//! The whole latent diffusion model: configuration, weights, checkpoint files and sampling.

use std::path::Path;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkGzFileRecorder};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::autoencoder::{Autoencoder, AutoencoderConfig};
pub use crate::noise::normal_noise;
use crate::sampler::{Guidance, Sampler};
use crate::scheduler::{SchedulerConfig, Solver};
use crate::spread::BlockSpread;
use crate::text::{TextEncoder, TextEncoderConfig, Tokenizer};
use crate::texture::ResidualTexture;
use crate::unet::{Cond, Unet, UnetConfig};
use crate::LdmError;

/// Spatial factor between object and latent grid (autoencoder).
pub const AE_FACTOR: usize = 4;
/// Object dims must be multiples of this (autoencoder 4× and two UNet levels 4×).
pub const GRID_MULTIPLE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Ct,
    Mri,
}

/// One object channel and its normalisation: `network value = (physical − offset) / scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub name: String,
    pub unit: String,
    pub offset: f32,
    pub scale: f32,
}

/// What the checkpoint says about its own training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// SHA-256 over the training cases (objects, labels, prompts) in order.
    pub data_hash: String,
    pub cases: usize,
    pub autoencoder_steps: usize,
    pub denoiser_steps: usize,
    pub seed: u64,
    /// Final smoothed losses.
    pub autoencoder_loss: f64,
    pub denoiser_loss: f64,
}

/// Everything needed to rebuild the model and read its inputs/outputs; saved as JSON next
/// to the weights so a checkpoint is self-describing. A burn `Config` like its parts: build
/// one for a dataset with [`LdmConfig::for_data`] (default architecture), or field by field
/// with the derived `new` and `with_*`.
#[derive(Config, Debug)]
pub struct LdmConfig {
    pub name: String,
    pub modality: Modality,
    pub channels: Vec<ChannelSpec>,
    /// Label class names; index 0 is the background/"other" class.
    pub classes: Vec<String>,
    pub tokenizer: Tokenizer,
    pub autoencoder: AutoencoderConfig,
    pub unet: UnetConfig,
    pub text: TextEncoderConfig,
    pub scheduler: SchedulerConfig,
    /// Per latent channel, multiplies posterior means so each has unit variance (set after
    /// stage 1).
    pub latent_scale: Vec<f32>,
    #[config(default = "TrainingRecord::default()")]
    pub training: TrainingRecord,
    /// Classifier-free guidance scales the model's evaluation recommends; pipelines and
    /// `eval-model` use them unless told otherwise (absent or null: [`Guidance::DEFAULT`]).
    pub guidance: Option<Guidance>,
    /// Width `a` (residual units) of the companding `a·asinh(z / a)` the shortcut latent
    /// channels go through before [`LdmConfig::latent_scale`], or absent (linear). Why: the
    /// shortcut channel spans lung, bone and gas blocks (SD 0.68 on the real `ct-abdomen`
    /// scan) while a liver's block means vary by 0.04 of that, 6 % of the channel's SD — below
    /// the denoiser's error, so its samples' liver blocks varied twice as much as the real
    /// ones. Companded with a = 0.1 (14 HU there) the liver's share is 24 %.
    pub latent_compand: Option<f32>,
    /// The residual statistics samples draw their sub-block detail from
    /// ([`crate::texture`]); absent for models trained before them (no stochastic detail).
    pub texture: Option<ResidualTexture>,
    /// Per class, how much sampled block means may vary ([`crate::spread`]); absent for
    /// models without it (samples as the denoiser gives them).
    pub spread: Option<BlockSpread>,
    /// Classes whose training CT held metal ([`crate::metal`]): generation draws them by a
    /// stand-in class. Absent for models trained before the check (none marked).
    pub metal_classes: Option<Vec<String>>,
}

impl LdmConfig {
    /// A fresh configuration with the default (CPU-sized) architecture.
    pub fn for_data(
        name: &str,
        modality: Modality,
        channels: Vec<ChannelSpec>,
        classes: Vec<String>,
        tokenizer: Tokenizer,
    ) -> Self {
        let c = channels.len();
        let k = classes.len();
        let text = TextEncoderConfig::new(tokenizer.len()).with_max_len(tokenizer.max_len);
        let autoencoder = AutoencoderConfig::new(c, k);
        let zc = autoencoder.latent_channels;
        Self {
            name: name.to_string(),
            modality,
            autoencoder,
            unet: UnetConfig::new(zc, k, text.d_model).with_text_labels(Some(true)),
            text,
            channels,
            classes,
            tokenizer,
            scheduler: SchedulerConfig::RectifiedFlow,
            latent_scale: vec![1.0; zc],
            training: TrainingRecord::default(),
            guidance: None,
            latent_compand: None,
            texture: None,
            spread: None,
            metal_classes: None,
        }
    }

    /// Checks the pieces fit together before any layer is built.
    pub fn check(&self) -> Result<(), LdmError> {
        let bad = |m: String| Err(LdmError::Config(m));
        if self.channels.is_empty() {
            return bad("no object channels".into());
        }
        if self.autoencoder.in_channels != self.channels.len() {
            return bad(format!(
                "autoencoder expects {} channels, the object has {}",
                self.autoencoder.in_channels,
                self.channels.len()
            ));
        }
        if self.autoencoder.classes != self.classes.len() || self.unet.classes != self.classes.len()
        {
            return bad(
                "label class count differs between autoencoder, denoiser and class list".into(),
            );
        }
        if self.unet.latent_channels != self.autoencoder.latent_channels {
            return bad("denoiser and autoencoder disagree on latent channels".into());
        }
        if self.latent_scale.len() != self.autoencoder.latent_channels
            || self
                .latent_scale
                .iter()
                .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return bad(format!(
                "latent_scale needs one positive factor per latent channel ({}), has {:?} \
                 (models trained before per-channel scaling: retrain)",
                self.autoencoder.latent_channels, self.latent_scale
            ));
        }
        if self.unet.d_text != self.text.d_model || self.text.vocab != self.tokenizer.len() {
            return bad("text encoder does not match the denoiser or the tokenizer".into());
        }
        if self
            .channels
            .iter()
            .any(|c| !(c.scale.is_finite() && c.scale != 0.0))
        {
            return bad("a channel has a zero or non-finite scale".into());
        }
        if let Some(a) = self.latent_compand {
            if !(a.is_finite() && a > 0.0) {
                return bad(format!("latent_compand must be positive, is {a}"));
            }
        }
        if let Some(t) = &self.texture {
            t.check(self.channels.len(), self.classes.len())?;
        }
        if let Some(s) = &self.spread {
            s.check(self.channels.len(), self.classes.len())?;
        }
        if let Some(m) = self
            .metal_classes()
            .iter()
            .find(|m| self.class_index(m).is_none())
        {
            return bad(format!("metal_classes names `{m}`, which is not a class"));
        }
        Ok(())
    }

    /// Maps an autoencoder latent (flattened `[zc, …]`) into the denoiser's space, in place,
    /// before [`LdmConfig::latent_scale`]: [`LdmConfig::latent_compand`] on the shortcut
    /// channels.
    pub fn compand_latent(&self, z: &mut [f32]) {
        if let Some(a) = self.latent_compand {
            let per = z.len() / self.autoencoder.latent_channels;
            for v in &mut z[..self.channels.len() * per] {
                *v = a * (*v / a).asinh();
            }
        }
    }

    /// [`LdmConfig::metal_classes`], empty where absent.
    pub fn metal_classes(&self) -> &[String] {
        self.metal_classes.as_deref().unwrap_or_default()
    }

    /// The channel CT numbers are read from: `hu` of a CT model; none for MRI.
    pub fn hu_channel(&self) -> Option<usize> {
        (self.modality == Modality::Ct)
            .then(|| self.channels.iter().position(|c| c.name == "hu"))
            .flatten()
    }

    pub fn class_index(&self, name: &str) -> Option<u8> {
        self.classes.iter().position(|c| c == name).map(|i| i as u8)
    }

    /// Scalar conditions: voxel spacing (in units of 4 mm) and the modality flag.
    pub fn scalars(&self, spacing_mm: [f32; 3]) -> [f32; 4] {
        let m = match self.modality {
            Modality::Ct => 0.0,
            Modality::Mri => 1.0,
        };
        [
            spacing_mm[0] / 4.0,
            spacing_mm[1] / 4.0,
            spacing_mm[2] / 4.0,
            m,
        ]
    }
}

#[derive(Module, Debug)]
pub struct Ldm<B: Backend> {
    pub autoencoder: Autoencoder<B>,
    pub unet: Unet<B>,
    pub text: TextEncoder<B>,
}

impl<B: Backend> Ldm<B> {
    /// Builds the model with weights drawn from `seed`.
    ///
    /// burn draws initial weights lazily from one process-wide RNG, so weights would depend
    /// on what other threads drew first, and a clone of an untouched module would initialise
    /// apart from its original. Seeding and materialising every parameter under one lock
    /// makes init reproducible (the crate itself draws no other random numbers from burn).
    pub fn init_seeded(cfg: &LdmConfig, seed: u64, device: &B::Device) -> Result<Self, LdmError> {
        cfg.check()?;
        Ok(init_with_seed(device, seed, || Self {
            autoencoder: cfg.autoencoder.init(device),
            unet: cfg.unet.init(device),
            text: cfg.text.init(device),
        }))
    }

    /// Builds the model with a fixed seed (weights are meant to be loaded or trained).
    pub fn init(cfg: &LdmConfig, device: &B::Device) -> Result<Self, LdmError> {
        Self::init_seeded(cfg, 0, device)
    }
}

/// Builds a module with `init` while holding burn's process-wide RNG, seeded with `seed`,
/// and materialises its parameters before letting go.
///
/// Every module that must be reproducible from its seed, tests' stand-alone layers included,
/// is built through here: a layer drawn outside the lock takes numbers from the shared RNG
/// between another thread's seeding and its draws, and that thread's "seeded" weights
/// change (how the first autoencoder loss of two identical test runs once differed in the
/// 3rd digit).
pub fn init_with_seed<B: Backend, M: Module<B>>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce() -> M,
) -> M {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    init().map(&mut Materialise)
}

/// Forces every lazily initialised parameter to take its value now.
struct Materialise;

impl<B: Backend> ModuleMapper<B> for Materialise {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor, mapper)
    }
}

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "weights"; // recorder appends .mpk.gz

fn recorder() -> NamedMpkGzFileRecorder<FullPrecisionSettings> {
    NamedMpkGzFileRecorder::new()
}

/// Writes `config.json` and the weights into `dir`.
pub fn save<B: Backend>(model: &Ldm<B>, cfg: &LdmConfig, dir: &Path) -> Result<(), LdmError> {
    save_config(cfg, dir)?;
    let path = dir.join(WEIGHTS_FILE);
    remove_before_replacing(&path.with_extension("mpk.gz"))?;
    model
        .clone()
        .save_file(path, &recorder())
        .map_err(|e| LdmError::Weights(format!("{}: {e}", dir.display())))
}

/// Removes `path` if it exists: burn's file recorder replaces a file itself but logs a
/// warning each time, which every checkpoint of a training run printed even with `--quiet`.
pub(crate) fn remove_before_replacing(path: &Path) -> Result<(), LdmError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LdmError::Weights(format!(
            "{}: cannot replace: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Writes `config.json` alone (a model whose weights are unchanged).
pub fn save_config(cfg: &LdmConfig, dir: &Path) -> Result<(), LdmError> {
    std::fs::create_dir_all(dir).map_err(|e| LdmError::io(dir, e))?;
    let json = serde_json::to_string_pretty(cfg).map_err(|e| LdmError::Config(e.to_string()))?;
    std::fs::write(dir.join(CONFIG_FILE), json).map_err(|e| LdmError::io(dir, e))
}

/// A config is a few kilobytes; one past this bound is refused before it is read whole.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_config_text(path: &Path) -> Result<String, LdmError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| LdmError::io(path, e))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| LdmError::io(path, e))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(LdmError::Config(format!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes, the limit for a model config",
            path.display()
        )));
    }
    Ok(text)
}

pub fn load_config(dir: &Path) -> Result<LdmConfig, LdmError> {
    let path = dir.join(CONFIG_FILE);
    let text = read_config_text(&path)?;
    let cfg: LdmConfig = serde_json::from_str(&text)
        .map_err(|e| LdmError::Config(format!("{}: {e}", path.display())))?;
    cfg.check()?;
    Ok(cfg)
}

pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<(Ldm<B>, LdmConfig), LdmError> {
    let cfg = load_config(dir)?;
    let fresh = Ldm::init(&cfg, device)?;
    let want = param_shapes(&fresh);
    let model = fresh
        .load_file(dir.join(WEIGHTS_FILE), &recorder(), device)
        .map_err(|e| {
            // burn appends advice about record formats of its 0.14 era to every read
            // failure; the first line is what went wrong.
            let e = e.to_string();
            let first = e
                .split("\\n")
                .next()
                .and_then(|l| l.lines().next())
                .unwrap_or("")
                .trim();
            let what = if first.contains("FileNotFound") {
                "is missing"
            } else {
                "cannot be read: truncated, corrupt or not a synthcohort model"
            };
            LdmError::Weights(format!(
                "{}: {WEIGHTS_FILE}.mpk.gz {what} ({first})",
                dir.display()
            ))
        })?;
    // burn loads a record whatever its tensors' shapes; weights from another architecture
    // would then fail (or worse, run) mid-sample. Compare every parameter with the
    // architecture config.json describes.
    let got = param_shapes(&model);
    if let Some(((path, w), (_, g))) = want.iter().zip(&got).find(|(a, b)| a.1 != b.1) {
        return Err(LdmError::Weights(format!(
            "{}: the weights do not fit config.json: parameter `{path}` is {g:?} in the weights but {w:?} in the architecture the config describes (weights from another model or config?)",
            dir.display()
        )));
    }
    if want.len() != got.len() {
        return Err(LdmError::Weights(format!(
            "{}: the weights hold {} parameters, the architecture in config.json {}",
            dir.display(),
            got.len(),
            want.len()
        )));
    }
    Ok((model, cfg))
}

/// Every float parameter's path in the module tree and shape, in visiting order.
fn param_shapes<B: Backend, M: Module<B>>(m: &M) -> Vec<(String, Vec<usize>)> {
    struct Shapes {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out
                .push((self.path.join("."), param.val().shape().to_vec()));
        }
    }
    let mut v = Shapes {
        path: Vec::new(),
        out: Vec::new(),
    };
    m.visit(&mut v);
    v.out
}

/// One generation request. `classes` holds class indices (see [`LdmConfig::classes`]) with x
/// fastest, then y, then z, over `dims = [nx, ny, nz]`.
#[derive(Clone, Debug)]
pub struct SampleRequest<'a> {
    pub classes: &'a [u8],
    pub dims: [usize; 3],
    pub spacing_mm: [f32; 3],
    pub prompt: &'a str,
    pub seed: u64,
    pub steps: usize,
    pub solver: Solver,
    pub guidance: Guidance,
}

/// Rounds `n` up to a multiple of [`GRID_MULTIPLE`].
pub fn padded(n: usize) -> usize {
    n.div_ceil(GRID_MULTIPLE) * GRID_MULTIPLE
}

/// Copies an x-fastest volume into a larger one (low corner aligned) whose added voxels
/// repeat the nearest edge voxel. Sampling pads the label map so: zeros would be background
/// — air — past the grid's edge, and the denoiser, which learned that the body ends against
/// air, darkened the last blocks before it (on the quickstart grid, whose 84 slices pad to
/// 96, the top four slices read 6–18 HU below the slices under them in liver, fat and
/// muscle), as if the patient ended where the grid does.
pub fn pad_volume_edge<T: Copy + Default>(v: &[T], dims: [usize; 3], to: [usize; 3]) -> Vec<T> {
    let mut out = vec![T::default(); to[0] * to[1] * to[2]];
    for z in 0..to[2] {
        for y in 0..to[1] {
            let src = (z.min(dims[2] - 1) * dims[1] + y.min(dims[1] - 1)) * dims[0];
            let dst = (z * to[1] + y) * to[0];
            out[dst..dst + dims[0]].copy_from_slice(&v[src..src + dims[0]]);
            let last = v[src + dims[0] - 1];
            out[dst + dims[0]..dst + to[0]].fill(last);
        }
    }
    out
}

/// Copies an x-fastest volume into a larger zero-padded one (low corner aligned).
pub fn pad_volume<T: Copy + Default>(v: &[T], dims: [usize; 3], to: [usize; 3]) -> Vec<T> {
    let mut out = vec![T::default(); to[0] * to[1] * to[2]];
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            let src = (z * dims[1] + y) * dims[0];
            let dst = (z * to[1] + y) * to[0];
            out[dst..dst + dims[0]].copy_from_slice(&v[src..src + dims[0]]);
        }
    }
    out
}

fn crop_volume<T: Copy>(v: &[T], from: [usize; 3], dims: [usize; 3]) -> Vec<T> {
    let mut out = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            let src = (z * from[1] + y) * from[0];
            out.extend_from_slice(&v[src..src + dims[0]]);
        }
    }
    out
}

/// Class fractions of each `f×f×f` block: `[classes, nz/f, ny/f, nx/f]` flattened.
pub fn pooled_fractions(classes: &[u8], dims: [usize; 3], k: usize, f: usize) -> Vec<f32> {
    let [lx, ly, lz] = [dims[0] / f, dims[1] / f, dims[2] / f];
    let n = lx * ly * lz;
    let mut out = vec![0f32; k * n];
    let w = 1.0 / (f * f * f) as f32;
    for z in 0..lz * f {
        for y in 0..ly * f {
            let row = (z * dims[1] + y) * dims[0];
            let cell_row = ((z / f) * ly + y / f) * lx;
            for x in 0..lx * f {
                let c = usize::from(classes[row + x]).min(k - 1);
                out[c * n + cell_row + x / f] += w;
            }
        }
    }
    out
}

/// Generates one object; returns physical values, channel-major (`channels × nx·ny·nz`).
pub fn sample<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    req: &SampleRequest,
    device: &B::Device,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<f32>, LdmError> {
    let [nx, ny, nz] = req.dims;
    if req.classes.len() != nx * ny * nz {
        return Err(LdmError::Input(format!(
            "label map has {} voxels, dims {:?} need {}",
            req.classes.len(),
            req.dims,
            nx * ny * nz
        )));
    }
    if req.steps == 0 {
        return Err(LdmError::Input("sampling needs at least one step".into()));
    }
    let k = cfg.classes.len();
    if let Some(&bad) = req.classes.iter().find(|&&c| usize::from(c) >= k) {
        return Err(LdmError::Input(format!(
            "class index {bad} ≥ {k} classes of the model"
        )));
    }
    let pdims = [padded(nx), padded(ny), padded(nz)];
    let classes = pad_volume_edge(req.classes, req.dims, pdims);
    let [lx, ly, lz] = pdims.map(|d| d / AE_FACTOR);
    let zc = cfg.autoencoder.latent_channels;

    let fractions = pooled_fractions(&classes, pdims, k, AE_FACTOR);
    let labels = Tensor::<B, 5>::from_data(TensorData::new(fractions, [1, k, lz, ly, lx]), device);
    let scalars = cfg.scalars(req.spacing_mm).to_vec();

    let sampler = Sampler::new(cfg.scheduler.build())
        .with_guidance(req.guidance)
        .with_solver(req.solver)
        .with_steps(req.steps);
    let (prompts, label_batch): (Vec<&str>, Tensor<B, 5>) = if sampler.guided() {
        (
            vec!["", "", req.prompt],
            Tensor::cat(vec![labels.zeros_like(), labels.clone(), labels], 0),
        )
    } else {
        (vec![req.prompt], labels)
    };
    let b = prompts.len();
    let text_batch = cfg.tokenizer.batch::<B>(&prompts, device);
    let cond = Cond {
        labels: label_batch,
        text: model.text.forward(&text_batch),
        pad: text_batch.pad,
        scalars: Tensor::<B, 1>::from_floats(scalars.repeat(b).as_slice(), device).reshape([b, 4]),
    };
    let noise = normal_noise(req.seed, zc * lx * ly * lz);
    let x = Tensor::<B, 5>::from_data(TensorData::new(noise, [1, zc, lz, ly, lx]), device);
    let x = sampler.run(x, |x, t| model.unet.forward(x, t, &cond), progress);

    decode_physical(
        model,
        cfg,
        expand_latent(unscale_latent(x, &cfg.latent_scale), cfg),
        &classes,
        pdims,
        req.dims,
        Some(req.seed),
    )
}

/// Divides each latent channel by its scale (undoes the training-time scaling).
pub fn unscale_latent<B: Backend>(x: Tensor<B, 5>, scale: &[f32]) -> Tensor<B, 5> {
    let c = x.dims()[1];
    assert_eq!(
        c,
        scale.len(),
        "latent has {c} channels, the model {} scales",
        scale.len()
    );
    let s = Tensor::<B, 1>::from_data(TensorData::new(scale.to_vec(), [c]), &x.device());
    x / s.reshape([1, c, 1, 1, 1])
}

/// Inverse of [`LdmConfig::compand_latent`] on `[b, zc, …]`: `a·sinh(z / a)` on the
/// shortcut channels.
pub fn expand_latent<B: Backend>(z: Tensor<B, 5>, cfg: &LdmConfig) -> Tensor<B, 5> {
    let Some(a) = cfg.latent_compand else {
        return z;
    };
    let c = cfg.channels.len();
    let zc = z.dims()[1];
    let short = z.clone().narrow(1, 0, c).div_scalar(a);
    let sinh = (short.clone().exp() - short.neg().exp()).mul_scalar(0.5 * a);
    if c == zc {
        sinh
    } else {
        Tensor::cat(vec![sinh, z.narrow(1, c, zc - c)], 1)
    }
}

/// Decodes an unscaled latent on the padded grid `pdims` and returns physical values,
/// channel-major, cropped to `dims`. With `texture_seed` (sampling) the blocks' spread is
/// calibrated ([`crate::spread`]) and the model's stochastic sub-block detail
/// ([`crate::texture`]) is drawn for that seed and added; without it (reconstructions) the
/// decoder's output is returned as it is.
pub fn decode_physical<B: Backend>(
    model: &Ldm<B>,
    cfg: &LdmConfig,
    z: Tensor<B, 5>,
    padded_classes: &[u8],
    pdims: [usize; 3],
    dims: [usize; 3],
    texture_seed: Option<u64>,
) -> Result<Vec<f32>, LdmError> {
    let mut data = model.autoencoder.decode_bounded(z, padded_classes, pdims)?;
    let n = pdims[0] * pdims[1] * pdims[2];
    for (c, spec) in cfg.channels.iter().enumerate() {
        for v in &mut data[c * n..(c + 1) * n] {
            *v = *v * spec.scale + spec.offset;
        }
    }
    if let (Some(s), Some(_)) = (&cfg.spread, texture_seed) {
        s.apply(&mut data, padded_classes, pdims);
    }
    if let (Some(t), Some(seed)) = (&cfg.texture, texture_seed) {
        t.apply(&mut data, padded_classes, pdims, seed);
    }
    let mut result = Vec::with_capacity(cfg.channels.len() * dims.iter().product::<usize>());
    for c in 0..cfg.channels.len() {
        result.extend(crop_volume(&data[c * n..(c + 1) * n], pdims, dims));
    }
    Ok(result)
}

/// Tensor of standard-normal draws from our own seeded stream (see [`normal_noise`]).
pub fn normal_tensor<B: Backend, const D: usize>(
    shape: [usize; D],
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(normal_noise(seed, n), shape), device)
}
