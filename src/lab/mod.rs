//! The model lab: tools around the latent diffusion model rather than stages of a run —
//! loading training datasets (nnU-Net layout, any label spelling), training (`synthcohort
//! train`) and evaluation (`synthcohort eval-model`). It sits beside the engine at the top of
//! the crate and may use every stage.

pub mod data;
pub mod eval;
pub mod train;
