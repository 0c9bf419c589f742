//! The evaluation's files: `report.json`, `report.md`, and the model card's evaluation
//! section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use synthcohort_ldm::LdmConfig;

use super::{median, EvalArgs, Report};
use crate::lab::LabError;

/// `report.json` and `report.md` into `--out` (default `<model>/eval`); without `--out`,
/// the model card's evaluation section is replaced too.
pub(super) fn write_report(
    a: &EvalArgs,
    report: &Report,
    cfg: &LdmConfig,
) -> Result<PathBuf, LabError> {
    let out = out_dir(a);
    std::fs::create_dir_all(&out).map_err(LabError::file("cannot create", &out))?;
    let json_path = out.join("report.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(report)?)
        .map_err(LabError::file("cannot write", &json_path))?;
    let md = markdown(report, cfg);
    let md_path = out.join("report.md");
    std::fs::write(&md_path, &md).map_err(LabError::file("cannot write", &md_path))?;
    if a.out.is_none() {
        update_card(a.model, &md)?;
    }
    Ok(out)
}

/// `--out`, or `<model>/eval`.
pub(super) fn out_dir(a: &EvalArgs) -> PathBuf {
    a.out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| a.model.join("eval"))
}

/// Replaces the model card's evaluation section (everything from `## Evaluation`) with the
/// report, so the card always states the figures of the weights beside it.
fn update_card(model: &Path, report_md: &str) -> Result<(), LabError> {
    let path = model.join("MODEL_CARD.md");
    let Ok(card) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let head = card
        .find("\n## Evaluation")
        .map_or(card.as_str(), |i| &card[..i])
        .trim_end();
    let body = report_md
        .split_once('\n')
        .map_or(report_md, |(_, rest)| rest)
        .replace("\n## ", "\n### ");
    let text = format!(
        "{head}\n\n## Evaluation (`synthcohort eval-model`, also in `eval/report.md`)\n{body}"
    );
    std::fs::write(&path, text).map_err(LabError::file("cannot write", &path))
}

fn markdown(r: &Report, cfg: &LdmConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Evaluation of `{}`\n", cfg.name);
    let _ = writeln!(s, "{} held-out subjects of `{}` ({} training subjects); {} Euler steps, guidance text {} / labels {}; {:.1} s per sample on this machine.\n",
        r.held_out_subjects, r.data, r.training_subjects, r.steps, r.guidance_text, r.guidance_labels, r.seconds_per_sample);
    let _ = writeln!(s, "## Intensity and label adherence\n");
    let _ = writeln!(s, "| group | channel | data mean ± SD | generated mean ± SD | difference | Dice generated | Dice data (ceiling) | autoencoder reconstruction mean ± SD |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for g in &r.groups {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} ± {:.1} | {:.1} ± {:.1} | {:+.1} | {:.3} | {:.3} | {:.1} ± {:.1} |",
            g.group,
            g.channel,
            g.data.mean,
            g.data.sd,
            g.generated.mean,
            g.generated.sd,
            g.mean_difference,
            g.dice_generated,
            g.dice_data,
            g.reconstructed.mean,
            g.reconstructed.sd
        );
    }
    let _ = writeln!(s, "\nDice: nearest-group-mean segmentation of the object, each voxel choosing among the groups present within 2 voxels in the conditioning labels.\n");
    let _ = writeln!(s, "## Text effect\n");
    let _ = writeln!(s, "| prompt word | group | channel | subjects with / without | data shift | generated shift | ratio | autoencoder reconstruction shift |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for t in &r.text_effects {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {} | {:+.1} | {:+.1} | {:.2} | {:+.1} |",
            t.condition,
            t.group,
            t.channel,
            t.subjects_with,
            t.subjects_without,
            t.data_shift,
            t.generated_shift,
            t.ratio,
            t.reconstructed_shift
        );
    }
    let _ = writeln!(s, "\n## Diversity and memorization\n");
    let _ = writeln!(s, "- Mean pairwise SSIM of {} samples with the same labels and prompt: {:.3} (1 = identical).", r.diversity_samples, r.diversity_ssim);
    let n = r.nearest_training_distance.len();
    let _ = writeln!(s, "- Distance to the nearest training subject (RMS over a 4× down-sampled grid, channel `{}`): samples closest {:.4} / median {:.4}; the held-out subjects they were made from (data the model never saw) closest {:.4} / median {:.4}; training subjects to their nearest other training subject, median {:.4}.",
        cfg.channels[0].name, r.min_sample_to_training, median(&r.nearest_training_distance), r.min_held_out_to_training, median(&r.held_out_nearest_training_distance), r.median_training_nn_distance);
    let _ = writeln!(s, "- Closest sample vs the median training-to-training distance: {}. The held-out data themselves: {}.",
        if r.min_sample_to_training >= r.median_training_nn_distance { "not closer" } else { "closer" },
        if r.min_held_out_to_training >= r.median_training_nn_distance { "not closer" } else { "closer" });
    let _ = writeln!(s, "- Paired with their own held-out subject: {} of {n} samples are more than 5 % nearer a training subject than that subject is. {}",
        r.samples_nearer_than_subject,
        if r.samples_nearer_than_subject == 0 { "No sign of memorization." } else { "Check those samples for memorization." });
    if !r.fidelity_table.is_empty() {
        let _ = writeln!(
            s,
            "\n## Fidelity against the held-out subjects' real images\n"
        );
        let _ = writeln!(s, "The model draws each held-out subject from its own label map; the drawing is compared with that subject's real image (`fidelity.json`, `patches.png`). The procedural renderer's row needs a pipeline run: `synthcohort fidelity`.\n");
        s.push_str(&r.fidelity_table);
    }
    s
}
