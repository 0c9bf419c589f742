//! Synthetic-to-real segmentation benchmark (`benches/utility`): a compact 2D UNet trained
//! with one budget on synthetic cohorts, on a split of a real scan, or both, and scored on
//! the real scan's held-out slices. The binary `utility` runs it; this library holds the
//! parts, each unit-tested against analytic results.

pub mod arms;
pub mod classes;
pub mod contrast;
pub mod data;
pub mod metrics;
pub mod report;
pub mod score;
pub mod slices;
pub mod train;
pub mod unet;
