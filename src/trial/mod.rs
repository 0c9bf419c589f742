//! Virtual clinical trial statistics: ROIs, model observers, ROC/AUC analysis, d′, sample
//! size, the Markdown report and the PNG plots.
//!
//! The trial asks how well a reader (a model observer) detects lesions under each imaging
//! arm and whether arms differ. Everything here is a pure function of ROIs or scores; the
//! engine extracts the ROIs, chooses arms and pairs, and writes the files.
//!
//! Sign convention everywhere: a higher score means "signal more likely present".

pub mod dprime;
pub mod normal;
pub mod observer;
pub mod plots;
pub mod power;
pub mod report;
pub mod roc;
pub mod roi;

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
