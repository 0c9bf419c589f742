//! Latent diffusion model of synthcohort (burn): a 3D KL autoencoder with 4× compression,
//! a label- and text-conditioned UNet denoiser, a small prompt encoder, rectified-flow and
//! DDPM/DDIM schedulers, training loops and self-describing checkpoints.
//!
//! Everything is generic over burn's `Backend`; [`Cpu`] (burn-flex) is the default and the
//! `cuda` feature adds [`Gpu`]. Kept in its own crate because instantiating burn generics
//! takes minutes to compile; the engine calls the concrete entry points below.

pub mod autoencoder;
pub mod blocks;
pub mod cpu;
pub mod model;
pub mod scheduler;
pub mod text;
pub mod train;
pub mod unet;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use model::{
    load, load_config, sample, save, ChannelSpec, Guidance, GuidanceChoice, Ldm, LdmConfig,
    Modality, SampleRequest, TrainingRecord, DEFAULT_STEPS,
};
pub use scheduler::{SchedulerConfig, Solver};
pub use text::Tokenizer;

/// burn's pure-Rust CPU backend.
pub type Cpu = burn::backend::Flex<f32>;
/// CPU backend with automatic differentiation, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32>;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

#[derive(Debug, thiserror::Error)]
pub enum LdmError {
    #[error("model configuration: {0}")]
    Config(String),
    #[error("model weights: {0}")]
    Weights(String),
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl LdmError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        LdmError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A loaded model on the CPU backend, ready to sample.
pub struct CpuModel {
    pub model: Ldm<Cpu>,
    pub config: LdmConfig,
}

impl CpuModel {
    pub fn load(dir: &Path) -> Result<Self, LdmError> {
        let (model, config) = load::<Cpu>(dir, &Default::default())?;
        Ok(Self { model, config })
    }

    pub fn sample(
        &self,
        req: &SampleRequest,
        progress: impl FnMut(usize, usize),
    ) -> Result<Vec<f32>, LdmError> {
        sample(
            &self.model,
            &self.config,
            req,
            &Default::default(),
            progress,
        )
    }
}
