//! The trial section of a pipeline: task, arms, ROI size, observer, statistics settings.
//! Declared here, by the stage that reads it; the pipeline language composes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrialTask {
    #[default]
    Detection,
}

/// Virtual clinical trial over the arms: each lesion-bearing subject is also generated
/// without its lesions (same seed, anatomy and texture) and both are imaged under every arm
/// with independent noise (the paired design of FDA's VICTRE); a model observer reads ROIs
/// and each arm gets AUC, d′ and confidence intervals, each arm pair a DeLong test.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialSpec {
    #[serde(default)]
    pub task: TrialTask,
    /// Arms to compare (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arms: Option<Vec<String>>,
    /// ROI edge length in mm (default: 4× the largest lesion diameter, at least 16 pixels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 500.0))]
    pub roi_mm: Option<f64>,
    #[serde(default)]
    pub observer: ObserverSpec,
    /// Keep only ROIs that lie wholly inside the lesions' organ (a uniform-background task
    /// such as low-contrast detectability in water); off for anatomical backgrounds.
    #[serde(default)]
    pub roi_within_organ: bool,
    /// Cross-validation folds for observers that train (1 = train and test on all ROIs).
    #[serde(default = "default_folds")]
    #[schemars(range(min = 1, max = 100))]
    pub folds: u32,
    /// Bootstrap resamples for confidence intervals.
    #[serde(default = "default_bootstrap")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub bootstrap: u32,
    /// Significance level.
    #[serde(default = "default_alpha")]
    #[schemars(range(min = 0.0001, max = 0.5))]
    pub alpha: f64,
    /// ΔAUC the sample-size estimate is for (default 0.05).
    #[serde(default = "default_delta_auc")]
    #[schemars(range(min = 0.001, max = 0.5))]
    pub target_delta_auc: f64,
    /// Power of the sample-size estimate.
    #[serde(default = "default_power")]
    #[schemars(range(min = 0.5, max = 0.999))]
    pub power: f64,
}

fn default_folds() -> u32 {
    5
}
fn default_bootstrap() -> u32 {
    1000
}
fn default_alpha() -> f64 {
    0.05
}
fn default_delta_auc() -> f64 {
    0.05
}
fn default_power() -> f64 {
    0.8
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    #[default]
    LaguerreGauss,
}

/// The reader: `npwmf`, `{cho: {channels: laguerre_gauss, n: 10, width_mm: 8}}`, or
/// `{external: {command: "python score.py"}}` (called with a folder of ROI NIfTIs and an
/// output CSV path; writes `file,score` rows).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ObserverSpec {
    /// Non-prewhitening matched filter.
    Npwmf,
    /// Channelized Hotelling observer.
    Cho {
        #[serde(default)]
        channels: ChannelKind,
        /// Number of channels.
        #[serde(default = "default_channels")]
        #[schemars(range(min = 1, max = 50))]
        n: u32,
        /// Channel width parameter in mm (default: matched to the mean lesion diameter).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0.1, max = 200.0))]
        width_mm: Option<f64>,
    },
    /// A user command (any AI detector).
    External {
        #[schemars(length(min = 1))]
        command: String,
        /// How the ROIs are handed over: `nifti` (`roi_00000.nii.gz`, …) or `dicom`
        /// (`roi_00000.dcm`, …: one CT or MR Image Storage instance each, with the arm's
        /// acquisition attributes, for readers that take DICOM).
        #[serde(default)]
        format: RoiFormat,
    },
}

/// File format of the ROIs an external reader gets.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoiFormat {
    #[default]
    Nifti,
    Dicom,
}

fn default_channels() -> u32 {
    10
}

impl Default for ObserverSpec {
    fn default() -> Self {
        ObserverSpec::Cho {
            channels: ChannelKind::LaguerreGauss,
            n: 10,
            width_mm: None,
        }
    }
}
