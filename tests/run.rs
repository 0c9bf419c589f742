//! Whole runs of the binary: outputs, determinism across runs, `--jobs` and `--subjects`,
//! lesions inside their organs, NIfTI geometry, and resume after a killed run.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use synthcohort::anatomy::{self, ontology};
use synthcohort::io;

const TINY: &str = "tests/pipelines/tiny.yaml";

fn tiny() -> String {
    common::repo(TINY).to_string_lossy().to_string()
}

fn run_tiny(out: &Path, extra: &[&str]) {
    let mut args = vec!["run", TINY, "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let t = tiny();
    args[1] = &t;
    common::run_ok(&args);
}

#[test]
fn a_run_writes_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tiny(&out, &["--jobs", "2"]);
    for f in [
        "manifest.parquet",
        "labels.json",
        "provenance.json",
        "preview.png",
        "dataset.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    assert_eq!(rows.len(), 6 * 2, "one row per subject × arm");
    for r in &rows {
        let img = out.join(&r.image_path);
        let lab = out.join(&r.label_path);
        assert_eq!(io::sha256_file(&img).unwrap(), r.image_sha256);
        assert_eq!(io::sha256_file(&lab).unwrap(), r.label_sha256);
        assert_eq!(r.image_dims, [48, 48, 40]);
    }
    // Exactly two subjects carry the count-based condition.
    let mut with_nodule: Vec<&str> = rows
        .iter()
        .filter(|r| r.conditions.contains(&"solid_nodule".into()))
        .map(|r| r.subject_id.as_str())
        .collect();
    with_nodule.dedup();
    assert_eq!(with_nodule.len(), 2);
    // nnU-Net layout: one case per subject × arm, consecutive labels.
    let ds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(ds["numTraining"], 12);
    assert_eq!(ds["file_ending"], ".nii.gz");
    let n_images = std::fs::read_dir(out.join("imagesTr")).unwrap().count();
    assert_eq!(n_images, 12);
    let labels = ds["labels"].as_object().unwrap();
    let mut ids: Vec<u64> = labels.values().map(|v| v.as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());
    let lab = io::read_labels(&out.join("labelsTr/sub-0001_hu.nii.gz")).unwrap();
    assert!(lab.data.iter().all(|&v| (v as usize) < ids.len()));
}

#[test]
fn runs_are_deterministic_across_runs_jobs_and_subsets() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    run_tiny(&a, &["--jobs", "1"]);
    run_tiny(&b, &["--jobs", "2"]);
    common::assert_same_files(&a, &b);

    run_tiny(&c, &["--subjects", "2..5", "--jobs", "2"]);
    let full = io::read_manifest(&a.join("manifest.parquet")).unwrap();
    let part = io::read_manifest(&c.join("manifest.parquet")).unwrap();
    let expected: Vec<_> = full
        .iter()
        .filter(|r| (2..5).contains(&r.subject_index))
        .cloned()
        .collect();
    assert_eq!(part, expected);
    for r in &part {
        for f in [&r.image_path, &r.label_path] {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(c.join(f)).unwrap(),
                "{f}"
            );
        }
    }
}

/// The labels that count as "inside" a lesion's organ (a group such as `lung` spans lobes).
fn organ_ids(organ: &str) -> Vec<u16> {
    ontology::organ_group(organ).unwrap()
}

#[test]
fn lesions_lie_inside_their_organs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tiny(&out, &[]);
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    let mut checked = 0;
    for r in rows.iter().filter(|r| r.arm == "hu") {
        let lab = io::read_labels(&out.join(&r.label_path)).unwrap();
        let g = lab.grid.clone();
        for les in &r.lesions {
            let organ = organ_ids(&les.organ);
            let mut n = 0;
            for idx in 0..g.len() {
                if lab.data[idx] != les.label_id {
                    continue;
                }
                n += 1;
                let [i, j, k] = g.ijk(idx);
                // Every face neighbour is the lesion itself or its organ: it never touches
                // another organ or the outside.
                for (di, dj, dk) in [
                    (1i64, 0i64, 0i64),
                    (-1, 0, 0),
                    (0, 1, 0),
                    (0, -1, 0),
                    (0, 0, 1),
                    (0, 0, -1),
                ] {
                    let (a, b, c) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                    assert!(
                        a >= 0
                            && b >= 0
                            && c >= 0
                            && (a as usize) < g.dims[0]
                            && (b as usize) < g.dims[1]
                            && (c as usize) < g.dims[2]
                    );
                    let v = lab.get(a as usize, b as usize, c as usize);
                    assert!(
                        v == les.label_id || organ.contains(&v) || v >= ontology::LESION_ID_BASE,
                        "{} lesion {} touches label {v}",
                        r.subject_id,
                        les.label_id
                    );
                }
            }
            assert!(n > 0, "lesion {} has no voxels", les.label_id);
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "tiny pipeline produced only {checked} lesions"
    );
}

#[test]
fn images_carry_the_grid_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tiny(&out, &["--subjects", "0..1"]);
    let path = out.join("images/sub-0001_hu.nii.gz");
    use nifti::NiftiObject;
    let obj = nifti::ReaderOptions::new().read_file(&path).unwrap();
    let h = obj.header();
    assert_eq!(h.sform_code, 1);
    assert_eq!(h.qform_code, 1);
    assert_eq!(&h.pixdim[1..4], &[8.0, 8.0, 7.0]);
    assert_eq!(h.dim[..4], [3, 48, 48, 40]);
    // Centred grid: origin at −(n−1)/2 · spacing.
    assert_eq!(h.srow_x, [8.0, 0.0, 0.0, -188.0]);
    assert_eq!(h.srow_y, [0.0, 8.0, 0.0, -188.0]);
    assert_eq!(h.srow_z, [0.0, 0.0, 7.0, -136.5]);
    let descrip = String::from_utf8_lossy(&h.descrip).to_string();
    assert!(descrip.starts_with("synthcohort"), "{descrip}");
    // HU values are in a physical range: air outside, bone somewhere.
    let img = io::read_image(&path).unwrap();
    let min = img.data.iter().cloned().fold(f32::INFINITY, f32::min);
    let max = img.data.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    assert!(min < -900.0 && max > 100.0, "{min} {max}");
}

fn records(out: &Path) -> usize {
    std::fs::read_dir(out.join(".synthcohort/rows"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn resume_after_a_killed_run_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    run_tiny(&whole, &["--jobs", "1"]);

    for kill_after in [0usize, 2, 4] {
        let out: PathBuf = tmp.path().join(format!("killed{kill_after}"));
        let mut child = common::bin()
            .args([
                "run",
                &tiny(),
                "--quiet",
                "--jobs",
                "1",
                "--out",
                out.to_str().unwrap(),
            ])
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while records(&out) < kill_after && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(!out.join("manifest.parquet").exists() || records(&out) == 6);
        common::run_ok(&[
            "run",
            &tiny(),
            "--quiet",
            "--jobs",
            "2",
            "--resume",
            "--out",
            out.to_str().unwrap(),
        ]);
        common::assert_same_files(&whole, &out);
    }
}

#[test]
fn an_existing_run_folder_is_not_overwritten_by_accident() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tiny(&out, &["--subjects", "0..1"]);
    let again = common::run(&[
        "run",
        &tiny(),
        "--quiet",
        "--subjects",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    common::run_ok(&[
        "run",
        &tiny(),
        "--quiet",
        "--subjects",
        "0..1",
        "--overwrite",
        "--out",
        out.to_str().unwrap(),
    ]);
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = common::run_ok(&["run", &tiny(), "--dry-run", "--out", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("subjects   6") && text.contains("memory"),
        "{text}"
    );
    assert!(!out.exists());
}

/// The dry run's peak memory (MiB) as printed.
fn dry_run_mib(pipeline: &std::path::Path, out: &std::path::Path) -> f64 {
    let o = common::run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("memory"))
        .unwrap_or_else(|| panic!("{text}"));
    let num: f64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    if line.contains("GiB") {
        num * 1024.0
    } else {
        num
    }
}

/// The diffusion model's memory is part of the dry run: the same pipeline with the latent
/// diffusion generator estimates at least the model's weights (their compressed file size,
/// a lower bound of what sampling holds) more than with the procedural renderer.
#[test]
fn dry_run_counts_the_diffusion_model() {
    let tmp = tempfile::tempdir().unwrap();
    let ldm = common::repo("pipelines/ldm_thorax.yaml");
    let text = std::fs::read_to_string(&ldm).unwrap();
    assert!(text.contains("kind: latent_diffusion"));
    let procedural = tmp.path().join("ldm_thorax_procedural.yaml");
    std::fs::write(
        &procedural,
        text.replace("kind: latent_diffusion", "kind: procedural"),
    )
    .unwrap();
    let out = tmp.path().join("run");
    let with_model = dry_run_mib(&ldm, &out);
    let without = dry_run_mib(&procedural, &out);
    let weights_mib = std::fs::metadata(common::repo("models/ct-thorax/weights.mpk.gz"))
        .unwrap()
        .len() as f64
        / (1u64 << 20) as f64;
    assert!(
        with_model - without >= weights_mib,
        "{with_model} MiB with the model, {without} without, weights {weights_mib:.1} MiB"
    );
    assert!(!out.exists());
}

#[test]
fn real_label_maps_import_by_name_and_take_lesions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let pipeline = common::repo("tests/pipelines/import_ts.yaml");
    let o = common::run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    assert_eq!(rows.len(), 2);
    let lab = io::read_labels(&out.join(&rows[0].label_path)).unwrap();
    // The real segmentation's organs arrive under their TotalSegmentator ids and names.
    let liver = ontology::label_by_name("liver").unwrap().id;
    let present: std::collections::BTreeSet<u16> = lab.data.iter().copied().collect();
    for organ in ["liver", "spleen", "kidney_left", "aorta", "vertebrae_L1"] {
        assert!(
            present.contains(&ontology::label_by_name(organ).unwrap().id),
            "{organ} missing"
        );
    }
    // With body scaling the imported map varies like an atlas: each subject's liver is drawn
    // from the literature norm for its height, weight and sex (within 2.5 SD). The scan's
    // field cuts the liver dome, so the map holds the fraction `in_field` of a whole liver
    // (its 1126 mL against the norm's 1544 mL for the reference adult).
    let src = io::nifti::read_labels(&common::repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz"))
        .unwrap();
    let in_field = src.data.iter().filter(|&&v| v == 5).count() as f64 * src.grid.voxel_ml()
        / anatomy::norms::organ_norm("liver", &anatomy::BodySize::median())
            .unwrap()
            .mean_ml;
    for r in &rows {
        let lab = io::read_labels(&out.join(&r.label_path)).unwrap();
        let liver_ml = lab.data.iter().filter(|&&v| v == liver).count() as f64
            * lab.grid.voxel_ml()
            + r.lesions.iter().map(|l| l.volume_ml).sum::<f64>();
        let body = anatomy::BodySize {
            height_cm: r.height_cm,
            weight_kg: r.weight_kg,
            sex: if r.sex == "female" {
                anatomy::Sex::Female
            } else {
                anatomy::Sex::Male
            },
            age_years: r.age,
        };
        let norm = anatomy::norms::organ_norm("liver", &body).unwrap();
        let z = norm.z(liver_ml / in_field);
        assert!(
            z.abs() < 3.0,
            "{}: liver {liver_ml:.0} mL in the field, z = {z:.2} against {norm:?}",
            r.subject_id
        );
    }
    assert!(!rows[0].lesions.is_empty() && rows[0].lesions.iter().all(|l| l.organ == "liver"));
    // Every class of the TotalSegmentator file has a synthcohort name, so nothing is dropped.
    assert!(!String::from_utf8_lossy(&o.stderr).contains("become background"));
    let labels: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    assert!(labels
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "liver" && e["id"] == 5));
}

#[test]
fn labels_and_preview_commands_work() {
    let o = common::run_ok(&["labels", "head"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("grey_matter") && text.contains("white_matter") && text.contains("skull"),
        "{text}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tiny(&out, &["--subjects", "0..2"]);
    std::fs::remove_file(out.join("preview.png")).unwrap();
    common::run_ok(&["preview", out.to_str().unwrap()]);
    let png = std::fs::read(out.join("preview.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

/// A body wider than the scan field: the run goes ahead, warns per subject and arm after the
/// progress bar, and records the truncation in the manifest and the warning in provenance.
#[test]
fn a_body_beyond_the_scan_field_is_imaged_with_a_truncation_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = tmp.path().join("wide.yaml");
    std::fs::write(
        &pipeline,
        "version: 1\nname: wide\ncohort: {size: 1}\n\
         anatomy: {template: abdomen, size: [64, 64, 4], spacing_mm: [6, 6, 6]}\n\
         acquisition:\n  arms:\n    - {name: ct, modality: ct, views: 120, detector_cols: 400, noise: false}\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let o = common::run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    // 400 columns × 0.570 mm at isocentre from 541 mm: a field of radius
    // 541·sin(atan(114.01 / 541)) = 111.56 mm.
    assert!(
        err.contains("warning: sub-0001 arm `ct`: the body reaches")
            && err.contains("past the 111.6 mm scan field radius"),
        "{err}"
    );
    let prov = std::fs::read_to_string(out.join("provenance.json")).unwrap();
    assert!(prov.contains("scan field radius"), "{prov}");
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    assert!(
        rows[0].protocol.contains("truncation_mm"),
        "{}",
        rows[0].protocol
    );
}

/// Several real label maps: each subject is built on one, drawn per subject (a draw that
/// depends on the subject's seed only, so `--jobs` and shards agree), recorded in the manifest,
/// and a subject's labels come from its own map (the MR map has no femur; the CT map has).
#[test]
fn several_label_maps_are_drawn_per_subject_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = common::repo("tests/pipelines/import_two_sources.yaml");
    let run = |name: &str, jobs: &str| {
        let out = tmp.path().join(name);
        common::run_ok(&[
            "run",
            pipeline.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            jobs,
            "--quiet",
        ]);
        out
    };
    let (a, b) = (run("a", "1"), run("b", "2"));
    common::assert_same_files(&a, &b);
    let rows = io::read_manifest(&a.join("manifest.parquet")).unwrap();
    let (ct, mr) = (
        "ts_ct_torso_3mm_seg_total.nii.gz",
        "ts_mr_abdomen_3mm_seg_total_mr.nii.gz",
    );
    let used: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.anatomy_source.as_str()).collect();
    assert_eq!(used, [ct, mr].into_iter().collect());
    let femur = ontology::label_by_name("femur_left").unwrap().id;
    let liver = ontology::label_by_name("liver").unwrap().id;
    for r in &rows {
        let lab = io::read_labels(&a.join(&r.label_path)).unwrap();
        let has = |id: u16| lab.data.contains(&id);
        assert!(has(liver), "{}: no liver", r.subject_id);
        assert_eq!(has(femur), r.anatomy_source == ct, "{}", r.subject_id);
    }
    // labels.json lists the union of both maps' classes.
    let labels: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("labels.json")).unwrap()).unwrap();
    let names: Vec<&str> = labels
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"femur_left") && names.contains(&"liver"));
}
