//! Concrete CPU entry points. The engine calls these instead of the generic functions so that
//! burn's generics are instantiated (and compiled) here once, not in every crate that uses
//! the model.

use std::path::Path;

use crate::model::{self, Ldm, LdmConfig, SampleRequest};
use crate::train::{self, Case, Hooks, Resume, TrainOptions};
use crate::{Cpu, CpuTrain, LdmError};

pub type TrainModel = Ldm<CpuTrain>;
pub use crate::train::Latents;

pub fn init_train(cfg: &LdmConfig, seed: u64) -> Result<TrainModel, LdmError> {
    Ldm::init_seeded(cfg, seed, &Default::default())
}

pub fn load_train(dir: &Path) -> Result<(TrainModel, LdmConfig), LdmError> {
    model::load::<CpuTrain>(dir, &Default::default())
}

pub fn save_train(m: &TrainModel, cfg: &LdmConfig, dir: &Path) -> Result<(), LdmError> {
    model::save(m, cfg, dir)
}

pub fn train_autoencoder(
    m: TrainModel,
    cfg: &LdmConfig,
    cases: &[Case],
    opts: &TrainOptions,
    resume: Option<Resume>,
    hooks: &mut dyn Hooks<CpuTrain>,
) -> Result<TrainModel, LdmError> {
    train::train_autoencoder(m, cfg, cases, opts, resume, hooks, &Default::default())
}

/// Posterior-mean latents, computed without autodiff (a tracked forward pass per case would
/// keep its graph alive and exhaust memory over a dataset).
pub fn encode_cases(
    m: &TrainModel,
    cfg: &LdmConfig,
    cases: &[Case],
    progress: &mut dyn FnMut(usize),
) -> Result<Latents, LdmError> {
    use burn::module::AutodiffModule;
    train::encode_cases(&m.valid(), cfg, cases, &Default::default(), progress)
}

pub fn train_denoiser(
    m: TrainModel,
    cfg: &LdmConfig,
    cases: &[Case],
    latents: &Latents,
    opts: &TrainOptions,
    resume: Option<Resume>,
    hooks: &mut dyn Hooks<CpuTrain>,
) -> Result<TrainModel, LdmError> {
    train::train_denoiser(
        m,
        cfg,
        cases,
        latents,
        opts,
        resume,
        hooks,
        &Default::default(),
    )
}

/// A model loaded for sampling.
pub struct Sampler {
    pub model: Ldm<Cpu>,
    pub config: LdmConfig,
}

impl Sampler {
    pub fn load(dir: &Path) -> Result<Self, LdmError> {
        let (model, config) = model::load::<Cpu>(dir, &Default::default())?;
        Ok(Self { model, config })
    }

    /// Physical values, channel-major; `progress(step, steps)` after each step.
    pub fn sample(
        &self,
        req: &SampleRequest,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f32>, LdmError> {
        model::sample(
            &self.model,
            &self.config,
            req,
            &Default::default(),
            progress,
        )
    }

    /// Posterior-mean latents of objects (for evaluation).
    pub fn encode(&self, cases: &[Case]) -> Result<Latents, LdmError> {
        train::encode_cases(
            &self.model,
            &self.config,
            cases,
            &Default::default(),
            |_| {},
        )
    }
}

/// One denoiser forward pass and one training step on a `[1, 4, d, d, d]` latent (for the
/// benchmarks), on the CPU backend.
pub mod bench {
    use burn::module::AutodiffModule;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use burn::tensor::Tensor;

    use super::*;
    use crate::unet::Cond;

    pub struct DenoiserBench {
        model: Ldm<CpuTrain>,
        cfg: LdmConfig,
        d: usize,
    }

    impl DenoiserBench {
        pub fn new(cfg: &LdmConfig, d: usize) -> Result<Self, LdmError> {
            Ok(Self {
                model: Ldm::init_seeded(cfg, 1, &Default::default())?,
                cfg: cfg.clone(),
                d,
            })
        }

        fn cond<B: burn::tensor::backend::Backend>(
            &self,
            text: &crate::text::TextEncoder<B>,
        ) -> Cond<B> {
            let dev = Default::default();
            let k = self.cfg.classes.len();
            let d = self.d;
            let tb = self.cfg.tokenizer.batch::<B>(&["chest ct"], &dev);
            Cond {
                labels: Tensor::zeros([1, k, d, d, d], &dev),
                text: text.forward(&tb),
                pad: tb.pad,
                scalars: Tensor::zeros([1, 4], &dev),
            }
        }

        /// One forward pass without autodiff; returns the output's mean (to keep it alive).
        pub fn forward(&self) -> f32 {
            let m = self.model.valid();
            let d = self.d;
            let x = model::normal_tensor::<Cpu, 5>([1, 4, d, d, d], 3, &Default::default());
            let c = self.cond(&m.text);
            m.unet.forward(x, &[0.5], &c).mean().into_scalar()
        }

        /// One Adam step on the velocity loss.
        pub fn train_step(&mut self) -> f32 {
            let d = self.d;
            let dev = Default::default();
            let x = model::normal_tensor::<CpuTrain, 5>([1, 4, d, d, d], 3, &dev);
            let c = self.cond(&self.model.text);
            let out = self.model.unet.forward(x.clone(), &[0.5], &c);
            let loss = (out - x).powf_scalar(2.0).mean();
            let v = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            let mut optim = AdamConfig::new().init::<CpuTrain, Ldm<CpuTrain>>();
            self.model = optim.step(1e-4, self.model.clone(), grads);
            v
        }
    }
}
