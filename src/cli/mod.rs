//! Command-line interface: parse arguments, call the library, print. Exit codes:
//! 0 success, 1 runtime failure, 2 invalid pipeline or arguments.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use synthcohort::anatomy::{ontology, Template};
use synthcohort::engine::{self, RunOptions};
use synthcohort::pipeline::{self, PipelineError};

/// Labeled synthetic medical-imaging cohorts from one declarative pipeline file.
#[derive(Parser, Debug)]
#[command(name = "synthcohort", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate the cohort a pipeline describes.
    Run {
        /// Pipeline file (YAML).
        pipeline: PathBuf,
        /// Run folder (default: outputs.dir, else out/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Subjects generated in parallel (default: all cores).
        #[arg(long, short = 'j', default_value_t = 0)]
        jobs: usize,
        /// Only these subjects, 0-based and end-exclusive: `5..9`, `5..`, `..10`, or `7`.
        #[arg(long, value_parser = parse_range)]
        subjects: Option<Range<u64>>,
        /// Continue an interrupted run: keep verified subjects, redo the rest.
        #[arg(long)]
        resume: bool,
        /// Replace an earlier synthcohort run in the same folder.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Validate and print the plan and resource estimate; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// No progress bar or summary.
        #[arg(long, short = 'q')]
        quiet: bool,
        /// Only shard K of N (subjects with index ≡ K mod N), e.g. `--shard 3/16`; join the
        /// shards with `synthcohort merge`.
        #[arg(long)]
        shard: Option<engine::Shard>,
        /// Run even when the memory or disk estimate exceeds what this machine has.
        #[arg(long)]
        force: bool,
    },
    /// Join shard run folders (or the shards sharing OUT) into one verified run.
    Merge {
        /// The merged run folder (also the shards' folder when no SHARD_DIRS are given).
        out: PathBuf,
        /// Shard run folders to merge into OUT.
        shard_dirs: Vec<PathBuf>,
    },
    /// Recompute the virtual-trial analysis of a run folder from its images.
    Trial { outdir: PathBuf },
    /// Re-hash every file of a run folder; exit 1 when anything is missing, corrupt or extra.
    Verify { outdir: PathBuf },
    /// Check a pipeline file and report every problem with its field path and line.
    Validate { pipeline: PathBuf },
    /// Print the pipeline JSON Schema.
    Schema,
    /// List the labels a template produces (id, name, colour).
    Labels {
        /// thorax, abdomen, head, water_cylinder or ct_qa.
        template: String,
    },
    /// Re-render preview.png of an existing run folder.
    Preview {
        outdir: PathBuf,
        /// Subjects in the mosaic.
        #[arg(long, default_value_t = 8)]
        subjects: usize,
    },
    /// Train a latent diffusion model (autoencoder, then denoiser) on an nnU-Net-layout
    /// dataset, e.g. a procedural run of synthcohort.
    Train {
        /// Dataset folder (dataset.json, imagesTr/, labelsTr/, manifest.parquet or prompts.jsonl).
        #[arg(long)]
        data: PathBuf,
        /// Training configuration (YAML): name, modality, channels, arms, hold_out, training.
        #[arg(long)]
        config: PathBuf,
        /// Model folder to write (config.json, weights, loss.csv, MODEL_CARD.md, checkpoint/).
        #[arg(long)]
        out: PathBuf,
        /// Continue from the last checkpoint in OUT.
        #[arg(long)]
        resume: bool,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Evaluate a latent diffusion model on its held-out subjects: intensities, label
    /// adherence, text effect, diversity, memorization (MODEL/eval/report.{json,md}).
    EvalModel {
        /// Model folder (from `synthcohort train`, or under models/).
        model: PathBuf,
        /// The dataset it was trained on (its held-out subjects are evaluated).
        #[arg(long)]
        data: PathBuf,
        /// Report folder (default MODEL/eval).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Held-out subjects to sample.
        #[arg(long, default_value_t = 32)]
        cases: usize,
        #[arg(long, default_value_t = synthcohort_ldm::DEFAULT_STEPS)]
        steps: usize,
        /// Text guidance scale (default: the model's recommended, else 3).
        #[arg(long)]
        guidance_text: Option<f32>,
        /// Label guidance scale (default: the model's recommended, else 1).
        #[arg(long)]
        guidance_labels: Option<f32>,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("`{s}` is not a subject range (examples: 5..9, 5.., ..10, 7)");
    if let Some((a, b)) = s.split_once("..") {
        let a = if a.is_empty() {
            0
        } else {
            a.trim().parse().map_err(|_| bad())?
        };
        let b = if b.is_empty() {
            u64::MAX
        } else {
            b.trim().parse().map_err(|_| bad())?
        };
        if a >= b {
            return Err(format!(
                "`{s}` is empty: the end is exclusive and must exceed the start"
            ));
        }
        Ok(a..b)
    } else {
        let k: u64 = s.trim().parse().map_err(|_| bad())?;
        Ok(k..k + 1)
    }
}

fn load(path: &std::path::Path) -> Result<pipeline::Resolved, ExitCode> {
    pipeline::load(path).map_err(|e| {
        eprintln!("{e}");
        match e {
            PipelineError::Read { .. } | PipelineError::Invalid { .. } => ExitCode::from(2),
        }
    })
}

fn human_bytes(b: u64) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Command::Schema => {
            print!("{}", pipeline::schema::schema_text());
            ExitCode::SUCCESS
        }
        Command::Validate { pipeline } => match load(&pipeline) {
            Ok(p) => {
                println!(
                    "{}: valid — {} subjects, {} arm(s): {}",
                    pipeline.display(),
                    p.spec.cohort.size,
                    p.arms.len(),
                    p.arms
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Labels { template } => {
            let Some(t) = Template::from_name(&template) else {
                eprintln!("error: unknown template `{template}`; choose thorax, abdomen, head, water_cylinder or ct_qa");
                return ExitCode::from(2);
            };
            let mut ids = synthcohort::anatomy::template_labels(t);
            ids.sort_unstable();
            ids.dedup();
            println!("id\tname\tcolour");
            for id in ids {
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
            ExitCode::SUCCESS
        }
        Command::Train {
            data,
            config,
            out,
            resume,
            quiet,
        } => {
            let args = synthcohort::lab::train::TrainArgs {
                data: &data,
                config: &config,
                out: &out,
                resume,
                quiet,
            };
            match synthcohort::lab::train::run(&args) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::EvalModel {
            model,
            data,
            out,
            cases,
            steps,
            guidance_text,
            guidance_labels,
            quiet,
        } => {
            let args = synthcohort::lab::eval::EvalArgs {
                model: &model,
                data: &data,
                out: out.as_deref(),
                cases,
                steps,
                guidance: synthcohort_ldm::GuidanceChoice {
                    text: guidance_text,
                    labels: guidance_labels,
                },
                quiet,
            };
            match synthcohort::lab::eval::run(&args) {
                Ok((_, dir)) => {
                    println!("wrote {}", dir.join("report.md").display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Preview { outdir, subjects } => match engine::preview(&outdir, subjects) {
            Ok(path) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Merge { out, shard_dirs } => match engine::merge(&out, &shard_dirs) {
            Ok(m) => {
                println!(
                    "merged {} subjects from {} shard(s) into {} ({} files copied)",
                    m.subjects,
                    m.shards,
                    out.display(),
                    m.copied_files
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Trial { outdir } => match engine::trial(&outdir) {
            Ok(t) => {
                for a in &t.arms {
                    println!(
                        "{}\tAUC {:.3} [{:.3}, {:.3}]\td' {:.2}",
                        a.arm,
                        a.auc.auc,
                        a.auc.ci_delong.0,
                        a.auc.ci_delong.1,
                        a.auc.dprime_from_auc
                    );
                }
                if let Some((s, se)) = t.dprime_dose_slope {
                    println!("d' vs dose log-log slope {s:.2} ± {se:.2}");
                }
                println!("report: {}", t.report_path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Verify { outdir } => match engine::verify(&outdir) {
            Ok(r) => {
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
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "{} missing, {} corrupt, {} extra file(s) in {}",
                        r.missing.len(),
                        r.corrupt.len(),
                        r.extra.len(),
                        outdir.display()
                    );
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run {
            pipeline,
            out,
            jobs,
            subjects,
            resume,
            overwrite,
            dry_run,
            quiet,
            shard,
            force,
        } => {
            let p = match load(&pipeline) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let opts = RunOptions {
                out,
                jobs,
                subjects,
                resume,
                overwrite,
                quiet,
                shard,
                force,
            };
            if dry_run {
                return match engine::check_resources(&p, &opts) {
                    Ok(est) => {
                        let a = &p.spec.anatomy;
                        println!("pipeline   {} (sha256 {})", p.spec.name, &p.sha256[..12]);
                        println!("output     {}", engine::out_dir(&p, &opts).display());
                        println!("subjects   {}", est.subjects);
                        println!(
                            "grid       {}×{}×{} voxels at {}×{}×{} mm",
                            a.size[0],
                            a.size[1],
                            a.size[2],
                            a.spacing_mm[0],
                            a.spacing_mm[1],
                            a.spacing_mm[2]
                        );
                        println!(
                            "arms       {}",
                            p.arms
                                .iter()
                                .map(|a| a.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        println!(
                            "memory     about {} at peak",
                            human_bytes(est.peak_memory_bytes)
                        );
                        println!("disk       about {}", human_bytes(est.disk_bytes));
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            match engine::run(&p, &opts) {
                Ok(s) => {
                    if !quiet {
                        eprintln!(
                            "done: {} subject(s) generated, {} kept from an earlier run, in {:.1} s → {}",
                            s.generated,
                            s.resumed,
                            s.seconds,
                            s.out_dir.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    match e {
                        engine::EngineError::EmptySelection { .. }
                        | engine::EngineError::Resources(_)
                        | engine::EngineError::Source(_) => ExitCode::from(2),
                        _ => ExitCode::from(1),
                    }
                }
            }
        }
    }
}
