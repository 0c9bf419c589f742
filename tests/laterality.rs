//! Laterality of written label maps, in the world coordinates of the files (RAS+: +x is the
//! patient's right): every procedural template and an imported real map, read back from
//! disk. The in-memory checks (and their failure on mirrored maps) are in `anatomy::tests`.

mod common;

use std::path::Path;

use synthcohort::anatomy::laterality::laterality;
use synthcohort::io;

fn pipeline(dir: &Path, template: &str, size: &str, spacing: &str) -> String {
    let p = dir.join(format!("{template}.yaml"));
    std::fs::write(
        &p,
        format!(
            "version: 1\nname: lat-{template}\nseed: 4\ncohort: {{size: 2}}\n\
             anatomy: {{template: {template}, size: {size}, spacing_mm: {spacing}, deformation_mm: 4}}\n\
             acquisition: {{arms: [{{name: hu, modality: none}}]}}\n\
             outputs: {{preview: false}}\n"
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs `pipeline` and returns the side comparisons of every written label map.
fn written_checks(pipeline: &str, out: &Path) -> Vec<(String, usize, Vec<String>)> {
    common::run_ok(&["run", pipeline, "--quiet", "--out", out.to_str().unwrap()]);
    let rows = io::read_manifest(&out.join("manifest.parquet")).unwrap();
    rows.iter()
        .map(|r| {
            let labels = io::nifti::read_labels(&out.join(&r.label_path)).unwrap();
            let rep = laterality(&labels);
            let bad = rep.violations().iter().map(|c| c.to_string()).collect();
            (r.label_path.clone(), rep.checks.len(), bad)
        })
        .collect()
}

#[test]
fn written_label_maps_have_organs_on_the_right_side() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            pipeline(tmp.path(), "thorax", "[80, 64, 80]", "[5, 5, 5]"),
            30,
        ),
        (
            pipeline(tmp.path(), "abdomen", "[80, 64, 80]", "[5, 5, 5]"),
            20,
        ),
        (
            common::repo("tests/pipelines/import_ts.yaml")
                .to_string_lossy()
                .into_owned(),
            30,
        ),
    ];
    for (k, (p, min_checks)) in cases.iter().enumerate() {
        for (file, n, bad) in written_checks(p, &tmp.path().join(format!("out{k}"))) {
            assert!(bad.is_empty(), "{file}: wrong side: {bad:#?}");
            assert!(n >= *min_checks, "{file}: only {n} side comparisons");
        }
    }
}
