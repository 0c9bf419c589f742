//! One function per command: call the library, print what the user asked for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use synthcohort::anatomy::{ontology, Template};
use synthcohort::engine::{self, RunOptions};
use synthcohort::pipeline;

use super::CliError;

pub fn schema() -> Result<ExitCode, CliError> {
    print!("{}", pipeline::schema::schema_text());
    Ok(ExitCode::SUCCESS)
}

pub fn validate(path: &Path) -> Result<ExitCode, CliError> {
    let p = pipeline::load(path)?;
    let arms: Vec<&str> = p.arms.iter().map(|a| a.name.as_str()).collect();
    println!(
        "{}: valid — {} subjects, {} arm(s): {}",
        path.display(),
        p.spec.cohort.size,
        p.arms.len(),
        arms.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn labels(template: &str) -> Result<ExitCode, CliError> {
    let t = Template::from_name(template).ok_or_else(|| {
        let names: Vec<&str> = Template::ALL.iter().map(|t| t.name()).collect();
        CliError::Usage(format!(
            "unknown template `{template}`; choose {}",
            names.join(", ")
        ))
    })?;
    println!("id\tname\tcolour");
    for id in synthcohort::anatomy::template_labels(t) {
        if let Some(l) = ontology::label_by_id(id) {
            println!(
                "{}\t{}\t#{:02x}{:02x}{:02x}",
                l.id, l.name, l.color[0], l.color[1], l.color[2]
            );
        }
    }
    println!(
        "{}+\tlesion_<k> (one id per lesion of a subject)",
        ontology::LESION_ID_BASE
    );
    Ok(ExitCode::SUCCESS)
}

pub fn atlas(ct: &Path, seg: &Path, names: &Path, out: &Path) -> Result<ExitCode, CliError> {
    use synthcohort::anatomy::{atlas::derive, import_labels, parse_names_file};
    use synthcohort::io::{self, nifti};
    let fail = |what: &Path, e: &dyn std::fmt::Display| {
        CliError::Usage(format!("{}: {e}", what.display()))
    };
    let ct_vol = nifti::read_image(ct).map_err(|e| fail(ct, &e))?;
    let seg_vol = nifti::read_labels(seg).map_err(|e| fail(seg, &e))?;
    let text = io::bounded::read_text(names, io::bounded::SMALL_TEXT_BYTES, "label-name table")
        .map_err(|e| fail(names, &e))?;
    let table = parse_names_file(&text).map_err(|e| fail(names, &e))?;
    if seg_vol.grid != ct_vol.grid {
        return Err(CliError::Usage(format!(
            "{} and {} are on different grids ({:?} vs {:?}); resample the segmentation onto the CT first",
            seg.display(),
            ct.display(),
            seg_vol.grid,
            ct_vol.grid
        )));
    }
    let (mapped, import) = import_labels(&seg_vol, &table, &ct_vol.grid);
    let (labels, report) = derive::derive(&ct_vol, &mapped).map_err(|e| fail(ct, &e))?;
    let json = serde_json::json!({
        "ct": ct.file_name().map(|f| f.to_string_lossy().to_string()),
        "segmentation": seg.file_name().map(|f| f.to_string_lossy().to_string()),
        "unmapped_classes": import.unmapped.iter().map(|(id, n)| format!("{id} {n}")).collect::<Vec<_>>(),
        "thresholds_hu": {
            "body": derive::BODY_HU,
            "fat_max": derive::FAT_MAX_HU,
            "muscle_max": derive::MUSCLE_MAX_HU,
        },
        "subcutaneous_max_depth_mm": derive::SUBCUT_MAX_DEPTH_MM,
        "report": report,
    });
    write_atlas(&labels, &json, out)
}

/// Writes an atlas label map and its derivation report (`<out stem>.json`, also printed).
fn write_atlas(
    labels: &synthcohort::volume::Volume<u16>,
    report: &serde_json::Value,
    out: &Path,
) -> Result<ExitCode, CliError> {
    use synthcohort::io::{self, nifti};
    let fail = |what: &Path, e: &dyn std::fmt::Display| {
        CliError::Usage(format!("{}: {e}", what.display()))
    };
    let bytes =
        nifti::encode_labels(labels, true, "synthcohort atlas").map_err(|e| fail(out, &e))?;
    io::atomic::write_atomic(out, &bytes).map_err(|e| fail(out, &e))?;
    let report_path = out.with_extension("").with_extension("json");
    let text = serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
    io::atomic::write_atomic(&report_path, text.as_bytes()).map_err(|e| fail(&report_path, &e))?;
    println!("{text}");
    println!("wrote {} and {}", out.display(), report_path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn atlas_chest(ct: &Path, heart: &Path, out: &Path) -> Result<ExitCode, CliError> {
    use synthcohort::anatomy::atlas::{derive, derive_chest};
    use synthcohort::io::nifti;
    let fail = |what: &Path, e: &dyn std::fmt::Display| {
        CliError::Usage(format!("{}: {e}", what.display()))
    };
    let ct_vol = nifti::read_image(ct).map_err(|e| fail(ct, &e))?;
    let heart_vol = nifti::read_labels(heart).map_err(|e| fail(heart, &e))?;
    let (seg, chest) =
        derive_chest::segment_chest(&ct_vol, &heart_vol).map_err(|e| fail(ct, &e))?;
    let (labels, report) = derive::derive(&ct_vol, &seg).map_err(|e| fail(ct, &e))?;
    let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().to_string());
    let json = serde_json::json!({
        "ct": name(ct),
        "heart": name(heart),
        "rules_hu": {
            "air": derive::BODY_HU,
            "airway_lumen": derive_chest::AIRWAY_LUMEN_HU,
            "blood_pool": [derive_chest::BLOOD_MIN_HU, derive_chest::BLOOD_MAX_HU],
            "bone_min": derive_chest::BONE_MIN_HU,
            "fat_max": derive::FAT_MAX_HU,
            "muscle_max": derive::MUSCLE_MAX_HU,
        },
        "airway_seed_mm": derive_chest::AIRWAY_SEED_MM,
        "subcutaneous_max_depth_mm": derive::SUBCUT_MAX_DEPTH_MM,
        "chest": chest,
        "report": report,
        "voxel_ml": labels.grid.voxel_ml(),
    });
    write_atlas(&labels, &json, out)
}

pub fn atlas_head(t1: &Path, gm: &Path, wm: &Path, out: &Path) -> Result<ExitCode, CliError> {
    use synthcohort::anatomy::atlas::derive_head;
    use synthcohort::io::nifti;
    let fail = |what: &Path, e: &dyn std::fmt::Display| {
        CliError::Usage(format!("{}: {e}", what.display()))
    };
    let read = |p: &Path| nifti::read_image(p).map_err(|e| fail(p, &e));
    // Probability maps stored as uint8 (p · 255) are brought to 0–1.
    let probability = |p: &Path| -> Result<_, CliError> {
        let mut v = read(p)?;
        if v.data.iter().any(|&x| x > 1.0) {
            v.data.iter_mut().for_each(|x| *x /= 255.0);
        }
        Ok(v)
    };
    let (t1_vol, gm_vol, wm_vol) = (read(t1)?, probability(gm)?, probability(wm)?);
    let (labels, report) =
        derive_head::derive_head(&t1_vol, &gm_vol, &wm_vol).map_err(|e| fail(t1, &e))?;
    let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().to_string());
    let json = serde_json::json!({
        "t1": name(t1),
        "gm": name(gm),
        "wm": name(wm),
        "rules": {
            "ventricle_min_depth_mm": derive_head::VENTRICLE_MIN_DEPTH_MM,
            "csf_shell_mm": derive_head::CSF_SHELL_MM,
            "skull_outer_mm": derive_head::SKULL_OUTER_MM,
            "scalp_outer_mm": derive_head::SCALP_OUTER_MM,
            "base_pad_mm": derive_head::BASE_PAD_MM,
        },
        "voxel_ml": labels.grid.voxel_ml(),
        "report": report,
    });
    write_atlas(&labels, &json, out)
}

pub fn anatomy_check(
    pipeline_path: &Path,
    subjects: u32,
    reference: Option<(&Path, &Path)>,
    compare: &[String],
    realism_subjects: u32,
    out: &Path,
) -> Result<ExitCode, CliError> {
    let own = pipeline::load(pipeline_path)?.spec.anatomy.template;
    let compare = if compare.is_empty() {
        // The pipeline's template and the procedural phantom of its region.
        let mut v = vec![own];
        let phantom = match own {
            Template::Abdomen => Some(Template::AbdomenPhantom),
            Template::Head => Some(Template::HeadPhantom),
            Template::Chest => Some(Template::ThoraxPhantom),
            _ => None,
        };
        v.extend(phantom);
        v
    } else {
        compare
            .iter()
            .map(|n| {
                Template::from_name(n)
                    .ok_or_else(|| CliError::Usage(format!("--compare: unknown template `{n}`")))
            })
            .collect::<Result<_, _>>()?
    };
    let args = synthcohort::lab::anatomy_check::AnatomyCheckArgs {
        pipeline: pipeline_path,
        subjects,
        reference,
        compare,
        realism_subjects,
        out,
    };
    synthcohort::lab::anatomy_check::run(&args).map_err(CliError::Lab)?;
    print!(
        "{}",
        std::fs::read_to_string(out.join("report.md")).unwrap_or_default()
    );
    println!("wrote {}", out.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}

pub fn fidelity(args: &synthcohort::lab::fidelity::FidelityArgs) -> Result<ExitCode, CliError> {
    synthcohort::lab::fidelity::run(args).map_err(CliError::Lab)?;
    print!(
        "{}",
        std::fs::read_to_string(args.out.join("report.md")).unwrap_or_default()
    );
    println!("wrote {}", args.out.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}

pub fn train(
    data: &Path,
    config: &Path,
    out: &Path,
    resume: bool,
    statistics_only: bool,
    device: &str,
    quiet: bool,
) -> Result<ExitCode, CliError> {
    let args = synthcohort::lab::train::TrainArgs {
        data,
        config,
        out,
        resume,
        statistics_only,
        device,
        quiet,
    };
    synthcohort::lab::train::run(&args).map_err(CliError::Lab)?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
pub fn eval_model(
    model: &Path,
    data: &Path,
    out: Option<&Path>,
    cases: usize,
    steps: usize,
    guidance: synthcohort_ldm::GuidanceChoice,
    quiet: bool,
) -> Result<ExitCode, CliError> {
    let args = synthcohort::lab::eval::EvalArgs {
        model,
        data,
        out,
        cases,
        steps,
        guidance,
        quiet,
    };
    let (_, dir) = synthcohort::lab::eval::run(&args).map_err(CliError::Lab)?;
    println!("wrote {}", dir.join("report.md").display());
    Ok(ExitCode::SUCCESS)
}

pub fn preview(outdir: &Path, subjects: usize) -> Result<ExitCode, CliError> {
    let path = engine::preview(outdir, subjects)?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn merge(out: &Path, shard_dirs: &[PathBuf]) -> Result<ExitCode, CliError> {
    let m = engine::merge(out, shard_dirs)?;
    println!(
        "merged {} subjects from {} shard(s) into {} ({} files copied)",
        m.subjects,
        m.shards,
        out.display(),
        m.copied_files
    );
    Ok(ExitCode::SUCCESS)
}

pub fn trial(outdir: &Path) -> Result<ExitCode, CliError> {
    let t = engine::trial(outdir)?;
    for a in &t.arms {
        println!(
            "{}\tAUC {:.3} [{:.3}, {:.3}]\td' {:.2}",
            a.arm, a.auc.auc, a.auc.ci_delong.0, a.auc.ci_delong.1, a.auc.dprime_from_auc
        );
    }
    if let Some((s, se)) = t.dprime_dose_slope {
        println!("d' vs dose log-log slope {s:.2} ± {se:.2}");
    }
    println!("report: {}", t.report_path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn verify(outdir: &Path) -> Result<ExitCode, CliError> {
    let r = engine::verify(outdir)?;
    for (what, list) in [
        ("missing", &r.missing),
        ("corrupt", &r.corrupt),
        ("extra", &r.extra),
    ] {
        for f in list {
            println!("{what}\t{f}");
        }
    }
    if r.ok() {
        println!("ok: {} files match their sha256", r.checked);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} missing, {} corrupt, {} extra file(s) in {}",
        r.missing.len(),
        r.corrupt.len(),
        r.extra.len(),
        outdir.display()
    );
    Ok(ExitCode::from(1))
}

pub fn run(path: &Path, opts: RunOptions, dry_run: bool) -> Result<ExitCode, CliError> {
    let p = pipeline::load(path)?;
    if dry_run {
        return plan(&p, &opts);
    }
    let s = engine::run(&p, &opts)?;
    tracing::info!(
        "done: {} subject(s) generated, {} kept from an earlier run, in {:.1} s → {}",
        s.generated,
        s.resumed,
        s.seconds,
        s.out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `run --dry-run`: the plan and its resource estimate; writes nothing.
fn plan(p: &pipeline::Resolved, opts: &RunOptions) -> Result<ExitCode, CliError> {
    let est = engine::check_resources(p, opts)?;
    let a = &p.spec.anatomy;
    let arms: Vec<&str> = p.arms.iter().map(|a| a.name.as_str()).collect();
    println!("pipeline   {} (sha256 {})", p.spec.name, &p.sha256[..12]);
    println!("output     {}", engine::out_dir(p, opts).display());
    println!("subjects   {}", est.subjects);
    println!(
        "grid       {}×{}×{} voxels at {}×{}×{} mm",
        a.size[0], a.size[1], a.size[2], a.spacing_mm[0], a.spacing_mm[1], a.spacing_mm[2]
    );
    println!("arms       {}", arms.join(", "));
    println!(
        "memory     about {} at peak",
        human_bytes(est.peak_memory_bytes)
    );
    println!("disk       about {}", human_bytes(est.disk_bytes));
    plan_model(p);
    Ok(ExitCode::SUCCESS)
}

/// `--dry-run` of a diffusion-model pipeline: the model, and which template labels it draws
/// by a stand-in class or leaves to the procedural renderer (an imported map's labels are
/// named when the run reads it).
fn plan_model(p: &pipeline::Resolved) {
    use synthcohort::generate::ldm;
    let g = &p.spec.generator;
    if g.kind != pipeline::spec::GeneratorKind::LatentDiffusion {
        return;
    }
    let template = p.spec.anatomy.template;
    let Ok(cfg) = ldm::resolve_model(g.model.as_deref(), template.name(), &p.base_dir)
        .and_then(|dir| ldm::read_config(&dir))
    else {
        return;
    };
    println!("model      {}", cfg.name);
    if p.spec.anatomy.source.is_some() {
        println!("stand-ins  named when the imported label map is read");
        return;
    }
    let ids = synthcohort::anatomy::template_labels(template);
    let named = ldm::stand_ins(&cfg, &ids);
    if !named.is_empty() {
        println!("stand-ins  {}", named.join(", "));
    }
    let unseen = ldm::unseen_labels(&cfg, &ids);
    if !unseen.is_empty() {
        println!("procedural {}", unseen.join(", "));
    }
}

fn human_bytes(b: u64) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}
