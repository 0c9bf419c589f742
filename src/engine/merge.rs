//! `synthcohort merge`: joins shard run folders (or the shards sharing one folder) into one
//! run, after checking that they come from one pipeline and version, that no subject is
//! missing or duplicated, and that every file still has its recorded hash. The merged folder
//! is byte-identical to a single-machine run (provenance aside).

use super::*;

/// What a merge did.
#[derive(Clone, Debug)]
pub struct MergeSummary {
    pub subjects: usize,
    pub shards: usize,
    pub copied_files: usize,
}

fn run_state(dir: &Path) -> Result<RunState, EngineError> {
    let path = dir.join(STATE_DIR).join("run.json");
    let bytes = std::fs::read(&path).map_err(|_| {
        EngineError::Merge(format!(
            "{} is not a synthcohort run folder (no {})",
            dir.display(),
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::Merge(format!("{}: {e}", path.display())))
}

#[derive(Deserialize)]
struct Selection {
    shard: Shard,
    start: u64,
    end: u64,
}

fn selections(dir: &Path) -> Vec<Selection> {
    let Ok(rd) = dir.join(STATE_DIR).join("selections").read_dir() else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Merges `shard_dirs` into `out` (in place when `shard_dirs` is empty or is `out` itself).
pub fn merge(out: &Path, shard_dirs: &[PathBuf]) -> Result<MergeSummary, EngineError> {
    let dirs: Vec<PathBuf> = if shard_dirs.is_empty() {
        vec![out.to_path_buf()]
    } else {
        shard_dirs.to_vec()
    };

    // 1. One pipeline, one version.
    let states: Vec<RunState> = dirs
        .iter()
        .map(|d| run_state(d))
        .collect::<Result<_, _>>()?;
    let first = &states[0];
    for (d, st) in dirs.iter().zip(&states).skip(1) {
        if st.pipeline_sha256 != first.pipeline_sha256 {
            return Err(EngineError::Merge(format!(
                "shards were made from different pipelines: {} (pipeline sha256 {}) and {} (pipeline sha256 {}); merge only shards of one pipeline file",
                dirs[0].display(),
                &first.pipeline_sha256[..12],
                d.display(),
                &st.pipeline_sha256[..12]
            )));
        }
        if st.version != first.version {
            return Err(EngineError::Merge(format!(
                "shards were made by different synthcohort versions: {} ({}) and {} ({})",
                dirs[0].display(),
                first.version,
                d.display(),
                st.version
            )));
        }
    }
    let yaml_path = dirs[0].join(STATE_DIR).join("pipeline.yaml");
    let bytes = std::fs::read(&yaml_path)
        .map_err(|e| EngineError::Merge(format!("{}: {e}", yaml_path.display())))?;
    let p = crate::pipeline::parse(&bytes, &yaml_path.display().to_string(), &first.base_dir)
        .map_err(|e| {
            EngineError::Merge(format!("the recorded pipeline no longer validates:\n{e}"))
        })?;

    // 2. Which subjects the shard sets promise: every k of each K/N set must be present.
    let size = p.spec.cohort.size as u64;
    let mut sets: BTreeMap<(u64, u64, u64), BTreeSet<u64>> = BTreeMap::new();
    for d in &dirs {
        for s in selections(d) {
            sets.entry((s.start, s.end.min(size), s.shard.n))
                .or_default()
                .insert(s.shard.k);
        }
    }
    let mut expected = BTreeSet::new();
    for ((start, end, n), ks) in &sets {
        let missing: Vec<String> = (0..*n)
            .filter(|k| !ks.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !missing.is_empty() {
            return Err(EngineError::Merge(format!(
                "shard(s) {} of subjects {start}..{end} were not given (or never started)",
                missing.join(", ")
            )));
        }
        expected.extend(*start..*end);
    }

    // 3. Records: verified, no duplicates, none missing.
    let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
    let mut records: Vec<(usize, SubjectRecord)> = Vec::new();
    let mut corrupt = Vec::new();
    for (di, d) in dirs.iter().enumerate() {
        for rec in read_records(d)? {
            if let Some(prev) = owner.insert(rec.index, di) {
                return Err(EngineError::Merge(format!(
                    "subject {} appears in both {} and {}",
                    cohort::subject_id(rec.index, p.spec.cohort.size),
                    dirs[prev].display(),
                    d.display()
                )));
            }
            if !record_verified(d, &rec) {
                corrupt.push(format!(
                    "{} in {}",
                    cohort::subject_id(rec.index, p.spec.cohort.size),
                    d.display()
                ));
            }
            records.push((di, rec));
        }
    }
    if !corrupt.is_empty() {
        return Err(EngineError::Merge(format!(
            "files of {} subject(s) are missing or do not match their recorded sha256: {}; rerun those shards with --resume",
            corrupt.len(),
            corrupt.join(", ")
        )));
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|i| !owner.contains_key(i))
        .map(|&i| cohort::subject_id(i, p.spec.cohort.size))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<&String> = missing.iter().take(10).collect();
        return Err(EngineError::Merge(format!(
            "{} subject(s) missing (unfinished shards?): {}{}; rerun their shards with --resume",
            missing.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() > 10 { ", …" } else { "" }
        )));
    }

    // 4. Bring files and records into the output folder.
    prepare_merge_dir(out, &p)?;
    let mut copied = 0;
    for (di, rec) in &records {
        let src = &dirs[*di];
        if same_dir(src, out) {
            continue;
        }
        for (rel, _) in &rec.files {
            let from = src.join(rel);
            let bytes = std::fs::read(&from).map_err(EngineError::file("cannot read", &from))?;
            io::atomic::write_atomic(&out.join(rel), &bytes)?;
            copied += 1;
        }
        let id = cohort::subject_id(rec.index, p.spec.cohort.size);
        let json = serde_json::to_vec_pretty(rec)?;
        io::atomic::write_atomic(&record_path(&out.join(STATE_DIR), &id), &json)?;
    }
    for d in &dirs {
        if same_dir(d, out) {
            continue;
        }
        if let Ok(rd) = d.join(STATE_DIR).join("selections").read_dir() {
            for e in rd.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    io::atomic::write_atomic(
                        &out.join(STATE_DIR).join("selections").join(e.file_name()),
                        &b,
                    )?;
                }
            }
        }
    }

    // 5. Run-level files, exactly as a single run writes them.
    // Only the imported maps' label set matters here: no atlas needs building.
    let source_ids = SourceMaps::label_ids_of(&load_sources(&p)?);
    let f = Finish {
        p: &p,
        source_ids: source_ids.as_deref(),
        generator: generator(&p)?.name(),
        provenance: serde_json::json!({"merged_from": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>()}),
    };
    finish_run(&f, out)?;
    if p.spec.trial.is_some() {
        trial::analyze(&p, out)?;
    }
    Ok(MergeSummary {
        subjects: records.len(),
        shards: sets.values().map(|k| k.len()).sum(),
        copied_files: copied,
    })
}

/// The merge target holds either nothing, or a run of the same pipeline.
fn prepare_merge_dir(out: &Path, p: &Resolved) -> Result<(), EngineError> {
    check_confined(out)?;
    let state = out.join(STATE_DIR);
    if let Ok(st) = run_state(out) {
        if st.pipeline_sha256 != p.sha256 {
            return Err(EngineError::Merge(format!(
                "{} already holds a run of a different pipeline; merge into an empty folder",
                out.display()
            )));
        }
    } else if out
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(EngineError::OutputExists(out.to_path_buf()));
    }
    let rs = RunState {
        version: crate::VERSION.to_string(),
        pipeline_sha256: p.sha256.clone(),
        base_dir: p.base_dir.clone(),
    };
    io::atomic::write_atomic(&state.join("run.json"), &serde_json::to_vec_pretty(&rs)?)?;
    io::atomic::write_atomic(&state.join("pipeline.yaml"), &p.source)?;
    io::atomic::write_atomic(
        &state.join("pipeline.sha256"),
        format!("{}\n", p.sha256).as_bytes(),
    )?;
    Ok(())
}
