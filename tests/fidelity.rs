//! `synthcohort fidelity` on the quickstart cohort against the real torso CT in tests/data:
//! the procedural renderer must beat the label-mean painter on texture for every organ and on
//! HU distance for the solid organs — a criterion a painter-like generator fails.

mod common;

use std::path::Path;

/// `synthcohort run PIPELINE --out OUT --quiet`.
fn run_pipeline(pipeline: &str, out: &Path) {
    let p = common::repo(pipeline);
    common::run_ok(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
}

fn row(rows: &[serde_json::Value], organ: &str, generator: &str) -> serde_json::Value {
    rows.iter()
        .find(|r| r["organ"] == organ && r["generator"] == generator)
        .unwrap_or_else(|| panic!("no {generator} row for {organ}"))
        .clone()
}

fn num(r: &serde_json::Value, k: &str) -> f64 {
    r[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {r}"))
}

/// Asserts that for every organ the model's `key` distance is below the procedural
/// renderer's (printing both).
fn assert_model_beats_procedural(rows: &[serde_json::Value], organs: &[&str], key: &str) {
    for organ in organs {
        let (proc_, model) = (row(rows, organ, "procedural"), row(rows, organ, "model"));
        eprintln!(
            "{organ} {key}: procedural {:.2} model {:.2}",
            num(&proc_, key),
            num(&model, key)
        );
        assert!(
            num(&model, key) < num(&proc_, key),
            "{organ} {key}: {model} vs {proc_}"
        );
    }
}

/// How far the model's and the procedural renderer's lung vessel fractions miss the real one.
fn vessel_fraction_misses(rows: &[serde_json::Value]) -> (f64, f64) {
    let lung = |g: &str| num(&row(rows, "lung", g), "vessel_fraction_cohort");
    let real = num(&row(rows, "lung", "model"), "vessel_fraction_real");
    eprintln!(
        "vessel fraction: model {} procedural {} real {real}",
        lung("model"),
        lung("procedural")
    );
    (
        (lung("model") - real).abs(),
        (lung("procedural") - real).abs(),
    )
}

/// `synthcohort fidelity RUNS… --real-image IMAGE --real-labels LABELS --real-names NAMES
/// [EXTRA…] --out OUT` (paths relative to the repository), and the rows it wrote.
fn fidelity(
    runs: &[&Path],
    image: &str,
    labels: &str,
    names: &str,
    extra: &[&str],
    out: &Path,
) -> Vec<serde_json::Value> {
    let path = |f: &str| common::repo(f).to_string_lossy().to_string();
    let mut args: Vec<String> = vec!["fidelity".into()];
    args.extend(runs.iter().map(|r| r.to_string_lossy().to_string()));
    for (k, v) in [
        ("--real-image", path(image)),
        ("--real-labels", path(labels)),
        ("--real-names", path(names)),
    ] {
        args.push(k.into());
        args.push(v);
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    args.push("--out".into());
    args.push(out.to_string_lossy().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run_ok(&refs);
    serde_json::from_slice(&std::fs::read(out.join("fidelity.json")).unwrap()).unwrap()
}

#[test]
fn procedural_cohort_is_closer_to_the_real_ct_than_the_painter() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = tmp.path().join("fid");
    run_pipeline("pipelines/quickstart.yaml", &run);
    let rows = fidelity(
        &[&run],
        "tests/data/ts_ct_torso_3mm.nii.gz",
        "tests/data/ts_ct_torso_3mm_seg_total.nii.gz",
        "tests/data/ts_total_classes.txt",
        &[],
        &out,
    );
    let get = |organ: &str, generator: &str| row(&rows, organ, generator);
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

/// Tissues whose HU distribution (W1) and texture spectrum the real-CT model draws closer to
/// the held-out real scan than the procedural renderer (measured: README, *A model trained on
/// a real CT*; liver and spleen HU and fat texture — one real patch there — are where it is
/// not).
const MODEL_BEATS_PROCEDURAL_HU: &[&str] = &["kidney", "lung", "vertebrae", "muscle", "fat"];
const MODEL_BEATS_PROCEDURAL_TEXTURE: &[&str] =
    &["liver", "spleen", "kidney", "lung", "vertebrae", "muscle"];

/// The shipped real-CT model `ct-abdomen` against the real scan it learned from, only where it
/// never trained (models/ct-abdomen/heldout/test.nii.gz: the left upper abdomen and lung base,
/// tools/real_ct_dataset.py), beside the painter and the procedural renderer on the same
/// label map. A painter-like model fails the texture criterion by an order of magnitude; the
/// model must also be closer than the procedural renderer in HU distribution for the tissues
/// where the closing note of issue 19 says it is.
#[test]
fn real_ct_model_on_its_held_out_region() {
    let tmp = tempfile::tempdir().unwrap();
    let (procedural, model) = (tmp.path().join("procedural"), tmp.path().join("model"));
    run_pipeline("pipelines/fidelity/ct_abdomen_procedural.yaml", &procedural);
    run_pipeline("pipelines/fidelity/ct_abdomen_model.yaml", &model);
    assert_no_metal_and_in_range(&model);
    // The renderer's Gaussian lung texture reached −1054 HU in 6 voxels before it was held
    // to the CT scale too.
    assert_in_hu_range(&procedural);
    let out = tmp.path().join("fid");
    let test_region = common::repo("models/ct-abdomen/heldout/test.nii.gz");
    let rows = fidelity(
        &[&procedural, &model],
        "tests/data/ts_ct_torso_3mm.nii.gz",
        "models/ct-abdomen/heldout/labels.nii.gz",
        "models/ct-abdomen/heldout/names.txt",
        &["--region", test_region.to_str().unwrap()],
        &out,
    );
    let get = |organ: &str, generator: &str| row(&rows, organ, generator);
    for organ in [
        "liver",
        "spleen",
        "kidney",
        "lung",
        "vertebrae",
        "muscle",
        "fat",
    ] {
        let (painter, proc_, model) = (
            get(organ, "painter"),
            get(organ, "procedural"),
            get(organ, "model"),
        );
        eprintln!(
            "{organ}: W1 painter {:.1} procedural {:.1} model {:.1}; texture {:.2} {:.2} {:.2}; GLCM {:.2} {:.2} {:.2}",
            num(&painter, "hu_w1"),
            num(&proc_, "hu_w1"),
            num(&model, "hu_w1"),
            num(&painter, "texture_distance"),
            num(&proc_, "texture_distance"),
            num(&model, "texture_distance"),
            num(&painter, "glcm_distance"),
            num(&proc_, "glcm_distance"),
            num(&model, "glcm_distance"),
        );
        assert!(
            num(&model, "texture_distance") < 0.25 * num(&painter, "texture_distance"),
            "{organ}: {model} vs {painter}"
        );
        assert!(
            num(&model, "glcm_distance") < num(&painter, "glcm_distance"),
            "{organ}: {model} vs {painter}"
        );
    }
    assert_model_beats_procedural(&rows, MODEL_BEATS_PROCEDURAL_HU, "hu_w1");
    assert_model_beats_procedural(&rows, MODEL_BEATS_PROCEDURAL_TEXTURE, "texture_distance");
    // The lung base's vessels: the renderer has none (no voxel above −500 HU), the model's
    // stochastic detail draws the upper tail of its training lung's residual.
    let (model_miss, procedural_miss) = vessel_fraction_misses(&rows);
    assert!(model_miss < 0.5 * procedural_miss);
    assert!(out.join("patches.png").is_file());
}

/// The model's samples stay on the CT number scale (its stochastic detail's tails reached
/// −2700 HU outside the body before they were held to it), and its training patient's left
/// hip prosthesis (6.1 % of the real `femur_left` at 3000 HU or more) is not drawn into the left
/// femur of a sample: `femur_left` is marked as metal and drawn by its mirror. Nor is the
/// stone in that patient's left kidney (29 voxels of 200–1100 HU) scattered over every sampled
/// left kidney as specks (59–70 voxels above 150 HU per subject before the stochastic detail
/// left focal findings out: `synthcohort_ldm::focal`).
fn assert_no_metal_and_in_range(cohort: &Path) {
    use synthcohort::io::nifti;
    let id = |name: &str| {
        synthcohort::anatomy::ontology::label_by_name(name)
            .unwrap()
            .id
    };
    assert_in_hu_range(cohort);
    let (femur, kidney) = (id("femur_left"), id("kidney_left"));
    for sub in ["sub-0001", "sub-0002"] {
        let hu = nifti::read_image(&cohort.join(format!("images/{sub}_object.nii.gz"))).unwrap();
        let labels = nifti::read_labels(&cohort.join(format!("labels/{sub}.nii.gz"))).unwrap();
        let values_of = |label: u16| -> Vec<f32> {
            hu.data
                .iter()
                .zip(&labels.data)
                .filter(|(_, &l)| l == label)
                .map(|(&v, _)| v)
                .collect()
        };
        let femur_hu = values_of(femur);
        assert!(
            femur_hu.len() > 1000,
            "{sub}: {} femur_left voxels",
            femur_hu.len()
        );
        let metal = femur_hu
            .iter()
            .filter(|&&v| v > synthcohort_ldm::metal::METAL_HU)
            .count();
        assert!(
            (metal as f64) < 0.001 * femur_hu.len() as f64,
            "{sub}: {metal} of {} femur_left voxels above {} HU",
            femur_hu.len(),
            synthcohort_ldm::metal::METAL_HU
        );
        let kidney_hu = values_of(kidney);
        let specks = kidney_hu.iter().filter(|&&v| v > 150.0).count();
        assert!(
            kidney_hu.len() > 1000 && specks < 10,
            "{sub}: {specks} of {} kidney_left voxels above 150 HU",
            kidney_hu.len()
        );
    }
}

/// Every subject's HU map lies within the CT number scale (`synthcohort::generate::HU_MIN`…
/// `HU_MAX`).
fn assert_in_hu_range(cohort: &Path) {
    for sub in ["sub-0001", "sub-0002"] {
        let hu =
            synthcohort::io::nifti::read_image(&cohort.join(format!("images/{sub}_object.nii.gz")))
                .unwrap();
        let (lo, hi) = hu
            .data
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(
            lo >= synthcohort::generate::HU_MIN && hi <= synthcohort::generate::HU_MAX,
            "{sub}: HU {lo}..{hi}"
        );
    }
}

/// The same model on a second real patient it never saw — the arterial-phase chest CT behind the
/// `chest` atlas, at 3 mm on its own rule-derived label map (tests/data/ts_ct_chest_3mm*,
/// tools/second_patient_ct.py) — beside the procedural renderer on the same labels. Measured
/// once, nothing tuned on it (README, *A model trained on a real CT*): closer in HU
/// distribution for lung, muscle and fat, in texture spectrum for muscle and fat, and the
/// lungs' vessel fraction nearer the real one.
#[test]
fn real_ct_model_on_a_second_patient() {
    let tmp = tempfile::tempdir().unwrap();
    let (procedural, model) = (tmp.path().join("procedural"), tmp.path().join("model"));
    run_pipeline("pipelines/fidelity/ct_chest_procedural.yaml", &procedural);
    run_pipeline("pipelines/fidelity/ct_chest_model.yaml", &model);
    let out = tmp.path().join("fid");
    let rows = fidelity(
        &[&procedural, &model],
        "tests/data/ts_ct_chest_3mm.nii.gz",
        "tests/data/ts_ct_chest_3mm_labels.nii.gz",
        "tests/data/ts_ct_chest_3mm_names.txt",
        &[],
        &out,
    );
    assert_model_beats_procedural(&rows, &["lung", "muscle", "fat"], "hu_w1");
    assert_model_beats_procedural(&rows, &["muscle", "fat"], "texture_distance");
    let (model_miss, procedural_miss) = vessel_fraction_misses(&rows);
    assert!(model_miss < procedural_miss);
}
