//! Scale-out and hardening: shards merge to the single-machine bytes, merges refuse mixed
//! or incomplete shards, `verify` catches damage, and writes stay inside the run folder.

mod common;

use std::path::Path;

const TINY: &str = "tests/pipelines/tiny.yaml";

fn tiny() -> String {
    common::repo(TINY).to_string_lossy().to_string()
}

fn run(out: &Path, extra: &[&str]) {
    let t = tiny();
    let mut args = vec!["run", t.as_str(), "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::run_ok(&args);
}

#[test]
fn four_shards_merge_to_the_single_run_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    run(&single, &["--jobs", "2"]);

    // Separate shard folders, merged into a new one.
    let mut shard_dirs = Vec::new();
    for k in 0..4 {
        let d = tmp.path().join(format!("shard{k}"));
        run(&d, &["--shard", &format!("{k}/4"), "--jobs", "1"]);
        assert!(d
            .join(format!("manifests/shard-{k}-of-4.parquet"))
            .is_file());
        assert!(
            !d.join("manifest.parquet").exists(),
            "a shard writes only its own manifest"
        );
        shard_dirs.push(d);
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge".to_string(), merged.to_string_lossy().to_string()];
    args.extend(shard_dirs.iter().map(|d| d.to_string_lossy().to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    common::run_ok(&args);
    common::assert_same_files(&single, &merged);

    // Shards sharing one folder, merged in place.
    let shared = tmp.path().join("shared");
    for k in [2, 0, 3, 1] {
        run(&shared, &["--shard", &format!("{k}/4")]);
    }
    common::run_ok(&["merge", shared.to_str().unwrap()]);
    common::assert_same_files(&single, &shared);
    common::run_ok(&["verify", shared.to_str().unwrap()]);
}

#[test]
fn merges_refuse_mixed_or_incomplete_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    run(&a, &["--shard", "0/2"]);
    // Same cohort, another seed: a different pipeline file.
    let other = tmp.path().join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(common::repo(TINY))
            .unwrap()
            .replace("seed: 11", "seed: 12"),
    )
    .unwrap();
    let b = tmp.path().join("b");
    common::run_ok(&[
        "run",
        other.to_str().unwrap(),
        "--quiet",
        "--shard",
        "1/2",
        "--out",
        b.to_str().unwrap(),
    ]);
    let out = common::run(&[
        "merge",
        tmp.path().join("m1").to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("different pipelines"), "{err}");
    assert!(!tmp.path().join("m1").join("manifest.parquet").exists());

    // One of two shards only.
    let out = common::run(&[
        "merge",
        tmp.path().join("m2").to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1/2") && err.contains("not given"), "{err}");
}

#[test]
fn verify_finds_flipped_deleted_and_extra_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run(&out, &["--subjects", "0..3"]);
    let ok = common::run_ok(&["verify", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok:"));

    let img = out.join("images/sub-0002_hu.nii.gz");
    let mut bytes = std::fs::read(&img).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&img, &bytes).unwrap();
    std::fs::remove_file(out.join("labels/sub-0003.nii.gz")).unwrap();
    std::fs::write(out.join("images/stray.nii.gz"), b"not ours").unwrap();

    let bad = common::run(&["verify", out.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("corrupt\timages/sub-0002_hu.nii.gz"),
        "{text}"
    );
    assert!(text.contains("missing\tlabels/sub-0003.nii.gz"), "{text}");
    assert!(text.contains("extra\timages/stray.nii.gz"), "{text}");
}

#[test]
fn writes_stay_inside_the_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // A symlinked output sub-folder is refused, and nothing lands in its target.
    let out = tmp.path().join("run");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("images")).unwrap();
    let o = common::run(&[
        "run",
        &tiny(),
        "--quiet",
        "--subjects",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A pipeline cannot aim its outputs outside the working directory.
    for dir in ["../escape", "/tmp/escape-synthcohort", "out/../../escape"] {
        let p = tmp.path().join("p.yaml");
        let text = std::fs::read_to_string(common::repo(TINY))
            .unwrap()
            .replace("outputs: {", &format!("outputs: {{dir: \"{dir}\", "));
        std::fs::write(&p, text).unwrap();
        let o = common::run(&["validate", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{dir}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("error: outputs.dir:"),
            "{dir}"
        );
    }
}

#[test]
fn runs_that_cannot_fit_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big.yaml");
    // 512³ passes the static limit, but 64 of them in parallel need ~5 TiB.
    let text = std::fs::read_to_string(common::repo(TINY))
        .unwrap()
        .replace("size: 6", "size: 64")
        .replace(
            "size: [48, 48, 40], spacing_mm: [8, 8, 7]",
            "size: [512, 512, 512], spacing_mm: [1, 1, 1]",
        );
    std::fs::write(&p, text).unwrap();
    let out = tmp.path().join("run");
    let o = common::run(&[
        "run",
        p.to_str().unwrap(),
        "--jobs",
        "64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("anatomy.size") && err.contains("GiB") && err.contains("--force"),
        "{err}"
    );
    assert!(!out.exists());
    let dry = common::run(&[
        "run",
        p.to_str().unwrap(),
        "--jobs",
        "64",
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(dry.status.code(), Some(2));
}

#[test]
fn malformed_source_label_maps_are_rejected_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::repo("tests/pipelines/import_ts.yaml")).unwrap();
    let names = common::repo("tests/data/ts_total_classes.txt");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage.nii.gz", b"definitely not a NIfTI file".to_vec()),
        (
            "truncated.nii.gz",
            std::fs::read(common::repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz")).unwrap()
                [..5000]
                .to_vec(),
        ),
        ("empty.nii", Vec::new()),
    ];
    for (name, bytes) in cases {
        let src = tmp.path().join(name);
        std::fs::write(&src, bytes).unwrap();
        let p = tmp.path().join(format!("{name}.yaml"));
        let t = text
            .replace(
                "../data/ts_ct_torso_3mm_seg_total.nii.gz",
                src.to_str().unwrap(),
            )
            .replace("../data/ts_total_classes.txt", names.to_str().unwrap());
        std::fs::write(&p, t).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        let o = common::run(&[
            "run",
            p.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("anatomy.source.file"), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!out.exists(), "{name}: output folder created");
    }
}
