//! Acquisition simulators: tissue object → the image a protocol would produce.

pub mod ct;
pub mod mri;
