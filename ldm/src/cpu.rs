//! Concrete entry points. The engine calls these instead of the generic functions so that
//! burn's generics are instantiated (and compiled) here once, not in every crate that uses
//! the model. Training, sampling and the denoiser benchmark run on the CPU backend, or on
//! CUDA when the crate is built with `--features cuda` (`synthcohort train --device cuda`,
//! `SYNTHCOHORT_DEVICE=cuda[:N]` for sampling).

use std::path::Path;

use crate::model::{self, Ldm, LdmConfig, SampleRequest};
use crate::train::{self, Case, CaseSource, Hooks, Resume, TrainOptions};
use crate::{Cpu, CpuTrain, LdmError};

pub use crate::train::Latents;

/// The training hooks on every backend this build can train on, so one hooks object serves
/// the CPU and (feature `cuda`) the GPU.
#[cfg(not(feature = "cuda"))]
pub trait AnyHooks: Hooks<CpuTrain> {}
#[cfg(not(feature = "cuda"))]
impl<T: Hooks<CpuTrain>> AnyHooks for T {}
#[cfg(feature = "cuda")]
pub trait AnyHooks: Hooks<CpuTrain> + Hooks<crate::GpuTrain> {}
#[cfg(feature = "cuda")]
impl<T: Hooks<CpuTrain> + Hooks<crate::GpuTrain>> AnyHooks for T {}

/// A model being trained, on the device `synthcohort train --device` names.
pub enum TrainModel {
    Cpu(Ldm<CpuTrain>),
    #[cfg(feature = "cuda")]
    Gpu(Ldm<crate::GpuTrain>, burn::backend::cuda::CudaDevice),
}

impl TrainModel {
    pub fn init(cfg: &LdmConfig, seed: u64, device: &Device) -> Result<Self, LdmError> {
        Ok(match device {
            Device::Cpu => TrainModel::Cpu(Ldm::init_seeded(cfg, seed, &Default::default())?),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let dev = burn::backend::cuda::CudaDevice::new(*n);
                TrainModel::Gpu(Ldm::init_seeded(cfg, seed, &dev)?, dev)
            }
        })
    }

    pub fn load(dir: &Path, device: &Device) -> Result<(Self, LdmConfig), LdmError> {
        Ok(match device {
            Device::Cpu => {
                let (m, c) = model::load::<CpuTrain>(dir, &Default::default())?;
                (TrainModel::Cpu(m), c)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let dev = burn::backend::cuda::CudaDevice::new(*n);
                let (m, c) = model::load::<crate::GpuTrain>(dir, &dev)?;
                (TrainModel::Gpu(m, dev), c)
            }
        })
    }

    pub fn save(&self, cfg: &LdmConfig, dir: &Path) -> Result<(), LdmError> {
        match self {
            TrainModel::Cpu(m) => model::save(m, cfg, dir),
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, _) => model::save(m, cfg, dir),
        }
    }

    pub fn train_autoencoder(
        self,
        cfg: &LdmConfig,
        cases: &dyn CaseSource,
        opts: &TrainOptions,
        resume: Option<Resume>,
        hooks: &mut dyn AnyHooks,
    ) -> Result<Self, LdmError> {
        Ok(match self {
            TrainModel::Cpu(m) => TrainModel::Cpu(train::train_autoencoder(
                m,
                cfg,
                cases,
                opts,
                resume,
                hooks as &mut dyn Hooks<CpuTrain>,
                &Default::default(),
            )?),
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, dev) => TrainModel::Gpu(
                train::train_autoencoder(
                    m,
                    cfg,
                    cases,
                    opts,
                    resume,
                    hooks as &mut dyn Hooks<crate::GpuTrain>,
                    &dev,
                )?,
                dev,
            ),
        })
    }

    /// Posterior-mean latents, computed without autodiff (a tracked forward pass per case
    /// would keep its graph alive and exhaust memory over a dataset).
    pub fn encode_cases(
        &self,
        cfg: &LdmConfig,
        cases: &dyn CaseSource,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Latents, LdmError> {
        use burn::module::AutodiffModule;
        match self {
            TrainModel::Cpu(m) => {
                train::encode_cases(&m.valid(), cfg, cases, &Default::default(), progress)
            }
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, dev) => train::encode_cases(&m.valid(), cfg, cases, dev, progress),
        }
    }

    /// The residual texture of the trained autoencoder on `cases` (labelled) and their
    /// `latents` from [`TrainModel::encode_cases`], without autodiff.
    pub fn fit_texture(
        &self,
        cfg: &LdmConfig,
        cases: &dyn CaseSource,
        latents: &Latents,
        focal: &[Option<f32>],
        progress: &mut dyn FnMut(usize),
    ) -> Result<crate::texture::ResidualTexture, LdmError> {
        use burn::module::AutodiffModule;
        match self {
            TrainModel::Cpu(m) => train::fit_texture(
                &m.valid(),
                cfg,
                cases,
                latents,
                focal,
                &Default::default(),
                progress,
            ),
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, dev) => {
                train::fit_texture(&m.valid(), cfg, cases, latents, focal, dev, progress)
            }
        }
    }

    /// The block-spread calibration of the trained model on `cases` (labelled), without
    /// autodiff ([`train::fit_spread`]).
    pub fn fit_spread(
        &self,
        cfg: &LdmConfig,
        cases: &dyn CaseSource,
        steps: usize,
        seed: u64,
        progress: &mut dyn FnMut(usize),
    ) -> Result<crate::spread::BlockSpread, LdmError> {
        use burn::module::AutodiffModule;
        match self {
            TrainModel::Cpu(m) => train::fit_spread(
                &m.valid(),
                cfg,
                cases,
                steps,
                seed,
                &Default::default(),
                progress,
            ),
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, dev) => {
                train::fit_spread(&m.valid(), cfg, cases, steps, seed, dev, progress)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn train_denoiser(
        self,
        cfg: &LdmConfig,
        cases: &dyn CaseSource,
        latents: &Latents,
        opts: &TrainOptions,
        resume: Option<Resume>,
        hooks: &mut dyn AnyHooks,
    ) -> Result<Self, LdmError> {
        Ok(match self {
            TrainModel::Cpu(m) => TrainModel::Cpu(train::train_denoiser(
                m,
                cfg,
                cases,
                latents,
                opts,
                resume,
                hooks as &mut dyn Hooks<CpuTrain>,
                &Default::default(),
            )?),
            #[cfg(feature = "cuda")]
            TrainModel::Gpu(m, dev) => TrainModel::Gpu(
                train::train_denoiser(
                    m,
                    cfg,
                    cases,
                    latents,
                    opts,
                    resume,
                    hooks as &mut dyn Hooks<crate::GpuTrain>,
                    &dev,
                )?,
                dev,
            ),
        })
    }
}

/// Where training or sampling runs: `cpu` (the default) or, in a build with the `cuda`
/// feature, `cuda` / `cuda:N` (`SYNTHCOHORT_DEVICE` for sampling, `train --device`).
#[derive(Clone, Debug, PartialEq)]
pub enum Device {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

impl Device {
    pub fn parse(s: &str) -> Result<Self, LdmError> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() || s == "cpu" {
            return Ok(Device::Cpu);
        }
        if let Some(rest) = s.strip_prefix("cuda") {
            #[cfg(feature = "cuda")]
            {
                let n = match rest.strip_prefix(':') {
                    Some(n) => n.parse().map_err(|_| {
                        LdmError::Config(format!("device `{s}`: expected cuda:<index>"))
                    })?,
                    None if rest.is_empty() => 0,
                    None => return Err(LdmError::Config(format!("unknown device `{s}`"))),
                };
                return Ok(Device::Cuda(n));
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = rest;
                return Err(LdmError::Config(format!(
                    "device `{s}` needs a build with CUDA: cargo build --release --features cuda"
                )));
            }
        }
        Err(LdmError::Config(format!(
            "unknown device `{s}` (cpu, cuda or cuda:N)"
        )))
    }

    /// From `SYNTHCOHORT_DEVICE`, CPU when unset.
    pub fn from_env() -> Result<Self, LdmError> {
        Self::parse(&std::env::var("SYNTHCOHORT_DEVICE").unwrap_or_default())
    }
}

enum Loaded {
    Cpu(Ldm<Cpu>),
    #[cfg(feature = "cuda")]
    Gpu(Ldm<crate::Gpu>, burn::backend::cuda::CudaDevice),
}

/// A model loaded for sampling.
pub struct Sampler {
    model: Loaded,
    pub config: LdmConfig,
}

impl Sampler {
    /// Loads on the device `SYNTHCOHORT_DEVICE` names (CPU by default).
    pub fn load(dir: &Path) -> Result<Self, LdmError> {
        Self::load_on(dir, Device::from_env()?)
    }

    pub fn load_on(dir: &Path, device: Device) -> Result<Self, LdmError> {
        let (model, config) = match &device {
            Device::Cpu => {
                let (m, c) = model::load::<Cpu>(dir, &Default::default())?;
                (Loaded::Cpu(m), c)
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let dev = burn::backend::cuda::CudaDevice::new(*n);
                let (m, c) = model::load::<crate::Gpu>(dir, &dev)?;
                (Loaded::Gpu(m, dev), c)
            }
        };
        Ok(Self { model, config })
    }

    /// Physical values, channel-major; `progress(step, steps)` after each step.
    pub fn sample(
        &self,
        req: &SampleRequest,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f32>, LdmError> {
        match &self.model {
            Loaded::Cpu(m) => model::sample(m, &self.config, req, &Default::default(), progress),
            #[cfg(feature = "cuda")]
            Loaded::Gpu(m, dev) => model::sample(m, &self.config, req, dev, progress),
        }
    }

    /// The autoencoder's reconstruction of a case (for evaluation), physical values.
    pub fn reconstruct(&self, case: &Case) -> Result<Vec<f32>, LdmError> {
        match &self.model {
            Loaded::Cpu(m) => train::reconstruct(m, &self.config, case, &Default::default()),
            #[cfg(feature = "cuda")]
            Loaded::Gpu(m, dev) => train::reconstruct(m, &self.config, case, dev),
        }
    }
}

/// One denoiser forward pass and one training step on a `[1, 4, d, d, d]` latent (for the
/// benchmarks), on the CPU backend or (feature `cuda`) on a GPU.
pub mod bench {
    use burn::module::AutodiffModule;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use burn::tensor::backend::{AutodiffBackend, Backend};
    use burn::tensor::{ElementConversion, Tensor};

    use super::*;
    use crate::unet::Cond;

    pub struct DenoiserBenchOn<B: AutodiffBackend> {
        model: Ldm<B>,
        cfg: LdmConfig,
        d: usize,
        device: B::Device,
    }

    /// The CPU benchmark.
    pub type DenoiserBench = DenoiserBenchOn<CpuTrain>;

    impl DenoiserBench {
        pub fn new(cfg: &LdmConfig, d: usize) -> Result<Self, LdmError> {
            Self::new_on(cfg, d, Default::default())
        }
    }

    #[cfg(feature = "cuda")]
    /// The benchmark on CUDA device `n`.
    pub fn on_cuda(
        cfg: &LdmConfig,
        d: usize,
        n: usize,
    ) -> Result<DenoiserBenchOn<crate::GpuTrain>, LdmError> {
        DenoiserBenchOn::new_on(cfg, d, burn::backend::cuda::CudaDevice::new(n))
    }

    impl<B: AutodiffBackend> DenoiserBenchOn<B> {
        pub fn new_on(cfg: &LdmConfig, d: usize, device: B::Device) -> Result<Self, LdmError> {
            Ok(Self {
                model: Ldm::init_seeded(cfg, 1, &device)?,
                cfg: cfg.clone(),
                d,
                device,
            })
        }

        fn cond<C: Backend>(&self, text: &crate::text::TextEncoder<C>, dev: &C::Device) -> Cond<C> {
            let k = self.cfg.classes.len();
            let d = self.d;
            let tb = self.cfg.tokenizer.batch::<C>(&["chest ct"], dev);
            Cond {
                labels: Tensor::zeros([1, k, d, d, d], dev),
                text: text.forward(&tb),
                pad: tb.pad,
                scalars: Tensor::zeros([1, 4], dev),
            }
        }

        /// Seconds of `reps` forward passes and of `reps` training steps, after one warm-up
        /// of each.
        pub fn timings(&mut self, reps: usize) -> (Vec<f64>, Vec<f64>) {
            let time = |f: &mut dyn FnMut() -> f32| {
                let t = std::time::Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            };
            self.forward();
            self.train_step();
            let fwd = (0..reps).map(|_| time(&mut || self.forward())).collect();
            let step = (0..reps).map(|_| time(&mut || self.train_step())).collect();
            (fwd, step)
        }

        /// One forward pass without autodiff; returns the output's mean (reading it back
        /// also waits for an asynchronous device to finish).
        pub fn forward(&self) -> f32 {
            let m = self.model.valid();
            let d = self.d;
            let dev = self.device.clone();
            let x = model::normal_tensor::<B::InnerBackend, 5>([1, 4, d, d, d], 3, &dev);
            let c = self.cond(&m.text, &dev);
            m.unet
                .forward(x, &[0.5], &c)
                .mean()
                .into_scalar()
                .elem::<f32>()
        }

        /// One Adam step on the velocity loss.
        pub fn train_step(&mut self) -> f32 {
            let d = self.d;
            let x = model::normal_tensor::<B, 5>([1, 4, d, d, d], 3, &self.device);
            let c = self.cond(&self.model.text, &self.device);
            let out = self.model.unet.forward(x.clone(), &[0.5], &c);
            let loss = (out - x).powf_scalar(2.0).mean();
            let v = loss.clone().into_scalar().elem::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let mut optim = AdamConfig::new().init::<B, Ldm<B>>();
            self.model = optim.step(1e-4, self.model.clone(), grads);
            // Waits for the step to finish on an asynchronous device (a no-op on the CPU).
            B::sync(&self.device).ok();
            v
        }
    }
}
