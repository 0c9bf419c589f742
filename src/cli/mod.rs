//! Command-line interface: parse arguments, set up logging, run one command, report its
//! error. `main` → `try_main` → one function per command (`commands`); errors are typed
//! ([`error::CliError`]) and carry their exit code: 0 success, 1 runtime failure, 2 invalid
//! pipeline, arguments or inputs.

mod commands;
mod error;
mod log;

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use synthcohort::engine;

pub use error::CliError;

/// Labeled synthetic medical-imaging cohorts from one declarative pipeline file.
#[derive(Parser, Debug)]
#[command(name = "synthcohort", version, about, long_about = None)]
pub struct Cli {
    /// Only warnings and errors: no progress bars, notes or summary.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr (-v debug, -vv trace); `RUST_LOG` takes precedence.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
        /// abdomen, head, thorax_phantom, abdomen_phantom, head_phantom, water_cylinder or
        /// ct_qa.
        template: String,
    },
    /// Build an atlas label map from a real CT (HU) and its organ segmentation: organs by
    /// class name, body outline, fat, muscle and gas from the CT (see ATLAS.md of a shipped
    /// atlas). The result serves as `anatomy.source` or as a shipped atlas.
    Atlas {
        /// The CT in Hounsfield units (NIfTI).
        #[arg(long)]
        ct: PathBuf,
        /// Its segmentation on the same grid (NIfTI label map, e.g. TotalSegmentator `total`).
        #[arg(long)]
        seg: PathBuf,
        /// Class names of the segmentation (`id<TAB>name` per line).
        #[arg(long)]
        names: PathBuf,
        /// Label map to write (.nii.gz); the derivation report goes beside it as .json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a head atlas label map from a skull-stripped T1 brain template and its grey- and
    /// white-matter probability maps (0–1, or 0–255 as uint8 maps store them): GM/WM by the
    /// larger probability, CSF and ventricles derived, CSF/skull/scalp shells added (see
    /// models/atlas-head/ATLAS.md).
    AtlasHead {
        /// Skull-stripped T1 (NIfTI; voxels > 0 are brain).
        #[arg(long)]
        t1: PathBuf,
        /// Grey-matter probability map on the same grid.
        #[arg(long)]
        gm: PathBuf,
        /// White-matter probability map on the same grid.
        #[arg(long)]
        wm: PathBuf,
        /// Label map to write (.nii.gz); the derivation report goes beside it as .json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a chest atlas label map from a real contrast chest CT (HU) and its heart mask:
    /// lungs, airways, pulmonary and great vessels and bone by HU rules, then body outline, fat
    /// and muscle as `atlas` does (see models/atlas-chest/ATLAS.md).
    AtlasChest {
        /// The chest CT in Hounsfield units (NIfTI).
        #[arg(long)]
        ct: PathBuf,
        /// Its heart mask on the same grid (non-zero = heart).
        #[arg(long)]
        heart: PathBuf,
        /// Label map to write (.nii.gz); the derivation report goes beside it as .json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure a pipeline's anatomy: organ volumes of N subjects against literature norms,
    /// the deformation's smallest Jacobian, and (with --reference) Dice, centroids and
    /// compactness against a real segmentation, template by template.
    AnatomyCheck {
        pipeline: PathBuf,
        /// Subjects in the volume table.
        #[arg(long, default_value_t = 100)]
        subjects: u32,
        /// A real segmentation (NIfTI) to compare with.
        #[arg(long, requires = "reference_names")]
        reference: Option<PathBuf>,
        /// Its class names (`id<TAB>name` per line).
        #[arg(long)]
        reference_names: Option<PathBuf>,
        /// Templates compared with the reference (default: the pipeline's and its procedural
        /// counterpart), comma-separated.
        #[arg(long, value_delimiter = ',')]
        compare: Vec<String>,
        /// Generated subjects per template in the comparison.
        #[arg(long, default_value_t = 5)]
        realism_subjects: u32,
        /// Report folder (report.md, report.json).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare runs' CT numbers and texture with a real CT, organ by organ, beside the
    /// label-mean painter (report.md, fidelity.json, patches.png).
    Fidelity {
        /// Run folders, one row each (e.g. the procedural renderer and a model on the same
        /// anatomy); the painter's row is made from the first.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The real CT (NIfTI, HU).
        #[arg(long)]
        real_image: PathBuf,
        /// Its label map (NIfTI, any class names).
        #[arg(long)]
        real_labels: PathBuf,
        /// Its class names (`id name` per line, e.g. TotalSegmentator's).
        #[arg(long)]
        real_names: PathBuf,
        /// Only compare voxels inside this mask (NIfTI, non-zero = inside), on both sides,
        /// matched by position from each grid's centre as `anatomy.source` centres an imported
        /// map: e.g. the region of the real scan a model did not train on.
        #[arg(long)]
        region: Option<PathBuf>,
        /// The arm compared (default: the first CT or HU arm).
        #[arg(long)]
        arm: Option<String>,
        /// Subjects of the run used (the first N).
        #[arg(long, default_value_t = 8)]
        subjects: usize,
        /// Report folder.
        #[arg(long)]
        out: PathBuf,
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
        /// Keep the finished model's weights in OUT and only measure its sampling statistics
        /// on the same data again: the residual texture (the stochastic sub-block detail
        /// samples draw) and the per-class block spread (the model samples every training
        /// case once). `--texture-only` is the older spelling.
        #[arg(long, alias = "texture-only", conflicts_with = "resume")]
        statistics_only: bool,
        /// Where to train: `cpu`, or `cuda` / `cuda:N` in a build with `--features cuda`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Evaluate a latent diffusion model on its held-out subjects: intensities, label
    /// adherence, text effect, diversity, memorization and, for CT, fidelity to their real
    /// images per organ beside the label-mean painter (MODEL/eval/report.{json,md},
    /// fidelity.json, patches.png).
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

/// Parses the command line, sets up logging and runs the command.
pub fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away
    // (`synthcohort labels abdomen | head`) instead of panicking on the broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    log::init(cli.quiet, cli.verbose);
    match try_main(cli) {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}

fn try_main(cli: Cli) -> Result<ExitCode, CliError> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Schema => commands::schema(),
        Command::Validate { pipeline } => commands::validate(&pipeline),
        Command::Labels { template } => commands::labels(&template),
        Command::Atlas {
            ct,
            seg,
            names,
            out,
        } => commands::atlas(&ct, &seg, &names, &out),
        Command::AtlasHead { t1, gm, wm, out } => commands::atlas_head(&t1, &gm, &wm, &out),
        Command::AtlasChest { ct, heart, out } => commands::atlas_chest(&ct, &heart, &out),
        Command::Train {
            data,
            config,
            out,
            resume,
            statistics_only,
            device,
        } => commands::train(
            &data,
            &config,
            &out,
            resume,
            statistics_only,
            &device,
            quiet,
        ),
        Command::EvalModel {
            model,
            data,
            out,
            cases,
            steps,
            guidance_text,
            guidance_labels,
        } => commands::eval_model(
            &model,
            &data,
            out.as_deref(),
            cases,
            steps,
            synthcohort_ldm::GuidanceChoice {
                text: guidance_text,
                labels: guidance_labels,
            },
            quiet,
        ),
        Command::AnatomyCheck {
            pipeline,
            subjects,
            reference,
            reference_names,
            compare,
            realism_subjects,
            out,
        } => commands::anatomy_check(
            &pipeline,
            subjects,
            reference.as_deref().zip(reference_names.as_deref()),
            &compare,
            realism_subjects,
            &out,
        ),
        Command::Fidelity {
            runs,
            real_image,
            real_labels,
            real_names,
            region,
            arm,
            subjects,
            out,
        } => commands::fidelity(&synthcohort::lab::fidelity::FidelityArgs {
            runs: &runs,
            real_image: &real_image,
            real_labels: &real_labels,
            real_names: &real_names,
            region: region.as_deref(),
            arm: arm.as_deref(),
            max_subjects: subjects,
            out: &out,
        }),
        Command::Preview { outdir, subjects } => commands::preview(&outdir, subjects),
        Command::Merge { out, shard_dirs } => commands::merge(&out, &shard_dirs),
        Command::Trial { outdir } => commands::trial(&outdir),
        Command::Verify { outdir } => commands::verify(&outdir),
        Command::Run {
            pipeline,
            out,
            jobs,
            subjects,
            resume,
            overwrite,
            dry_run,
            shard,
            force,
        } => {
            let opts = engine::RunOptions {
                out,
                jobs,
                subjects,
                resume,
                overwrite,
                quiet,
                shard,
                force,
            };
            commands::run(&pipeline, opts, dry_run)
        }
    }
}
