//! synthcohort: labeled synthetic medical-imaging cohorts from one declarative pipeline file.
//!
//! Data flow: pipeline → cohort → anatomy → generate → acquire → io → trial, driven by
//! `engine`; `ARCHITECTURE.md` in the repository draws it and states the import rule.

pub mod acquire;
pub mod anatomy;
pub mod bounds;
pub mod cohort;
pub mod engine;
pub mod generate;
pub mod io;
pub mod lab;
pub mod pipeline;
pub mod rng;
pub mod sys;
pub mod tissue;
pub mod trial;
pub mod volume;

/// The crate version, recorded in every output header, manifest row and provenance file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
