//! Latent diffusion: training falls, resume works, the trained model generates through the
//! engine, and pipelines using the model are validated against what it can make.

mod common;

use std::path::Path;

use common::{repo, run_ok};

fn losses(model: &Path, stage: &str) -> Vec<f64> {
    std::fs::read_to_string(model.join("loss.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.starts_with(stage))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

/// Runs a pipeline into `out` and reads its manifest.
fn generate(pipeline: &Path, out: &Path) -> Vec<synthcohort::io::manifest::ManifestRow> {
    run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    synthcohort::io::manifest::read_manifest(&out.join("manifest.parquet")).unwrap()
}

fn ontology_ids(names: &[&str]) -> Vec<u16> {
    names
        .iter()
        .map(|n| synthcohort::anatomy::ontology::label_by_name(n).unwrap().id)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Trains the tiny model (stated factors: the autoencoder loss falls ≥ 3×, the denoiser's
/// velocity loss ≥ 1.5× between the first and last 20 steps), then resumes from the
/// denoiser checkpoint at step 100 and checks the loss log is rebuilt identically.
#[test]
fn tiny_model_trains_resumes_and_generates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let model = tmp.path().join("model");
    let pipeline = repo("tests/pipelines/ldm_train_tiny.yaml");
    let config = repo("tests/configs/ldm_tiny.yaml");
    generate(&pipeline, &data);
    let args = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "-q",
    ];
    run_ok(&args);
    // The card says what the model cannot draw: the template's bowel lies below every training
    // grid, so it is no model class; and which prompt words it knows.
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    let absent = card
        .lines()
        .find(|l| l.contains("no training case holds"))
        .unwrap_or_else(|| panic!("{card}"));
    assert!(
        absent.contains("colon") && absent.contains("small_bowel"),
        "{absent}"
    );
    assert!(!absent.contains("liver"), "{absent}");
    assert!(card.contains("Prompt words it was trained with") && card.contains("steatosis"));
    let ae = losses(&model, "autoencoder");
    let dm = losses(&model, "denoiser");
    assert_eq!((ae.len(), dm.len()), (150, 200));
    let (ae0, ae1) = (mean(&ae[..20]), mean(&ae[ae.len() - 20..]));
    let (dm0, dm1) = (mean(&dm[..20]), mean(&dm[dm.len() - 20..]));
    eprintln!(
        "autoencoder loss {ae0:.4} → {ae1:.4} ({:.1}×); denoiser {dm0:.4} → {dm1:.4} ({:.1}×)",
        ae0 / ae1,
        dm0 / dm1
    );
    // The autoencoder codes the residual from the label means, which on this 12 mm grid is
    // mostly voxel-scale texture no 4× code can hold: its loss only has to leave the random
    // start (that the latent carries what labels cannot is the crate's unit test
    // `autoencoder_latent_carries_what_labels_cannot`).
    assert!(
        ae.iter().all(|v| v.is_finite()) && ae[0] > 1.2 * ae1,
        "autoencoder loss {} at step 1, {ae1} at the end",
        ae[0]
    );
    assert!(dm0 / dm1 >= 1.5, "denoiser loss fell only {dm0} → {dm1}");
    let png = std::fs::read(model.join("loss.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG", "loss.png is a PNG");
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("10 subjects used for training, 2 held out"),
        "{card}"
    );
    // The card says what the data were, read from the data folder.
    assert!(
        card.contains(
            "Trained on synthcohort output (generator `procedural`, pipeline `ldm_train_tiny`"
        ),
        "{card}"
    );

    // `--resume` from the last checkpoint (denoiser, step 200) reloads it, rebuilds the
    // latents, has no steps left and writes the same model and loss log. (Resuming mid-stage
    // repeats the uninterrupted losses: the crate's unit test.)
    let state = std::fs::read_to_string(model.join("checkpoint/state.json")).unwrap();
    assert!(state.contains("\"step\":200"), "{state}");
    let weights = std::fs::read(model.join("weights.mpk.gz")).unwrap();
    let csv = std::fs::read_to_string(model.join("loss.csv")).unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    run_ok(&resume);
    assert!(
        std::fs::read(model.join("weights.mpk.gz")).unwrap() == weights,
        "resumed model differs"
    );
    assert_eq!(
        std::fs::read_to_string(model.join("loss.csv")).unwrap(),
        csv
    );

    // Training measured the residual texture and the block spread; `--statistics-only`
    // measures them again for the finished model (here after they were taken out of
    // config.json): the same statistics, the weights untouched.
    let config_path = model.join("config.json");
    let with: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let texture = with["texture"].clone();
    let liver = with["classes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "liver")
        .unwrap();
    let q = texture["quantiles"][0][liver].as_array().unwrap();
    assert_eq!(q.len(), 129, "liver residual quantiles: {q:?}");
    assert!(q[0].as_f64() < q[128].as_f64(), "{q:?}");
    let spread = with["spread"].clone();
    let factors = spread["factors"][0].as_array().unwrap();
    assert_eq!(factors.len(), with["classes"].as_array().unwrap().len());
    assert!(
        factors
            .iter()
            .all(|f| (0.25..=2.0).contains(&f.as_f64().unwrap())),
        "{factors:?}"
    );
    assert_eq!(spread["steps"], 30);
    let mut without = with.clone();
    without["texture"] = serde_json::Value::Null;
    without["spread"] = serde_json::Value::Null;
    std::fs::write(&config_path, serde_json::to_string(&without).unwrap()).unwrap();
    let mut refit = args.to_vec();
    refit.push("--statistics-only");
    run_ok(&refit);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(again["texture"], texture);
    assert_eq!(again["spread"]["blocks"], spread["blocks"]);
    for (a, b) in again["spread"]["factors"][0]
        .as_array()
        .unwrap()
        .iter()
        .zip(factors)
    {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-3 * b, "block spread refit {a} vs {b}");
    }
    assert!(std::fs::read(model.join("weights.mpk.gz")).unwrap() == weights);
    assert!(std::fs::read_to_string(model.join("MODEL_CARD.md"))
        .unwrap()
        .contains("Stochastic detail"));
    assert!(std::fs::read_to_string(model.join("MODEL_CARD.md"))
        .unwrap()
        .contains("Block spread"));

    // The model generates through the engine. Its prompts may only use words the tiny model
    // was trained on (validation refuses others), so the lesion condition borrows them.
    let gen = tmp.path().join("gen.yaml");
    std::fs::write(
        &gen,
        format!(
            "version: 1\nname: gen\nseed: 1\ncohort:\n  size: 2\n  conditions:\n    - {{name: solid_nodule, count: 1, prompt: hepatic steatosis, lesion: {{organ: lung, diameter_mm: 30, hu: 40}}}}\nanatomy: {{template: thorax, size: [32, 32, 32], spacing_mm: [12, 12, 9]}}\ngenerator: {{kind: latent_diffusion, model: {}, unseen_labels: procedural, prompt: \"chest CT, {{conditions}}\", steps: 4}}\nacquisition:\n  arms:\n    - {{name: object, modality: none, property: hu}}\n",
            model.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("gen_out");
    let rows = generate(&gen, &out);
    assert!(
        rows[0].generator.starts_with("latent_diffusion:tiny-ct@")
            && rows[0].generator.ends_with(
                "(Euler 4 steps, unseen labels procedural, guidance text 2 / labels 1.25)"
            ),
        "the model's recommended guidance is the default: {}",
        rows[0].generator
    );
    // A lesion's mean is the contrast the pipeline asked for.
    let with = rows.iter().find(|r| !r.lesions.is_empty()).unwrap();
    let img = synthcohort::io::nifti::read_image(&out.join(&with.image_path)).unwrap();
    let lab = synthcohort::io::nifti::read_labels(&out.join(&with.label_path)).unwrap();
    let id = with.lesions[0].label_id;
    let v: Vec<f32> = img
        .data
        .iter()
        .zip(&lab.data)
        .filter(|(_, &l)| l == id)
        .map(|(&v, _)| v)
        .collect();
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    assert!((m - 40.0).abs() < 0.5, "lesion mean {m}");
    assert!(img.data.iter().all(|v| v.is_finite()));

    // With `lesion_intensity: model` the same subject keeps the model's own draw there: the
    // same voxels, no longer shifted to 40 HU (the tiny model never saw a lesion at 40 HU).
    let text = std::fs::read_to_string(&gen)
        .unwrap()
        .replace("steps: 4}", "steps: 4, lesion_intensity: model}");
    let gen_drawn = tmp.path().join("gen_drawn.yaml");
    std::fs::write(&gen_drawn, text).unwrap();
    let out_drawn = tmp.path().join("gen_drawn_out");
    let drawn_rows = generate(&gen_drawn, &out_drawn);
    let drawn = drawn_rows
        .iter()
        .find(|r| r.subject_id == with.subject_id)
        .unwrap();
    assert!(
        drawn.generator.contains("lesion intensity as drawn"),
        "{}",
        drawn.generator
    );
    let img2 = synthcohort::io::nifti::read_image(&out_drawn.join(&drawn.image_path)).unwrap();
    let shifted: Vec<(f32, f32)> = img
        .data
        .iter()
        .zip(&img2.data)
        .zip(&lab.data)
        .filter(|(_, &l)| l == id)
        .map(|((&a, &b), _)| (a, b))
        .collect();
    let d = shifted.iter().map(|(a, b)| f64::from(a - b)).sum::<f64>() / shifted.len() as f64;
    // Same draw: outside the lesion identical, inside offset by one constant (the shift).
    assert!(
        d.abs() > 1.0,
        "the lesion was still shifted to the target ({d})"
    );
    assert!(shifted
        .iter()
        .all(|(a, b)| (f64::from(a - b) - d).abs() < 1.0));
    assert!(img
        .data
        .iter()
        .zip(&img2.data)
        .zip(&lab.data)
        .all(|((a, b), &l)| l == id || a == b));

    // The tiny model never saw the bowel (its 32-slice training grid ends above it). On a taller
    // grid the template reaches it; with `unseen_labels: procedural` those voxels are the
    // procedural renderer's, exactly as a procedural run of the same subject draws them.
    let tall = std::fs::read_to_string(&gen)
        .unwrap()
        .replace("size: [32, 32, 32]", "size: [32, 32, 56]");
    let gen_tall = tmp.path().join("gen_tall.yaml");
    std::fs::write(&gen_tall, &tall).unwrap();
    let proc_tall = tmp.path().join("proc_tall.yaml");
    std::fs::write(
        &proc_tall,
        tall.replace(
            &format!(
                "kind: latent_diffusion, model: {}, unseen_labels: procedural, ",
                model.display()
            ),
            "kind: procedural, ",
        )
        .replace("steps: 4", "bowel_gas: true"),
    )
    .unwrap();
    let (out_m, out_p) = (tmp.path().join("tall_m"), tmp.path().join("tall_p"));
    let (rm, rp) = (generate(&gen_tall, &out_m), generate(&proc_tall, &out_p));
    assert!(
        rp[0].generator.starts_with("procedural"),
        "{}",
        rp[0].generator
    );
    let read = |dir: &Path, r: &synthcohort::io::manifest::ManifestRow| {
        (
            synthcohort::io::nifti::read_image(&dir.join(&r.image_path)).unwrap(),
            synthcohort::io::nifti::read_labels(&dir.join(&r.label_path)).unwrap(),
        )
    };
    let ((im, lm), (ip, lp)) = (read(&out_m, &rm[0]), read(&out_p, &rp[0]));
    assert_eq!(lm.data, lp.data);
    let bowel = ontology_ids(&["colon", "small_bowel"]);
    let n = lm.data.iter().filter(|l| bowel.contains(l)).count();
    assert!(n > 50, "{n} bowel voxels");
    for ((a, b), l) in im.data.iter().zip(&ip.data).zip(&lm.data) {
        if bowel.contains(l) {
            assert_eq!(a, b);
        }
    }

    // A pipeline's own scales win over the model's.
    let text = std::fs::read_to_string(&gen)
        .unwrap()
        .replace("steps: 4}", "steps: 4, guidance: {text: 1.5}}");
    std::fs::write(&gen, text).unwrap();
    let rows = generate(&gen, &tmp.path().join("gen_out2"));
    assert!(
        rows[0]
            .generator
            .ends_with("guidance text 1.5 / labels 1.25)"),
        "{}",
        rows[0].generator
    );
}

#[test]
fn model_that_cannot_make_the_arms_is_rejected_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        "version: 1\nname: p\ncohort: {size: 1}\nanatomy: {template: thorax, size: [32, 32, 32], spacing_mm: [12, 12, 9]}\ngenerator: {kind: latent_diffusion, model: no_such_model}\nacquisition:\n  arms:\n    - {name: object, modality: none, property: hu}\n",
    )
    .unwrap();
    let o = common::run(&["validate", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("generator.model") && err.contains("no_such_model"),
        "{err}"
    );
}

/// The shipped models load against their configs (a weights/config mismatch fails here, not
/// in a user's first run) and sample with the guidance their evaluation recommends.
#[test]
fn shipped_models_load_with_their_recommended_guidance() {
    use synthcohort::generate::{ldm, Generator};
    for template in ["thorax", "head", "abdomen"] {
        let name = ldm::shipped_model_for(template).unwrap();
        let dir = ldm::models_dir().join(name);
        let m = ldm::LatentDiffusion::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let g = m
            .config()
            .guidance
            .unwrap_or_else(|| panic!("{name} recommends no guidance"));
        assert_eq!(m.guidance, g);
        assert!(
            m.name()
                .ends_with(&format!("guidance text {} / labels {})", g.text, g.labels)),
            "{}",
            m.name()
        );
    }
}

/// `LdmConfig` is a burn `Config`; the shipped checkpoints' `config.json` must read and write
/// back to the same JSON (burn's derive orders the optional `guidance` before `training`, so
/// the comparison is of values, not bytes), and a config without `guidance` (checkpoints from
/// before recommendations existed) must still load, as unset.
#[test]
fn shipped_model_configs_round_trip_unchanged() {
    use synthcohort::generate::ldm;
    for name in ["ct-thorax", "mri-head", "ct-abdomen"] {
        let path = ldm::models_dir().join(name).join("config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg: synthcohort_ldm::LdmConfig = serde_json::from_str(&text).unwrap();
        // Through text, as `save` writes it (f32 values print shortest, as in the file).
        let back: serde_json::Value =
            serde_json::from_str(&serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(&text).unwrap();
        // An absent optional field reads as unset and writes as null (mri-head's file
        // predates `unet.text_labels`).
        assert_eq!(without_nulls(back), without_nulls(orig.clone()), "{name}");
        let mut old = orig.clone();
        old.as_object_mut().unwrap().remove("guidance");
        let cfg: synthcohort_ldm::LdmConfig = serde_json::from_value(old).unwrap();
        assert_eq!(cfg.guidance, None);
    }
}

fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        v => v,
    }
}

/// A dataset whose labels are spelled as another tool spells them (`Liver`, `Kidney_Left`,
/// `lung-upper-lobe-left`) trains the ontology's classes, so generation (which asks for
/// `liver`) finds them; before, such names became the lesion class and the liver came out
/// as whatever stood in for it.
#[test]
fn datasets_with_other_spellings_train_the_ontology_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pipeline = repo("tests/pipelines/ldm_train_tiny.yaml");
    generate(&pipeline, &data);
    let dj_path = data.join("dataset.json");
    let mut dj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dj_path).unwrap()).unwrap();
    let ds = synthcohort::lab::data::load(&data, None, 1, None).unwrap();
    let all: Vec<usize> = (0..ds.cases.len()).collect();
    let standard = synthcohort::lab::data::model_classes(&ds, &all).0;
    // A class no training case holds is not a model class (it would be drawn as 0 HU): with
    // no training case at all, only the background is, and every named class is reported.
    let (none, absent) = synthcohort::lab::data::model_classes(&ds, &[]);
    assert_eq!(none, vec!["background".to_string()]);
    assert!(
        standard[1..].iter().all(|c| absent.contains(c)),
        "{absent:?}"
    );
    let labels = dj["labels"].as_object().unwrap().clone();
    let renamed: serde_json::Map<String, serde_json::Value> = labels
        .into_iter()
        .map(|(name, id)| {
            let other = match name.as_str() {
                "background" => name,
                n => {
                    // Capitalised words, alternately `_` and `-` joined.
                    let words: Vec<String> = n
                        .split('_')
                        .map(|w| w[..1].to_uppercase() + &w[1..])
                        .collect();
                    words.join(if n.len() % 2 == 0 { "_" } else { "-" })
                }
            };
            (other, id)
        })
        .collect();
    assert!(
        renamed.contains_key("Liver"),
        "{:?}",
        renamed.keys().collect::<Vec<_>>()
    );
    dj["labels"] = serde_json::Value::Object(renamed);
    std::fs::write(&dj_path, serde_json::to_vec_pretty(&dj).unwrap()).unwrap();
    let ds = synthcohort::lab::data::load(&data, None, 1, None).unwrap();
    let other = synthcohort::lab::data::model_classes(&ds, &all).0;
    assert_eq!(other, standard);
    assert!(other.contains(&"liver".to_string()));
}

/// Weights that do not fit the architecture config.json describes (here the UNet's widest
/// level narrowed from 64 to 56 channels) are refused when the pipeline is validated, naming
/// the first parameter that differs; burn alone would load them.
#[test]
fn weights_that_do_not_fit_the_config_are_refused_at_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("ct-thorax-narrowed");
    std::fs::create_dir_all(&model).unwrap();
    let shipped = repo("models/ct-thorax");
    std::fs::copy(shipped.join("weights.mpk.gz"), model.join("weights.mpk.gz")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shipped.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["unet"]["channels"], serde_json::json!([32, 48, 64]));
    cfg["unet"]["channels"] = serde_json::json!([32, 48, 56]);
    std::fs::write(model.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let text = std::fs::read_to_string(repo("pipelines/ldm_thorax.yaml"))
        .unwrap()
        .replace(
            "kind: latent_diffusion",
            &format!("kind: latent_diffusion\n  model: {}", model.display()),
        );
    let p = tmp.path().join("p.yaml");
    std::fs::write(&p, text).unwrap();
    let out = common::run(&["validate", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("generator.model"), "{err}");
    assert!(err.contains("do not fit config.json"), "{err}");
    // Truncated and missing weights are refused the same way.
    std::fs::copy(shipped.join("config.json"), model.join("config.json")).unwrap();
    let bytes = std::fs::read(shipped.join("weights.mpk.gz")).unwrap();
    std::fs::write(model.join("weights.mpk.gz"), &bytes[..bytes.len() / 3]).unwrap();
    let out = common::run(&["validate", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "truncated: {err}");
    assert!(
        err.contains("generator.model") && err.contains("truncated, corrupt"),
        "truncated: {err}"
    );
    std::fs::remove_file(model.join("weights.mpk.gz")).unwrap();
    let out = common::run(&["validate", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "missing: {err}");
    assert!(
        err.contains("generator.model") && err.contains("is missing"),
        "missing: {err}"
    );
    // The shipped model itself passes.
    common::run_ok(&[
        "validate",
        repo("pipelines/ldm_thorax.yaml").to_str().unwrap(),
    ]);
}

/// Writes one case (image and label map) into the nnU-Net folders of `data` and its
/// `prompts.jsonl` line into `prompts`.
fn write_case(
    data: &Path,
    case: &str,
    img: &synthcohort::volume::Volume<f32>,
    lab: &synthcohort::volume::Volume<u16>,
    prompts: &mut String,
) {
    use synthcohort::io::nifti::{encode_image, encode_labels, ImageDtype};
    std::fs::write(
        data.join(format!("imagesTr/{case}_0000.nii.gz")),
        encode_image(img, ImageDtype::Float32, true, "").unwrap(),
    )
    .unwrap();
    std::fs::write(
        data.join(format!("labelsTr/{case}.nii.gz")),
        encode_labels(lab, true, "").unwrap(),
    )
    .unwrap();
    prompts.push_str(&format!(
        "{{\"case\": \"{case}\", \"prompt\": \"abdominal CT\"}}\n"
    ));
}

/// `[i0, i0 + n)` × … of `v`, keeping the world positions.
fn crop<T: Copy + Default>(
    v: &synthcohort::volume::Volume<T>,
    start: [usize; 3],
    n: [usize; 3],
) -> synthcohort::volume::Volume<T> {
    let g = &v.grid;
    let mut grid = g.clone();
    grid.dims = n;
    grid.origin_mm = g.world(start[0], start[1], start[2]);
    let mut out = synthcohort::volume::Volume::filled(grid, T::default());
    for k in 0..n[2] {
        for j in 0..n[1] {
            for i in 0..n[0] {
                let x = v.get(start[0] + i, start[1] + j, start[2] + k);
                out.set(i, j, k, x);
            }
        }
    }
    out
}

/// The test: a tiny model trained on a *real* labelled CT (crops of the TotalSegmentator
/// torso scan in tests/data) whose dataset.json spells the labels its own way (`Liver`,
/// `Kidney-Left`) generates through the engine with the liver drawn as liver — near the real
/// scan's liver HU. Without the ontology mapping of dataset.json's names the same test draws
/// the liver at −41 HU (a stand-in class; before stand-ins, background air) and fails.
#[test]
fn a_tiny_model_trained_on_a_real_scan_with_other_spellings_draws_liver_as_liver() {
    use synthcohort::io::nifti::{encode_labels, read_image, read_labels};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for d in ["imagesTr", "labelsTr"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    let ct = read_image(&repo("tests/data/ts_ct_torso_3mm.nii.gz")).unwrap();
    let seg = read_labels(&repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let names_file = repo("tests/data/ts_total_classes.txt");
    let names: Vec<(u16, String)> = std::fs::read_to_string(&names_file)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.to_string()))
        })
        .collect();
    let liver = names.iter().find(|(_, n)| n == "liver").unwrap().0;
    // Crops of 40 × 40 × 12 voxels (120 × 120 × 36 mm) centred on the liver in-plane, at five
    // heights through it.
    let [nx, ny, nz] = seg.grid.dims;
    let (mut sum, mut cnt, mut zs) = ([0usize; 2], 0usize, Vec::new());
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if seg.get(i, j, k) == liver {
                    sum[0] += i;
                    sum[1] += j;
                    cnt += 1;
                    zs.push(k);
                }
            }
        }
    }
    let (ci, cj) = (sum[0] / cnt, sum[1] / cnt);
    zs.sort_unstable();
    let (z0, z1) = (zs[zs.len() / 10], zs[zs.len() * 9 / 10]);
    let n = [40, 40, 12];
    let start = |t: usize| {
        let k = z0 + (z1 - z0 - n[2]) * t / 4;
        [ci - n[0] / 2, cj - n[1] / 2, k]
    };
    let mut prompts = String::new();
    let mut liver_hu = Vec::new();
    for t in 0..5 {
        let (img, lab) = (crop(&ct, start(t), n), crop(&seg, start(t), n));
        liver_hu.extend(
            img.data
                .iter()
                .zip(&lab.data)
                .filter(|(_, &l)| l == liver)
                .map(|(&v, _)| f64::from(v)),
        );
        write_case(
            &data,
            &format!("real-{t:03}_object"),
            &img,
            &lab,
            &mut prompts,
        );
    }
    std::fs::write(data.join("prompts.jsonl"), prompts).unwrap();
    // dataset.json in another tool's spelling: capitalised words joined by `-`.
    let mut labels = serde_json::Map::new();
    labels.insert("background".into(), 0.into());
    for (id, name) in &names {
        let spelled: Vec<String> = name
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        labels.insert(spelled.join("-"), (*id).into());
    }
    assert!(labels.contains_key("Liver") && labels.contains_key("Kidney-Left"));
    let dj = serde_json::json!({"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 5, "file_ending": ".nii.gz"});
    std::fs::write(data.join("dataset.json"), dj.to_string()).unwrap();

    let model = tmp.path().join("model");
    run_ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--config",
        repo("tests/configs/ldm_tiny.yaml").to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "-q",
    ]);
    let card = std::fs::read_to_string(model.join("MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("3 subjects used for training, 2 held out"),
        "{card}"
    );

    // Generate on one crop's real label map, imported under the TotalSegmentator names.
    let src = tmp.path().join("anatomy.nii.gz");
    std::fs::write(
        &src,
        encode_labels(&crop(&seg, start(2), n), true, "").unwrap(),
    )
    .unwrap();
    let gen = tmp.path().join("gen.yaml");
    std::fs::write(
        &gen,
        format!(
            "version: 1\nname: gen\nseed: 2\ncohort: {{size: 1}}\nanatomy:\n  template: abdomen\n  source: {{file: {}, names: {}}}\n  body_scaling: false\n  size: [40, 40, 12]\n  spacing_mm: [3, 3, 3]\n  deformation_mm: 0\ngenerator: {{kind: latent_diffusion, model: {}, prompt: \"abdominal CT\", steps: 4}}\nacquisition:\n  arms:\n    - {{name: object, modality: none, property: hu}}\n",
            src.display(),
            names_file.display(),
            model.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("gen_out");
    let rows = generate(&gen, &out);
    let img = read_image(&out.join(&rows[0].image_path)).unwrap();
    let lab = read_labels(&out.join(&rows[0].label_path)).unwrap();
    let labels_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("labels.json")).unwrap()).unwrap();
    let out_liver = labels_json
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "liver"))
        .and_then(|e| e["id"].as_u64())
        .expect("labels.json names the liver") as u16;
    let gen_liver: Vec<f64> = img
        .data
        .iter()
        .zip(&lab.data)
        .filter(|(_, &l)| l == out_liver)
        .map(|(&v, _)| f64::from(v))
        .collect();
    assert!(gen_liver.len() > 1000, "{} liver voxels", gen_liver.len());
    let (g, r) = (mean(&gen_liver), mean(&liver_hu));
    eprintln!("liver: generated {g:.1} HU, real crops {r:.1} HU");
    assert!(
        (g - r).abs() < 60.0,
        "generated liver {g:.1} HU against the real {r:.1} HU"
    );

    // eval-model compares the model's drawings of the held-out crops (the last two) with
    // those crops' real images: the real side of its liver row is theirs, not the training
    // crops' and not the tissue table's.
    let eval = tmp.path().join("eval");
    run_ok(&[
        "eval-model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        eval.to_str().unwrap(),
        "--steps",
        "2",
        "-q",
    ]);
    let held_liver: Vec<f64> = (3..5)
        .flat_map(|t| {
            let (img, lab) = (crop(&ct, start(t), n), crop(&seg, start(t), n));
            img.data
                .iter()
                .zip(&lab.data)
                .filter(|(_, &l)| l == liver)
                .map(|(&v, _)| f64::from(v))
                .collect::<Vec<_>>()
        })
        .collect();
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval.join("fidelity.json")).unwrap()).unwrap();
    let row = |gen: &str| {
        rows.as_array()
            .and_then(|a| {
                a.iter()
                    .find(|r| r["organ"] == "liver" && r["generator"] == gen)
            })
            .unwrap_or_else(|| panic!("no liver row for {gen}: {rows}"))
            .clone()
    };
    let (model_row, painter_row) = (row("model"), row("painter"));
    assert_eq!(
        model_row["voxels_real"].as_u64(),
        Some(held_liver.len() as u64)
    );
    let real_mean = model_row["hu_mean_real"].as_f64().unwrap();
    assert!((real_mean - mean(&held_liver)).abs() < 1e-3, "{real_mean}");
    assert!(painter_row["hu_w1"].as_f64().unwrap() > 0.0);
    assert!(eval.join("patches.png").exists());
    let md = std::fs::read_to_string(eval.join("report.md")).unwrap();
    assert!(md.contains("| liver | model |"), "{md}");
}

/// `unlabeled_images`: a CT without labels (here a slab of the real torso scan) trains the
/// autoencoder beside two labelled crops of it; the card lists it with its SHA-256 and grid,
/// the data hash covers it, the case cache is gone afterwards, and an MR config or a missing
/// file is refused naming the field.
#[test]
fn unlabeled_ct_trains_the_autoencoder_and_is_on_the_card() {
    use synthcohort::io::nifti::{encode_image, read_image, read_labels, ImageDtype};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for d in ["imagesTr", "labelsTr"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    let ct = read_image(&repo("tests/data/ts_ct_torso_3mm.nii.gz")).unwrap();
    let seg = read_labels(&repo("tests/data/ts_ct_torso_3mm_seg_total.nii.gz")).unwrap();
    let mut prompts = String::new();
    for (t, start) in [[30, 30, 40], [50, 40, 60]].into_iter().enumerate() {
        let n = [32, 32, 16];
        let (img, lab) = (crop(&ct, start, n), crop(&seg, start, n));
        write_case(&data, &format!("real-{t:03}"), &img, &lab, &mut prompts);
    }
    std::fs::write(data.join("prompts.jsonl"), prompts).unwrap();
    let mut labels = serde_json::Map::new();
    labels.insert("background".into(), 0.into());
    for l in std::fs::read_to_string(repo("tests/data/ts_total_classes.txt"))
        .unwrap()
        .lines()
    {
        let mut it = l.split_whitespace();
        if let (Some(Ok(id)), Some(name)) = (it.next().map(str::parse::<u16>), it.next()) {
            labels.insert(name.into(), id.into());
        }
    }
    let dj = serde_json::json!({"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 2, "file_ending": ".nii.gz"});
    std::fs::write(data.join("dataset.json"), dj.to_string()).unwrap();
    // Eight whole axial slices: body outline, fat, muscle, gas.
    let slab = crop(&ct, [0, 0, 60], [122, 101, 8]);
    let unlabeled = tmp.path().join("unlabeled.nii.gz");
    std::fs::write(
        &unlabeled,
        encode_image(&slab, ImageDtype::Float32, true, "").unwrap(),
    )
    .unwrap();
    let config = |modality: &str, extra: &str| {
        format!(
            "name: tiny-unlabeled\nmodality: {modality}\nchannels:\n  - {{name: hu, unit: HU, offset: 0, scale: 1000}}\nautoencoder_channels: [4, 8, 8]\ndenoiser_channels: [8, 16, 16]\n{extra}training: {{seed: 3, ae_crop: [16, 16, 16], ae_batch: 2, ae_steps: 4, dm_crop: [4, 4, 4], dm_batch: 2, dm_steps: 4, checkpoint_every: 100, ae_flip: [x, y], ae_gain_jitter: 0.1, ae_shift_jitter: 0.02}}\n"
        )
    };
    let train = |cfg: &str, out: &str| {
        let path = tmp.path().join(format!("{out}.yaml"));
        std::fs::write(&path, cfg).unwrap();
        let model = tmp.path().join(out);
        let args = [
            "train",
            "--data",
            data.to_str().unwrap(),
            "--config",
            path.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "-q",
        ];
        (common::run(&args), model)
    };
    let hash = |model: &Path| {
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
        c["training"]["data_hash"].as_str().unwrap().to_string()
    };
    // Relative to the config file's folder.
    let (out, with) = train(
        &config("ct", "unlabeled_images: [unlabeled.nii.gz]\n"),
        "with",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card = std::fs::read_to_string(with.join("MODEL_CARD.md")).unwrap();
    let sha = synthcohort::io::hash::sha256_file(&unlabeled).unwrap();
    assert!(
        card.contains("Unlabeled images") && card.contains(&sha) && card.contains("122 × 101 × 8"),
        "{card}"
    );
    assert!(card.contains("2 subjects used for training"), "{card}");
    assert!(
        card.contains("Autoencoder augmentation: mirrored along [X, Y]"),
        "{card}"
    );
    assert!(
        !with.join("cache").exists(),
        "the case cache is left behind"
    );
    assert_eq!(losses(&with, "autoencoder").len(), 4);
    let (out, without) = train(&config("ct", ""), "without");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::fs::read_to_string(without.join("MODEL_CARD.md"))
        .unwrap()
        .contains("Unlabeled images"));
    assert_ne!(
        hash(&with),
        hash(&without),
        "the data hash ignores the unlabeled image"
    );

    let (out, _) = train(
        &config("mri", "unlabeled_images: [unlabeled.nii.gz]\n"),
        "mr",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unlabeled_images") && err.contains("Hounsfield"),
        "{err}"
    );
    let (out, _) = train(
        &config("ct", "unlabeled_images: [nowhere.nii.gz]\n"),
        "missing",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unlabeled_images") && err.contains("nowhere.nii.gz"),
        "{err}"
    );
}
