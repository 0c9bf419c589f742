//! The virtual clinical trial stage: its settings, the paired design (ROI cases), ROIs,
//! model observers, ROC/AUC analysis, d′, sample size, and the files it writes (Parquet
//! results, Markdown report, PNG plots).
//!
//! The trial asks how well a reader (a model observer) detects lesions under each imaging
//! arm and whether arms differ. The statistics are pure functions of ROIs or scores;
//! [`analysis::analyze`] reads the ROIs through a reader the engine gives it, so a fresh run
//! and `synthcohort trial OUTDIR` share one path.
//!
//! Sign convention everywhere: a higher score means "signal more likely present".

pub mod analysis;
pub mod design;
pub mod dprime;
pub mod external;
pub mod normal;
pub mod observer;
pub mod output;
pub mod plots;
pub mod power;
pub mod report;
pub mod roc;
pub mod roi;
pub mod spec;

#[cfg(test)]
mod tests;

pub use dprime::{dprime_from_auc, dprime_from_scores, loglog_slope};
pub use normal::{normal_cdf, normal_quantile};
pub use observer::{
    cross_validated_scores, fold_assignment, laguerre_gauss_channels, npwmf_template, score,
    score_with_template, Observer,
};
pub use plots::{plot_roc, plot_xy, RocCurve};
pub use power::{auc_variance_hanley_mcneil, power_for_delta_auc, sample_size_for_delta_auc};
pub use report::{conclusion, markdown_report, ArmRow, PairRow};
pub use roc::{
    auc, auc_analysis, bootstrap_aucs, delong_covariance, delong_paired, delong_variance,
    roc_curve, AucResult, PairedResult,
};
pub use roi::{extract_roi, Roi};
pub use spec::{ObserverSpec, TrialSpec};

/// Everything that can stop a trial, naming the subject, arm or command concerned.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("the trial needs at least 2 signal-present and 2 signal-absent ROIs; this run has {n_present} and {n_absent} (more subjects or a higher lesion count/prevalence)")]
    TooFewCases { n_present: usize, n_absent: usize },
    #[error("no image of {subject} for arm {arm}")]
    MissingImage { subject: String, arm: String },
    #[error("a {roi_px}-pixel ROI at {center_mm:?} mm leaves the image of {subject} ({arm}); lower trial.roi_mm")]
    RoiOutside {
        roi_px: usize,
        center_mm: [f64; 3],
        subject: String,
        arm: String,
    },
    #[error("external observer `{command}` {reason}")]
    External { command: String, reason: String },
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    #[error("writing trial tables: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("writing trial tables: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}
