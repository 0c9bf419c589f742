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
pub mod error;
pub mod focal;
pub mod hu_histogram;
pub mod metal;
pub mod model;
pub mod noise;
pub mod sampler;
pub mod scheduler;
pub mod spread;
pub mod text;
pub mod texture;
pub mod tiled;
pub mod train;
pub mod unet;

#[cfg(test)]
mod tests;

/// The backend bound of training hooks, for callers that do not depend on burn themselves.
pub use burn::tensor::backend::AutodiffBackend;
pub use error::LdmError;
pub use model::{
    load, load_config, sample, save, ChannelSpec, Ldm, LdmConfig, Modality, SampleRequest,
    TrainingRecord,
};
pub use sampler::{Guidance, GuidanceChoice, Sampler, DEFAULT_STEPS};
pub use scheduler::{Scheduler, SchedulerConfig, Solver};
pub use text::Tokenizer;

/// burn's pure-Rust CPU backend.
pub type Cpu = burn::backend::Flex<f32>;
/// CPU backend with automatic differentiation, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32>;
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;
