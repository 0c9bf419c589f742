//! `utility`: does a synthetic cohort help a segmentation network on real scans?
//!
//! Generates the benchmark's cohorts once (procedural on the abdomen atlas with a noise-free
//! HU arm and a physics CT arm, procedural on the anatomy-independent abdomen phantom, the
//! shipped diffusion model; for `--modality mr` the same subjects imaged by the MR
//! simulator), trains the same compact 2D UNet with the same budget on each arm (and on a
//! split of the real scan, and on real + synthetic) for several seeds, and scores every
//! network on the real scan's held-out slices.
//!
//!   cargo run --release -p synthcohort-utility -- --out out/utility
//!   cargo run --release -p synthcohort-utility -- --modality mr --out out/utility-mr
//!
//! See benches/utility/README.md for the design and benches/utility/RESULTS.md for the
//! latest table.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::MultiProgress;
use synthcohort::engine::{self, RunOptions};
use synthcohort::pipeline;
use synthcohort_utility::arms::{arms as arm_table, pipeline_file, real_defaults, ArmDef, From};
use synthcohort_utility::contrast;
use synthcohort_utility::data::{cohort_cases, painted, real_case, Case};
use synthcohort_utility::report::{self, Run};
use synthcohort_utility::score::{score, split};
use synthcohort_utility::slices::{slices_of, Canvas, Modality, Slice};
use synthcohort_utility::train::{predict, train, Budget};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Parser, Debug)]
#[command(name = "utility", about = "Synthetic-to-real segmentation benchmark")]
struct Args {
    /// Output folder: cohorts are generated under `cohorts/` once and reused
    /// [default: out/utility, out/utility-mr for MR].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The real scan's modality and the synthetic arms imaged to match it: CT (HU windows)
    /// or MR (z-score over the body).
    #[arg(long, value_enum, default_value_t = Modality::Ct)]
    modality: Modality,
    /// Seeds per arm (network initialisation and sampling).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Training steps per network (every arm gets the same).
    #[arg(long, default_value_t = Budget::default().steps)]
    steps: usize,
    /// Slices per step.
    #[arg(long, default_value_t = Budget::default().batch)]
    batch: usize,
    /// Width of the UNet's first level.
    #[arg(long, default_value_t = Budget::default().width)]
    width: usize,
    /// Subjects used from each cohort.
    #[arg(long, default_value_t = 12)]
    subjects: usize,
    /// Real scan (CT in HU, or MR) [default: the repository's real torso CT, or its real
    /// abdominal MR for `--modality mr`, both under tests/data].
    #[arg(long)]
    real_image: Option<PathBuf>,
    /// Its label map (any names the ontology knows) [default: its TotalSegmentator labels].
    #[arg(long)]
    real_labels: Option<PathBuf>,
    /// Its name table (`id name` per line) [default: TotalSegmentator's `total` or
    /// `total_mr` class list].
    #[arg(long)]
    real_names: Option<PathBuf>,
    /// Real slices per block of the interleaved train/score split [default: 8 for CT, 5 for
    /// the 20-slice MR].
    #[arg(long)]
    block: Option<usize>,
    /// Networks trained at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Only these arms (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    arms: Vec<String>,
    /// Only rewrite the report from the networks' results already in `runs/`.
    #[arg(long)]
    report_only: bool,
    /// Internal: run as worker k of `--jobs` (the benchmark starts its workers itself).
    #[arg(long, hide = true)]
    worker: Option<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The arguments with every modality-dependent default filled in.
struct Resolved {
    out: PathBuf,
    real_image: PathBuf,
    real_labels: PathBuf,
    real_names: PathBuf,
    block: usize,
}

fn resolve(a: &Args) -> Resolved {
    let (files, block) = real_defaults(a.modality);
    // Shown relative to the working directory where it lies under it (reports stay
    // machine-independent when run from the repository).
    let data = Path::new(HERE).join("../../tests/data");
    let data = std::fs::canonicalize(&data).unwrap_or(data);
    let data = std::env::current_dir()
        .ok()
        .and_then(|cwd| data.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or(data);
    let or = |given: &Option<PathBuf>, file: &str| given.clone().unwrap_or_else(|| data.join(file));
    Resolved {
        out: a.out.clone().unwrap_or_else(|| match a.modality {
            Modality::Ct => "out/utility".into(),
            Modality::Mr => "out/utility-mr".into(),
        }),
        real_image: or(&a.real_image, files[0]),
        real_labels: or(&a.real_labels, files[1]),
        real_names: or(&a.real_names, files[2]),
        block: a.block.unwrap_or(block),
    }
}

fn cohort(out: &Path, name: &str, file: &str, subjects: usize) -> Result<PathBuf, String> {
    let dir = out.join("cohorts").join(name);
    if dir.join("dataset.json").exists() && dir.join("manifest.parquet").exists() {
        eprintln!("cohort {name}: reusing {}", dir.display());
        return Ok(dir);
    }
    let path = Path::new(HERE).join("pipelines").join(file);
    let p = pipeline::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = p.spec.cohort.size as usize;
    let opts = RunOptions {
        out: Some(dir.clone()),
        subjects: Some(0..subjects.min(size) as u64),
        overwrite: true,
        ..Default::default()
    };
    eprintln!("cohort {name}: generating {} subjects", subjects.min(size));
    engine::run(&p, &opts).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(dir)
}

fn all(v: &[Slice]) -> Vec<&Slice> {
    v.iter().collect()
}

fn slices(cases: &[Case], c: Canvas, m: Modality) -> Vec<Slice> {
    cases
        .iter()
        .enumerate()
        .flat_map(|(i, case)| slices_of(&case.image, &case.classes, i, c, m))
        .collect()
}

/// Starts `n` workers (this binary with the same arguments and `--worker k`) into a fresh
/// `runs/` and waits for all of them.
fn spawn_workers(runs_dir: &Path, n: usize) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(runs_dir);
    std::fs::create_dir_all(runs_dir).map_err(|e| format!("{}: {e}", runs_dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for k in 0..n {
        let child = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .arg("--worker")
            .arg(k.to_string())
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        children.push(child);
    }
    for mut ch in children {
        let status = ch.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a worker failed ({status})"));
        }
    }
    Ok(())
}

/// An arm: name, what it was trained on, its training sources (each draws an equal share).
type Arm<'s> = (String, String, Vec<Vec<&'s Slice>>);

/// What every network is scored on, and the budget it trains with.
struct Scored<'s> {
    slices: &'s [&'s Slice],
    nz: usize,
    dz_mm: f64,
    shown: &'s Slice,
    canvas: Canvas,
    budget: Budget,
}

/// Trains one arm's network with one seed and scores it on the real slices.
fn job(arm: &Arm, seed: u64, on: &Scored, quiet_bars: bool) -> Done {
    let (name, _, sources) = arm;
    let c = on.canvas;
    let set: Vec<&Slice> = sources.iter().flatten().copied().collect();
    let weights: Vec<f64> = sources
        .iter()
        .flat_map(|s| std::iter::repeat_n(1.0 / s.len() as f64, s.len()))
        .collect();
    let t0 = Instant::now();
    let label = format!("{name} seed {seed}");
    // Several workers share one terminal: log lines instead of bars.
    let bars = if quiet_bars {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    };
    let model = train(&set, &weights, c, on.budget, seed, &label, &bars);
    let train_seconds = t0.elapsed().as_secs_f64();
    let pred = predict(&model, on.slices, c);
    let scores = score(&pred, on.slices, on.nz, on.dz_mm, c);
    let at = on
        .slices
        .iter()
        .position(|s| s.k == on.shown.k)
        .expect("shown is scored");
    let dice: Vec<String> = scores
        .organs
        .iter()
        .map(|o| {
            let d = o.dice.map_or("–".into(), |d| format!("{d:.2}"));
            format!("{} {d}", o.organ)
        })
        .collect();
    eprintln!("{label}: {train_seconds:.0} s, Dice {}", dice.join(", "));
    Done {
        run: Run {
            arm: name.clone(),
            seed,
            train_slices: set.len(),
            train_seconds,
            scores,
        },
        shown: pred[at].clone(),
    }
}

/// One network's result as a worker leaves it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Done {
    run: Run,
    /// Its prediction of the displayed slice.
    shown: Vec<u8>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(a: Args) -> Result<(), String> {
    let started = Instant::now();
    let c = Canvas::default();
    let m = a.modality;
    let r = resolve(&a);
    let budget = Budget {
        steps: a.steps,
        batch: a.batch,
        width: a.width,
        ..Budget::default()
    };
    if r.block < 3 {
        // Each block gives up its first and last slice as a gap between the sets.
        return Err(format!(
            "--block {}: blocks need at least 3 slices (the first and last are left out)",
            r.block
        ));
    }
    std::fs::create_dir_all(&r.out).map_err(|e| format!("{}: {e}", r.out.display()))?;
    let defs = arm_table(m);
    if let Some(x) = a
        .arms
        .iter()
        .find(|x| !defs.iter().any(|d| d.name == x.as_str()))
    {
        let names: Vec<&str> = defs.iter().map(|d| d.name).collect();
        return Err(format!(
            "--arms: no arm `{x}` for --modality {m:?}; arms: {}",
            names.join(", ")
        ));
    }
    let defs: Vec<&ArmDef> = defs
        .iter()
        .filter(|d| a.arms.is_empty() || a.arms.iter().any(|x| x == d.name))
        .collect();

    let real =
        real_case(&r.real_image, &r.real_labels, &r.real_names).map_err(|e| e.to_string())?;
    let real_dz = real.image.grid.spacing_mm[2];
    let real_nz = real.image.grid.dims[2];
    let real_slices = slices_of(&real.image, &real.classes, 0, c, m);
    let (real_train, real_test) = split(&real_slices, r.block);
    eprintln!(
        "real scan {}: {} slices, {} train / {} scored (interleaved blocks of {})",
        real.name,
        real_nz,
        real_train.len(),
        real_test.len(),
        r.block
    );

    // Every synthetic source the chosen arms need, loaded (and generated) once; a cohort arm
    // that is both a source and the painter's labels is read from disk once.
    let mut cases: HashMap<(&str, &str), Vec<Case>> = HashMap::new();
    let mut synthetic: HashMap<From, Vec<Slice>> = HashMap::new();
    for from in defs.iter().flat_map(|d| d.from.iter().copied()) {
        let (From::Cohort(name, arm) | From::Painted(name, arm)) = from else {
            continue;
        };
        if synthetic.contains_key(&from) {
            continue;
        }
        let read = match cases.entry((name, arm)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let file = pipeline_file(name).expect("arms name known cohorts");
                let dir = cohort(&r.out, name, file, a.subjects)?;
                e.insert(cohort_cases(&dir, arm, a.subjects).map_err(|e| e.to_string())?)
            }
        };
        let s = match from {
            From::Painted(..) => slices(&read.iter().map(painted).collect::<Vec<_>>(), c, m),
            _ => slices(read, c, m),
        };
        synthetic.insert(from, s);
    }
    drop(cases);
    let arms: Vec<Arm> = defs
        .iter()
        .map(|d| {
            let sources = d
                .from
                .iter()
                .map(|f| match f {
                    From::RealTrain => real_train.clone(),
                    _ => all(&synthetic[f]),
                })
                .collect();
            (d.name.to_string(), d.trained_on.to_string(), sources)
        })
        .filter(|(_, _, s): &Arm| s.iter().all(|x| !x.is_empty()))
        .collect();
    if arms.is_empty() {
        return Err("no arm to run (check --arms)".into());
    }

    // The displayed slice: the scored slice with the most classes present.
    let shown = real_test
        .iter()
        .copied()
        .max_by_key(|s| {
            let mut seen = [false; 256];
            s.y.iter().for_each(|&v| seen[v as usize] = true);
            (
                seen[1..].iter().filter(|&&x| x).count(),
                s.y.iter().filter(|&&v| v > 0).count(),
            )
        })
        .ok_or("no scored slice")?;
    let arm_list: Vec<(String, String)> = arms
        .iter()
        .map(|(n, w, _)| (n.clone(), w.clone()))
        .collect();
    // Every (seed, arm) network is one job. burn's autodiff graph sits behind one lock per
    // process, so parallel networks need processes: `--jobs` workers (this binary again
    // with `--worker k`) take every jobs-th job each and leave their results in `runs/`.
    let jobs: Vec<(u64, usize)> = (0..a.seeds)
        .flat_map(|seed| (0..arms.len()).map(move |i| (seed, i)))
        .collect();
    let runs_dir = r.out.join("runs");
    let run_file = |seed: u64, i: usize| runs_dir.join(format!("{}-seed{seed}.json", arms[i].0));
    let n_workers = a.jobs.max(1);
    let scored = Scored {
        slices: &real_test,
        nz: real_nz,
        dz_mm: real_dz,
        shown,
        canvas: c,
        budget,
    };
    if let Some(k) = a.worker {
        for (n, &(seed, i)) in jobs.iter().enumerate() {
            if n % n_workers != k {
                continue;
            }
            let done = job(&arms[i], seed, &scored, n_workers > 1);
            let path = run_file(seed, i);
            std::fs::write(&path, serde_json::to_vec(&done).expect("json"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        return Ok(());
    }
    if !a.report_only {
        spawn_workers(&runs_dir, n_workers)?;
    }
    // A report rewritten from `runs/` keeps the time the benchmark took.
    let elapsed_s = if a.report_only {
        std::fs::read(r.out.join("report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["elapsed_s"].as_f64())
            .unwrap_or(f64::NAN)
    } else {
        started.elapsed().as_secs_f64()
    };
    let mut runs = Vec::new();
    let mut shown_pred = Vec::new();
    for &(seed, i) in &jobs {
        let path = run_file(seed, i);
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let d: Done =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if seed == 0 {
            shown_pred.push(d.shown);
        }
        runs.push(d.run);
    }
    // Channel 0 of every class, real scored slices first, then each arm's training slices.
    let mut contrast_rows = vec![(
        "real (scored slices)".to_string(),
        contrast::class_means(&real_test, c, 0),
    )];
    for (name, _, sources) in &arms {
        let set: Vec<&Slice> = sources.iter().flatten().copied().collect();
        contrast_rows.push((name.clone(), contrast::class_means(&set, c, 0)));
    }
    write_report(
        &a,
        &r,
        &contrast_rows,
        &runs,
        &arm_list,
        budget,
        c,
        &real,
        real_train.len(),
        real_test.len(),
        elapsed_s,
    )?;
    let mut panels: Vec<&[u8]> = vec![&shown.y];
    panels.extend(shown_pred.iter().map(|p| p.as_slice()));
    report::picture(&r.out.join("prediction.png"), shown, &panels, c).map_err(|e| e.to_string())?;
    eprintln!(
        "done in {:.1} min: {}",
        started.elapsed().as_secs_f64() / 60.0,
        r.out.join("report.md").display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_report(
    a: &Args,
    r: &Resolved,
    contrast_rows: &[(String, Vec<Option<f64>>)],
    runs: &[Run],
    arms: &[(String, String)],
    budget: Budget,
    c: Canvas,
    real: &Case,
    n_train: usize,
    n_test: usize,
    elapsed_s: f64,
) -> Result<(), String> {
    let json = serde_json::json!({
        "modality": a.modality,
        "real_image": r.real_image,
        "real_labels": r.real_labels,
        "real_slices": real.image.grid.dims[2],
        "real_train_slices": n_train,
        "real_scored_slices": n_test,
        "split_block": r.block,
        "budget": budget,
        "canvas": c,
        "seeds": a.seeds,
        "subjects_per_cohort": a.subjects,
        "elapsed_s": elapsed_s,
        "arms": arms.iter().map(|(n, w)| serde_json::json!({"arm": n, "trained_on": w})).collect::<Vec<_>>(),
        "summary": report::summarise(runs, &arms.iter().map(|x| x.0.clone()).collect::<Vec<_>>()),
        "runs": runs,
        "class_means_channel0": contrast::json(contrast_rows),
    });
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(r.out.join(name), bytes)
            .map_err(|e| format!("{}: {e}", r.out.join(name).display()))
    };
    write(
        "report.json",
        serde_json::to_string_pretty(&json)
            .expect("json")
            .as_bytes(),
    )?;
    let order: Vec<&str> = arms.iter().map(|x| x.0.as_str()).collect();
    let header = format!(
        "# Synthetic-to-real segmentation benchmark\n\n\
         Real scan: `{}` ({} slices of {:.1} mm; {} training / {} scored slices, interleaved blocks of {} with one slice between sets left out). \
         Network: 2D UNet, width {}, {} steps × batch {}, Adam lr {} with cosine decay, on a {}×{} canvas of {} mm; {} seed(s) per arm; {} subjects per cohort. \
         Intensities: {}. Scores in 3D on the scored slices at the canvas's in-plane spacing. {:.1} min in all.\n\n\
         `prediction.png`: a scored real slice — {}, true labels, then {} (seed 0). Colours: {}.\n",
        r.real_image.display(),
        real.image.grid.dims[2],
        real.image.grid.spacing_mm[2],
        n_train,
        n_test,
        r.block,
        budget.width,
        budget.steps,
        budget.batch,
        budget.lr,
        c.nx,
        c.ny,
        c.spacing_mm,
        a.seeds,
        a.subjects,
        match a.modality {
            Modality::Ct => "two HU windows (−1000…1000; W 400 / L 40)",
            Modality::Mr => "per volume, a z-score over the body clipped at ±3 SD and the body's 0.5–99.5th percentiles onto [−1, 1]",
        },
        elapsed_s / 60.0,
        match a.modality {
            Modality::Ct => "CT (soft-tissue window)",
            Modality::Mr => "MR (body percentile window)",
        },
        order.join(", "),
        report::legend()
    );
    let mut md = report::markdown(runs, arms, &header);
    md.push_str(
        "\nEach class's mean normalised intensity on the real scored slices and in each arm's training slices: the gap a network trained on that arm must transfer across.\n",
    );
    md.push_str(&contrast::markdown(
        contrast_rows,
        match a.modality {
            Modality::Ct => "mean of channel 0 (HU ÷ 1000, −1000…1000)",
            Modality::Mr => "mean of channel 0 (body z-score ÷ 3)",
        },
    ));
    write("report.md", md.as_bytes())
}
