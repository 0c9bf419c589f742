//! `synthcohort fidelity` on the quickstart cohort against the real torso CT in tests/data:
//! the procedural renderer must beat the label-mean painter on texture for every organ and on
//! HU distance for the solid organs — a criterion a painter-like generator fails.

mod common;

#[test]
fn procedural_cohort_is_closer_to_the_real_ct_than_the_painter() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = tmp.path().join("fid");
    let quickstart = common::repo("pipelines/quickstart.yaml");
    common::run_ok(&[
        "run",
        quickstart.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let data = |f: &str| {
        common::repo(&format!("tests/data/{f}"))
            .to_string_lossy()
            .to_string()
    };
    common::run_ok(&[
        "fidelity",
        run.to_str().unwrap(),
        "--real-image",
        &data("ts_ct_torso_3mm.nii.gz"),
        "--real-labels",
        &data("ts_ct_torso_3mm_seg_total.nii.gz"),
        "--real-names",
        &data("ts_total_classes.txt"),
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("fidelity.json")).unwrap()).unwrap();
    let get = |organ: &str, generator: &str| {
        rows.iter()
            .find(|r| r["organ"] == organ && r["generator"] == generator)
            .unwrap_or_else(|| panic!("no {generator} row for {organ}"))
            .clone()
    };
    for organ in ["liver", "spleen", "kidney", "lung", "vertebrae"] {
        let (painter, procedural) = (get(organ, "painter"), get(organ, "procedural"));
        let t = |r: &serde_json::Value| r["texture_distance"].as_f64().unwrap();
        eprintln!(
            "{organ}: W1 painter {:.1} procedural {:.1}; texture painter {:.2} procedural {:.2}",
            painter["hu_w1"],
            procedural["hu_w1"],
            t(&painter),
            t(&procedural)
        );
        assert!(
            t(&procedural) < 0.5 * t(&painter),
            "{organ}: {procedural} vs {painter}"
        );
        if organ != "lung" && organ != "vertebrae" {
            assert!(
                procedural["hu_w1"].as_f64().unwrap() < painter["hu_w1"].as_f64().unwrap(),
                "{organ}: {procedural} vs {painter}"
            );
        }
    }
    // The lungs' vessel fraction is measured on both sides.
    assert!(
        get("lung", "procedural")["vessel_fraction_real"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("| liver | painter |"));
}
