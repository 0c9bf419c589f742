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

/// Every numeric bound the published schema gives an arm field is the bound the simulator's
/// own `validate()` enforces: a value just outside is refused by both, at the same field, and
/// the bound itself is accepted by both range checks (the ranges are declared once).
#[test]
fn schema_bounds_are_the_protocols_bounds() {
    use synthcohort::acquire::ct::CtProtocol;
    use synthcohort::acquire::mri::{MriProtocol, Sequence};
    let schema = committed();
    let variants = schema["$defs"]["Arm"]["anyOf"].as_array().unwrap().clone();
    let mut checked = 0;
    for v in &variants {
        let tag = v["properties"]["modality"]["const"].as_str().unwrap();
        for (field, prop) in v["properties"].as_object().unwrap() {
            let (Some(lo), Some(hi)) = (prop["minimum"].as_f64(), prop["maximum"].as_f64()) else {
                continue;
            };
            let step = if prop["type"] == "integer" {
                1.0
            } else {
                1e-3 * (hi - lo).max(1.0)
            };
            for (value, inside) in [
                (lo, true),
                (hi, true),
                (lo - step, false),
                (hi + step, false),
            ] {
                if value < 0.0 && prop["type"] == "integer" {
                    continue;
                }
                let num = if prop["type"] == "integer" {
                    serde_json::json!(value as i64)
                } else {
                    serde_json::json!(value)
                };
                // The protocol's own check.
                let problems: Vec<(String, String)> = match tag {
                    "ct" => {
                        let mut j =
                            serde_json::to_value(CtProtocol::preset("generic64").unwrap()).unwrap();
                        j[field.as_str()] = num.clone();
                        synthcohort::bounds::check(
                            &serde_json::from_value::<CtProtocol>(j).unwrap(),
                        )
                    }
                    "mri" => {
                        let mut j =
                            serde_json::to_value(MriProtocol::default_for(Sequence::SpinEcho, 3.0))
                                .unwrap();
                        j[field.as_str()] = num.clone();
                        match serde_json::from_value::<MriProtocol>(j) {
                            Ok(p) => synthcohort::bounds::check(&p),
                            Err(_) => continue, // a field the preset holds in another form
                        }
                    }
                    _ => continue,
                };
                let protocol_refuses = problems.iter().any(|(f, _)| f == field);
                assert_eq!(
                    !protocol_refuses, inside,
                    "{tag}.{field} = {value}: {problems:?}"
                );
                // The schema pass of the pipeline loader.
                let seq = if tag == "mri" {
                    ", sequence: spin_echo"
                } else {
                    ""
                };
                let text = format!(
                    "version: 1\nname: b\ncohort: {{size: 1}}\nanatomy: {{template: thorax, size: [32, 32, 24], spacing_mm: [10, 10, 10]}}\nacquisition: {{arms: [{{name: a, modality: {tag}{seq}, {field}: {num}}}]}}\n"
                );
                let refused_here = match synthcohort::pipeline::parse(
                    text.as_bytes(),
                    "b.yaml",
                    std::path::Path::new("."),
                ) {
                    Ok(_) => false,
                    Err(e) => e.problems().iter().any(|p| {
                        p.path == format!("acquisition.arms[0].{field}")
                            && (p.message.contains("maximum")
                                || p.message.contains("minimum")
                                || p.message.contains("outside"))
                    }),
                };
                assert_eq!(!refused_here, inside, "pipeline {tag}.{field} = {value}");
                checked += 1;
            }
        }
    }
    assert!(checked > 60, "only {checked} bound checks");
}
