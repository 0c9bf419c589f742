//! Prompts of a dataset's cases: from the run's `manifest.parquet` (synthcohort output) or a
//! `prompts.jsonl` (`{"case": …, "prompt": …}` per line).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::err;
use crate::io;
use crate::lab::LabError;

/// Longer than any real prompt (the text encoder reads only its first few dozen tokens), and
/// the same bound as one value in a pipeline file.
const MAX_PROMPT_BYTES: usize = crate::pipeline::yaml::Limits::PIPELINE.max_scalar_bytes;

pub(super) fn read_prompts(dir: &Path) -> Result<BTreeMap<String, String>, LabError> {
    let mut out = BTreeMap::new();
    let manifest = dir.join("manifest.parquet");
    let jsonl = dir.join("prompts.jsonl");
    if manifest.exists() {
        for r in io::manifest::read_manifest(&manifest).map_err(|e| err(e.to_string()))? {
            out.insert(format!("{}_{}", r.subject_id, r.arm), r.prompt.clone());
            out.entry(r.subject_id.clone()).or_insert(r.prompt);
        }
    } else if jsonl.exists() {
        let text = io::bounded::read_text(&jsonl, io::bounded::DATASET_TEXT_BYTES, "prompts.jsonl")
            .map_err(|e| err(e.to_string()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| err(format!("{}:{}: {e}", jsonl.display(), i + 1)))?;
            match (v["case"].as_str(), v["prompt"].as_str()) {
                (_, Some(p)) if p.len() > MAX_PROMPT_BYTES => {
                    return Err(err(format!(
                        "{}:{}: a prompt of {} bytes, more than the {MAX_PROMPT_BYTES} a prompt may have",
                        jsonl.display(),
                        i + 1,
                        p.len()
                    )))
                }
                (Some(c), Some(p)) => {
                    out.insert(c.to_string(), p.to_string());
                }
                _ => {
                    return Err(err(format!(
                        "{}:{}: needs string fields `case` and `prompt`",
                        jsonl.display(),
                        i + 1
                    )))
                }
            }
        }
    } else {
        return Err(err(format!(
            "{}: no manifest.parquet or prompts.jsonl to take prompts from",
            dir.display()
        )));
    }
    Ok(out)
}
