//! The committed JSON Schema equals the one generated from the types, and every shipped
//! pipeline validates against it (and passes the engine's own checks).

mod common;

use serde_json::Value;

fn committed() -> Value {
    let text = std::fs::read_to_string(common::repo("schemas/pipeline.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn committed_schema_is_fresh() {
    let text = std::fs::read_to_string(common::repo("schemas/pipeline.schema.json")).unwrap();
    let generated = synthcohort::pipeline::schema::schema_text();
    assert!(
        text == generated,
        "schemas/pipeline.schema.json is stale: run `cargo run --release -- schema > schemas/pipeline.schema.json`"
    );
    let out = common::run_ok(&["schema"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
}

#[test]
fn shipped_pipelines_validate_against_the_schema() {
    let schema = committed();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut n = 0;
    for dir in ["pipelines", "pipelines/training", "tests/pipelines"] {
        for e in std::fs::read_dir(common::repo(dir)).unwrap().flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let (doc, _) = synthcohort::pipeline::yaml::parse(&text).unwrap();
            let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            synthcohort::pipeline::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if dir.starts_with("pipelines") {
                let first: Vec<&str> = text.lines().take(2).collect();
                assert!(
                    first[0].starts_with("# yaml-language-server: $schema="),
                    "{}: no $schema line",
                    path.display()
                );
                assert!(
                    first[1].starts_with("# "),
                    "{}: no comment saying what it makes",
                    path.display()
                );
            }
            n += 1;
        }
    }
    assert!(n >= 4);
}
