//! Virtual trial end to end: a null trial (two identical protocols) finds no difference, the
//! report's numbers are the Parquet files' numbers, `synthcohort trial` recomputes the same
//! results from the images, and an external reader (examples/external_observer.py) works.

mod common;

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, Float64Array, StringArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn read(path: &Path) -> arrow_array::RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1, "small tables come back as one batch");
    batches.remove(0)
}

fn f64s(b: &arrow_array::RecordBatch, name: &str) -> Vec<f64> {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

fn strs(b: &arrow_array::RecordBatch, name: &str) -> Vec<String> {
    let a = b.column_by_name(name).unwrap();
    let a = a.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

#[test]
fn null_trial_finds_no_difference_and_report_matches_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let p = common::repo("tests/pipelines/vct_null.yaml");
    common::run_ok(&[
        "run",
        p.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = out.join("trial");
    for f in [
        "results.parquet",
        "scores.parquet",
        "report.md",
        "roc.png",
        "dprime_vs_dose.png",
    ] {
        assert!(t.join(f).is_file(), "missing trial/{f}");
    }
    let res = read(&t.join("results.parquet"));
    let kind = strs(&res, "kind");
    let pair = kind.iter().position(|k| k == "pair").expect("a pair row");
    let (delta, lo, hi, pv) = (
        f64s(&res, "delta_auc")[pair],
        f64s(&res, "delta_ci_low")[pair],
        f64s(&res, "delta_ci_high")[pair],
        f64s(&res, "p_value")[pair],
    );
    eprintln!("null trial: ΔAUC {delta:.4} [{lo:.4}, {hi:.4}], p = {pv:.3}");
    assert!(lo <= 0.0 && hi >= 0.0, "CI [{lo}, {hi}] excludes 0");
    assert!(pv > 0.05, "p = {pv}");
    // Paired design: 24 lesions, 24 twin sites.
    let n_present = res
        .column_by_name("n_present")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n_present, 24);

    // The report carries the Parquet numbers.
    let report = std::fs::read_to_string(t.join("report.md")).unwrap();
    let aucs = f64s(&res, "auc");
    for (i, k) in kind.iter().enumerate() {
        if k == "arm" {
            assert!(
                report.contains(&format!("{:.3}", aucs[i])),
                "AUC {:.3} not in report",
                aucs[i]
            );
        }
    }
    assert!(
        report.contains(&format!("{delta:.3}")),
        "ΔAUC not in report"
    );
    assert!(report.contains("## Conclusion"));

    // Recomputed from the images alone: the same bytes.
    let before = std::fs::read(t.join("results.parquet")).unwrap();
    common::run_ok(&["trial", out.to_str().unwrap()]);
    assert_eq!(before, std::fs::read(t.join("results.parquet")).unwrap());
    // Twins are part of the verified output.
    common::run_ok(&["verify", out.to_str().unwrap()]);
}

/// A Python with numpy and nibabel (CI sets SYNTHCOHORT_PYTHON to its venv).
fn python() -> Option<String> {
    let py = std::env::var("SYNTHCOHORT_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import numpy, nibabel"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

#[test]
fn an_external_reader_scores_the_rois() {
    external_reader_scores(None);
}

#[test]
fn an_external_reader_takes_dicom_rois() {
    external_reader_scores(Some("pydicom"));
}

/// Runs the null trial with examples/external_observer.py as the reader; with `module`
/// (pydicom) the ROIs are handed over as DICOM.
fn external_reader_scores(module: Option<&str>) {
    let Some(py) = python().filter(|py| {
        module.is_none_or(|m| {
            std::process::Command::new(py)
                .args(["-c", &format!("import {m}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    }) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide numpy, nibabel and pydicom (SYNTHCOHORT_PYTHON)"
        );
        eprintln!("skipped: no python with numpy, nibabel and {module:?} here");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = common::repo("examples/external_observer.py");
    let text = std::fs::read_to_string(common::repo("tests/pipelines/vct_null.yaml"))
        .unwrap()
        .replace(
            "observer: npwmf",
            &format!(
                "observer: {{external: {{command: \"{py} {}\", format: {}}}}}",
                script.display(),
                if module.is_some() { "dicom" } else { "nifti" }
            ),
        );
    let p = tmp.path().join("ext.yaml");
    std::fs::write(&p, text).unwrap();
    let out = tmp.path().join("run");
    common::run_ok(&[
        "run",
        p.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ext = if module.is_some() { "dcm" } else { "nii.gz" };
    assert!(out
        .join(format!("trial/external/a/rois/roi_00000.{ext}"))
        .is_file());
    let res = read(&out.join("trial/results.parquet"));
    let auc = f64s(&res, "auc")[0];
    eprintln!("external reader AUC {auc:.3} ({ext} ROIs)");
    // Mean intensity in a disk is a working (if suboptimal) reader of +1.5 HU spheres.
    assert!(auc > 0.55 && auc <= 1.0, "{auc}");
}
