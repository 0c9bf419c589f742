//! Malformed pipelines: each is rejected with exit code 2, a message naming the field path
//! (and the line, where the file has one), and no output folder.

mod common;

use std::path::Path;

fn header(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("# {key}:"))
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn every_bad_pipeline_is_rejected_cleanly() {
    let dir = common::repo("tests/bad_pipelines");
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let want_path = header(&text, "expect-path").expect("header expect-path");
        let want_msg = header(&text, "expect-message").expect("header expect-message");
        let want_line = header(&text, "expect-line");
        let out_dir = tmp.path().join(path.file_stem().unwrap());
        let out = common::bin()
            .args([
                "run",
                path.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
                "--quiet",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: exit code; stderr:\n{stderr}"
        );
        if !want_path.is_empty() {
            assert!(
                stderr.contains(&format!("error: {want_path}:")),
                "{name}: no field path `{want_path}` in:\n{stderr}"
            );
        }
        assert!(
            stderr.contains(&want_msg),
            "{name}: no `{want_msg}` in:\n{stderr}"
        );
        if let Some(line) = want_line {
            let file = path.to_string_lossy();
            assert!(
                stderr.contains(&format!("{file}:{line}:")),
                "{name}: no line {line} in:\n{stderr}"
            );
        }
        assert!(!out_dir.exists(), "{name}: an output folder was created");
        assert!(!Path::new(&out_dir).join("manifest.parquet").exists());
        n += 1;
    }
    assert!(n >= 15, "only {n} malformed pipelines");
}

#[test]
fn several_problems_are_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("multi.yaml");
    std::fs::write(
        &p,
        "version: 1\nname: m\ncohort: {size: 0, conditions: [{name: a, prevalence: 2}]}\nanatomy: {template: thorax, size: [32, 32, 24], spacing_mm: [10, 10, 10], wobble: 1}\nacquisition: {arms: [{name: x, modality: none}]}\n",
    )
    .unwrap();
    let out = common::run(&["validate", p.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("error: cohort.size:"), "{stderr}");
    assert!(
        stderr.contains("error: cohort.conditions[0].prevalence:"),
        "{stderr}"
    );
    assert!(stderr.contains("error: anatomy.wobble:"), "{stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2() {
    let out = common::run(&["run", "pipelines/quickstart.yaml", "--subjects", "9..3"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(&["validate", "/no/such/pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read pipeline"));
}
