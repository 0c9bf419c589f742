//! The trial's files: `scores.parquet` (one row per ROI), `results.parquet` (one row per arm,
//! then one per arm pair), the ROC and d′-versus-dose plots and `report.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use super::analysis::TrialResults;
use super::spec::{ObserverSpec, TrialSpec};
use super::TrialError;
use super::{delong_covariance, markdown_report, plot_roc, plot_xy, sample_size_for_delta_auc};
use crate::io;

/// What the report says about where the trial came from.
pub struct Provenance<'a> {
    pub pipeline: &'a str,
    /// Short pipeline hash.
    pub sha: &'a str,
    pub subjects: usize,
}

/// Writes every file into `out` (the run's `trial/`); returns the report's path.
pub fn write(
    out: &Path,
    t: &TrialSpec,
    res: &TrialResults,
    from: &Provenance,
) -> Result<PathBuf, TrialError> {
    io::atomic::write_atomic(&out.join("scores.parquet"), &scores_parquet(res)?)?;
    io::atomic::write_atomic(&out.join("results.parquet"), &results_parquet(res)?)?;
    io::atomic::write_atomic(&out.join("roc.png"), &plot_roc(&res.curves))?;
    let series: Vec<(String, Vec<(f64, f64)>)> =
        vec![("observer d′".into(), res.dose_points.clone())];
    io::atomic::write_atomic(
        &out.join("dprime_vs_dose.png"),
        &plot_xy("d′ vs dose", "CTDIvol (mGy)", "d′", &series, true),
    )?;
    let report = markdown_report(
        &format!("Virtual trial: {}", from.pipeline),
        &description(t, res, from),
        &res.arms,
        &res.pairs,
        t.alpha,
    );
    let report_path = out.join("report.md");
    io::atomic::write_atomic(&report_path, report.as_bytes())?;
    Ok(report_path)
}

fn f64_col(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn str_col<'a>(v: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn parquet(schema: Schema, cols: Vec<ArrayRef>) -> Result<Vec<u8>, TrialError> {
    let schema = Arc::new(schema);
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, None)?;
    w.write(&batch)?;
    Ok(w.into_inner()?)
}

fn scores_parquet(res: &TrialResults) -> Result<Vec<u8>, TrialError> {
    let rows = &res.scores;
    parquet(
        Schema::new(vec![
            Field::new("subject_id", DataType::Utf8, false),
            Field::new("arm", DataType::Utf8, false),
            Field::new("truth", DataType::Boolean, false),
            Field::new("score", DataType::Float64, false),
        ]),
        vec![
            str_col(rows.iter().map(|r| r.0.as_str())),
            str_col(rows.iter().map(|r| r.1.as_str())),
            Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            f64_col(rows.iter().map(|r| r.3)),
        ],
    )
}

/// The numeric columns of `results.parquet`, in order.
const RESULT_COLUMNS: [&str; 17] = [
    "auc",
    "auc_se",
    "auc_ci_low",
    "auc_ci_high",
    "auc_boot_low",
    "auc_boot_high",
    "dprime_auc",
    "dprime_scores",
    "ctdi_vol_mgy",
    "cnr",
    "noise",
    "centre_minus_ring",
    "delta_auc",
    "delta_se",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
];

/// One row per arm (kind = "arm"), then one per arm pair (kind = "pair").
fn results_parquet(res: &TrialResults) -> Result<Vec<u8>, TrialError> {
    let nan = f64::NAN;
    let mut kind = Vec::new();
    let (mut a_col, mut b_col) = (Vec::new(), Vec::new());
    let mut cols: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut push = |vals: [f64; 17]| {
        for (n, v) in RESULT_COLUMNS.iter().zip(vals) {
            cols.entry(n).or_default().push(v);
        }
    };
    let mut n_cases = Vec::new();
    for a in &res.arms {
        kind.push("arm");
        a_col.push(a.arm.clone());
        b_col.push(String::new());
        n_cases.push((a.n_present as u64, a.n_absent as u64));
        let e = |k: usize| a.extra.get(k).map_or(nan, |x| x.1);
        let u = &a.auc;
        push([
            u.auc,
            u.se_delong,
            u.ci_delong.0,
            u.ci_delong.1,
            u.ci_bootstrap.0,
            u.ci_bootstrap.1,
            u.dprime_from_auc,
            u.dprime_from_scores,
            e(0),
            e(1),
            e(2),
            e(3),
            nan,
            nan,
            nan,
            nan,
            nan,
        ]);
    }
    for pr in &res.pairs {
        kind.push("pair");
        a_col.push(pr.arm_a.clone());
        b_col.push(pr.arm_b.clone());
        n_cases.push((res.n_present as u64, res.n_absent as u64));
        let r = &pr.result;
        let mut v = [nan; 17];
        v[12..].copy_from_slice(&[r.delta_auc, r.se, r.ci.0, r.ci.1, r.p_value]);
        push(v);
    }
    let mut fields = vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("arm", DataType::Utf8, false),
        Field::new("arm_b", DataType::Utf8, false),
        Field::new("n_present", DataType::UInt64, false),
        Field::new("n_absent", DataType::UInt64, false),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        str_col(kind.iter().copied()),
        str_col(a_col.iter().map(String::as_str)),
        str_col(b_col.iter().map(String::as_str)),
        Arc::new(UInt64Array::from_iter_values(n_cases.iter().map(|c| c.0))),
        Arc::new(UInt64Array::from_iter_values(n_cases.iter().map(|c| c.1))),
    ];
    for n in RESULT_COLUMNS {
        fields.push(Field::new(n, DataType::Float64, false));
        arrays.push(f64_col(cols[n].iter().copied()));
    }
    parquet(Schema::new(fields), arrays)
}

/// The report's prose: design, dose law and sample size.
fn description(t: &TrialSpec, res: &TrialResults, from: &Provenance) -> String {
    let observer_text = match &t.observer {
        ObserverSpec::Npwmf => "non-prewhitening matched filter".to_string(),
        ObserverSpec::Cho { n, .. } => {
            format!("channelized Hotelling observer, {n} Laguerre–Gauss channels")
        }
        ObserverSpec::External { command, .. } => format!("external reader `{command}`"),
    };
    let (n_present, n_absent) = (res.n_present, res.n_absent);
    let mut desc = format!(
        "Pipeline `{}` (sha256 {}), {} subjects. Paired design: {n_present} signal-present ROIs centred on lesions, {n_absent} signal-absent ROIs (the same places in lesion-free twins with independent noise, plus organ sites of lesion-free subjects). Observer: {observer_text}; {}-fold cross-validation by subject; DeLong CIs and {} bootstrap resamples at α = {}.",
        from.pipeline, from.sha, from.subjects, t.folds, t.bootstrap, t.alpha
    );
    if let Some((s, se)) = res.dprime_dose_slope {
        let regime = if (s - 0.5).abs() <= 0.15 {
            "consistent with quantum-limited detection (theory: 0.5)"
        } else if s < 0.35 {
            "flatter than the quantum limit of 0.5: the anatomical background, not quantum noise, limits detection at the higher doses"
        } else {
            "steeper than the quantum limit of 0.5"
        };
        desc += &format!("\n\nThe observer's d′ (from its score distributions) rises with dose with a log–log slope of {s:.2} ± {se:.2}, {regime}.");
    }
    if let Some(first) = res.arms.first() {
        let (r, how) = arm_correlation(res);
        let n = sample_size_for_delta_auc(
            first.auc.auc.min(0.99),
            (first.auc.auc - t.target_delta_auc).max(0.5),
            r,
            t.alpha,
            t.power,
        );
        desc += &format!(
            "\n\nSample size: detecting ΔAUC = {} from AUC {:.3} ({}) at power {} needs about {n} cases per class ({how}).",
            t.target_delta_auc, first.auc.auc, first.arm, t.power
        );
    }
    desc += "\n\n![ROC curves](roc.png) ![d′ vs dose](dprime_vs_dose.png)";
    desc
}

/// The AUC correlation between the first two arms, measured on these cases (DeLong
/// covariance); 0.5 assumed when there is a single arm.
fn arm_correlation(res: &TrialResults) -> (f64, String) {
    let assumed = (0.5, "correlation 0.5 assumed".to_string());
    let [first, second, ..] = res.arms.as_slice() else {
        return assumed;
    };
    let c = delong_covariance(
        &res.scores_by_arm[&first.arm],
        &res.scores_by_arm[&second.arm],
        &res.truth,
    );
    let r = c[0][1] / (c[0][0] * c[1][1]).sqrt();
    if r.is_finite() {
        (
            r.clamp(0.0, 0.95),
            format!(
                "correlation {r:.2} measured between {} and {}",
                first.arm, second.arm
            ),
        )
    } else {
        assumed
    }
}
