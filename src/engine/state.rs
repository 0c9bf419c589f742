use super::*;

pub(super) fn prepare_dir(p: &Resolved, dir: &Path, opts: &RunOptions) -> Result<(), EngineError> {
    let state = dir.join(STATE_DIR);
    let marker = state.join("pipeline.sha256");
    let nonempty = dir
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if dir
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(EngineError::SymbolicLink(dir.to_path_buf()));
    }
    check_confined(dir)?;
    if nonempty {
        let ours = marker.is_file();
        // Shards share a folder: joining one made from the same pipeline is expected.
        let joins = opts.resume || opts.shard.is_some();
        if joins && ours {
            let found = std::fs::read_to_string(&marker)
                .unwrap_or_default()
                .trim()
                .to_string();
            if found != p.sha256 {
                return Err(EngineError::ResumeMismatch {
                    dir: dir.to_path_buf(),
                    found,
                    expected: p.sha256.clone(),
                });
            }
        } else if opts.overwrite && ours {
            std::fs::remove_dir_all(dir).map_err(EngineError::file("cannot clear", dir))?;
        } else if !joins || !ours {
            return Err(EngineError::OutputExists(dir.to_path_buf()));
        }
    }
    io::atomic::write_atomic(&marker, format!("{}\n", p.sha256).as_bytes())?;
    Ok(())
}

pub(super) fn record_path(state: &Path, id: &str) -> PathBuf {
    state.join("rows").join(format!("{id}.json"))
}

pub(super) fn read_record(state: &Path, id: &str) -> Option<SubjectRecord> {
    let bytes = std::fs::read(record_path(state, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn record_verified(dir: &Path, rec: &SubjectRecord) -> bool {
    !rec.files.is_empty()
        && rec.files.iter().all(|(rel, sha)| {
            io::hash::sha256_file(&dir.join(rel))
                .map(|h| &h == sha)
                .unwrap_or(false)
        })
}

/// What a run folder remembers about how it was made (for resume, shards and merge).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct RunState {
    pub version: String,
    pub pipeline_sha256: String,
    /// Folder the pipeline's relative input paths resolve against.
    pub base_dir: PathBuf,
}

/// Records the pipeline (bytes and hash) and, per selection, which subjects this invocation
/// is responsible for, so `merge` can tell complete shard sets from partial ones.
pub(super) fn write_state(
    p: &Resolved,
    dir: &Path,
    opts: &RunOptions,
    sel: &Range<u64>,
) -> Result<(), EngineError> {
    let state = dir.join(STATE_DIR);
    let base_dir = std::path::absolute(&p.base_dir).unwrap_or_else(|_| p.base_dir.clone());
    let rs = RunState {
        version: crate::VERSION.to_string(),
        pipeline_sha256: p.sha256.clone(),
        base_dir,
    };
    let json = serde_json::to_vec_pretty(&rs)?;
    io::atomic::write_atomic(&state.join("run.json"), &json)?;
    io::atomic::write_atomic(&state.join("pipeline.yaml"), &p.source)?;
    let shard = opts.shard.unwrap_or(Shard { k: 0, n: 1 });
    let sel_json = serde_json::json!({"shard": shard, "start": sel.start, "end": sel.end});
    io::atomic::write_atomic(
        &state
            .join("selections")
            .join(format!("{}-{}-of-{}.json", sel.start, shard.k, shard.n)),
        sel_json.to_string().as_bytes(),
    )?;
    Ok(())
}

/// Output sub-folders; none may be a symbolic link, or a write could land outside the run
/// folder.
pub(super) const SUBDIRS: [&str; 6] = [
    "images",
    "labels",
    "imagesTr",
    "labelsTr",
    "manifests",
    STATE_DIR,
];

pub(super) fn check_confined(dir: &Path) -> Result<(), EngineError> {
    for sub in SUBDIRS {
        let path = dir.join(sub);
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(EngineError::SymbolicLink(path.to_path_buf()));
        }
    }
    Ok(())
}

pub(super) fn clean_temporaries(dir: &Path) {
    for sub in [
        "images",
        "labels",
        "imagesTr",
        "labelsTr",
        "",
        STATE_DIR,
        ".synthcohort/rows",
    ] {
        let Ok(rd) = dir.join(sub).read_dir() else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.contains(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
