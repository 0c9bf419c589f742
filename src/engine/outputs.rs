use super::*;

/// Organ classes of the run (ontology ids the anatomy can produce), in id order.
pub(super) fn organ_ids(p: &Resolved, source_ids: Option<&[u16]>) -> Vec<u16> {
    match source_ids {
        Some(ids) => ids.to_vec(),
        None => {
            let mut ids = anatomy::template_labels(p.spec.anatomy.template);
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    }
}

/// Lesion conditions in pipeline order (one nnU-Net class each).
pub(super) fn lesion_conditions(p: &Resolved) -> Vec<String> {
    p.spec
        .cohort
        .conditions
        .iter()
        .filter(|c| c.lesion.is_some())
        .map(|c| c.name.clone())
        .collect()
}

/// nnU-Net needs consecutive class ids and semantic (not instance) classes: organs keep their
/// order, each lesion condition becomes one class.
pub(super) fn nnunet_classes(p: &Resolved, source_ids: Option<&[u16]>) -> Vec<(String, u16)> {
    let mut classes = vec![("background".to_string(), 0u16)];
    for id in organ_ids(p, source_ids) {
        let name =
            ontology::label_by_id(id).map_or_else(|| format!("label_{id}"), |l| l.name.to_string());
        classes.push((name, classes.len() as u16));
    }
    for c in lesion_conditions(p) {
        classes.push((c, classes.len() as u16));
    }
    classes
}

pub(super) fn nnunet_labels(
    p: &Resolved,
    source_ids: Option<&[u16]>,
    labels: &Volume<u16>,
    lesions: &[anatomy::LesionRecord],
) -> Volume<u16> {
    let organs = organ_ids(p, source_ids);
    let conds = lesion_conditions(p);
    let mut map: BTreeMap<u16, u16> = BTreeMap::new();
    for (i, id) in organs.iter().enumerate() {
        map.insert(*id, i as u16 + 1);
    }
    for l in lesions {
        if let Some(ci) = conds.iter().position(|c| *c == l.condition) {
            // A lesion's parts (fluid, necrotic core, ground glass) are the lesion's class.
            for id in l.label_ids() {
                map.insert(id, (organs.len() + 1 + ci) as u16);
            }
        }
    }
    labels.map(|v| map.get(&v).copied().unwrap_or(0))
}

#[allow(clippy::too_many_arguments)]
/// What the run-level files need besides the subject records.
pub(super) struct Finish<'a> {
    pub p: &'a Resolved,
    /// The label ids of the imported maps (they define the label list), if any.
    pub source_ids: Option<&'a [u16]>,
    pub generator: String,
    /// Run facts for provenance.json (selection, jobs, timings, …).
    pub provenance: serde_json::Value,
}

/// Every subject recorded in a run folder, in index order.
pub(super) fn read_records(dir: &Path) -> Result<Vec<SubjectRecord>, EngineError> {
    let mut records: Vec<SubjectRecord> = Vec::new();
    if let Ok(rd) = dir.join(STATE_DIR).join("rows").read_dir() {
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(EngineError::file("cannot read", &path))?;
            let rec: SubjectRecord =
                serde_json::from_slice(&bytes).map_err(|e| EngineError::BadRecord {
                    path: path.clone(),
                    line: e.line(),
                    reason: format!("corrupt run record: {e}"),
                })?;
            records.push(rec);
        }
    }
    records.sort_by_key(|r| r.index);
    Ok(records)
}

/// Writes the run-level files from the folder's subject records: manifest.parquet,
/// labels.json, dataset.json, preview.png, files.sha256 and provenance.json. Everything but
/// provenance is a pure function of the records, so runs, resumed runs and merged shards
/// give the same bytes.
pub(super) fn finish_run(f: &Finish, dir: &Path) -> Result<(), EngineError> {
    let p = f.p;
    let records = read_records(dir)?;
    let mut listed: Vec<(String, String)> = records
        .iter()
        .flat_map(|r| r.files.iter().cloned())
        .collect();
    let mut write = |name: &str, bytes: &[u8]| -> Result<(), EngineError> {
        io::atomic::write_atomic(&dir.join(name), bytes)?;
        listed.push((name.to_string(), io::hash::sha256_hex(bytes)));
        Ok(())
    };
    let rows: Vec<ManifestRow> = records
        .iter()
        .flat_map(|r| r.rows.iter().cloned())
        .collect();
    write("manifest.parquet", &io::manifest::encode_manifest(&rows)?)?;

    // labels.json: the organ classes plus one entry per lesion id used.
    let mut entries: Vec<io::labels_json::LabelEntry> = organ_ids(p, f.source_ids)
        .into_iter()
        .filter_map(ontology::label_by_id)
        .map(|l| io::labels_json::LabelEntry {
            id: l.id,
            name: l.name.to_string(),
            color: l.color,
            snomed: anatomy::snomed::codes_for_label(l.name).map(|c| snomed_entry(&c)),
        })
        .collect();
    // Ids are per subject: one id may be lesion 2 in one subject and lesion 1's fluid in
    // another, so an entry names every role its id has in this run.
    let mut roles: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    // The codes of each id's roles; an entry carries them when all its roles agree.
    let mut codes: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let mut code_of: BTreeMap<String, anatomy::snomed::SegmentCodes> = BTreeMap::new();
    let mut note = |id: u16, c: anatomy::snomed::SegmentCodes| {
        let key = format!("{:?}", c);
        code_of.insert(key.clone(), c);
        codes.entry(id).or_default().insert(key);
    };
    for r in &records {
        for id in &r.lesion_ids {
            roles.entry(*id).or_default();
        }
        let Some(row) = r.rows.first() else { continue };
        for (n, l) in row.lesions.iter().enumerate() {
            roles
                .entry(l.label_id)
                .or_default()
                .insert(format!("lesion_{}", n + 1));
            note(l.label_id, anatomy::snomed::codes_for_lesion(&l.kind));
            for part in l.parts.split(',').filter(|s| !s.is_empty()) {
                if let Some((name, id)) = part.split_once(':') {
                    if let Ok(id) = id.parse::<u16>() {
                        roles
                            .entry(id)
                            .or_default()
                            .insert(format!("lesion_{}_{name}", n + 1));
                        note(id, anatomy::snomed::codes_for_lesion_part(name));
                    }
                }
            }
        }
    }
    for (id, names) in roles {
        let k = id - ontology::LESION_ID_BASE + 1;
        let name = if names.is_empty() {
            format!("lesion_{k}")
        } else {
            names.into_iter().collect::<Vec<_>>().join("|")
        };
        let snomed = codes
            .get(&id)
            .filter(|set| set.len() == 1)
            .and_then(|set| set.iter().next())
            .and_then(|key| code_of.get(key))
            .map(snomed_entry);
        entries.push(io::labels_json::LabelEntry {
            id,
            name,
            color: lesion_colour(k),
            snomed,
        });
    }
    write("labels.json", &io::labels_json::labels_json(&entries))?;

    if p.spec.outputs.layout == Layout::Nnunet {
        // nnU-Net normalises channels named "CT" by intensity percentiles, others by z-score.
        let channel = match p.arms.first().map(|a| &a.protocol) {
            Some(Protocol::None {
                property: PropertyMap::Hu,
                ..
            })
            | Some(Protocol::Ct(_)) => "CT".to_string(),
            Some(Protocol::None { property, .. }) => format!("{property:?}").to_uppercase(),
            Some(Protocol::Mri(m)) => format!("MRI {:?}", m.sequence),
            None => "image".to_string(),
        };
        let classes = nnunet_classes(p, f.source_ids);
        let ds =
            io::nnunet::dataset_json(&p.spec.name, &[channel], &classes, rows.len(), extension(p));
        let mut bytes = serde_json::to_vec_pretty(&ds)?;
        bytes.push(b'\n');
        write("dataset.json", &bytes)?;
    }

    if p.spec.outputs.preview {
        let png = preview_png(dir, &rows, p.spec.outputs.preview_subjects as usize)?;
        write("preview.png", &png)?;
    }

    // A checksum list in `sha256sum -c` format: `synthcohort verify` and plain coreutils can
    // both check the folder. Provenance (timings) is left out so the list is reproducible.
    listed.sort();
    listed.dedup();
    let text: String = listed
        .iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect();
    io::atomic::write_atomic(&dir.join(CHECKSUMS), text.as_bytes())?;

    let mut prov = serde_json::json!({
        "synthcohort_version": crate::VERSION,
        "pipeline": p.spec,
        "pipeline_sha256": p.sha256,
        "arms": p.arms,
        "generator": f.generator,
        "subjects_in_folder": records.len(),
        "finished_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "dependencies": {"nifti": "0.18", "parquet": "60.1", "rayon": "1.12"},
    });
    if let (Some(m), serde_json::Value::Object(extra)) = (prov.as_object_mut(), &f.provenance) {
        m.extend(extra.clone());
    }
    let mut bytes = serde_json::to_vec_pretty(&prov)?;
    bytes.push(b'\n');
    io::atomic::write_atomic(&dir.join("provenance.json"), &bytes)?;
    Ok(())
}

/// Distinct, saturated colours for lesion instances (golden-angle hue steps).
/// labels.json's form of a label's SNOMED CT codes.
fn snomed_entry(c: &anatomy::snomed::SegmentCodes) -> io::labels_json::SnomedEntry {
    let t = |c: &anatomy::snomed::Code| {
        [
            c.value.to_string(),
            c.scheme.to_string(),
            c.meaning.to_string(),
        ]
    };
    io::labels_json::SnomedEntry {
        category: t(&c.category),
        kind: t(&c.kind),
        modifier: c.modifier.as_ref().map(t),
    }
}

pub(super) fn lesion_colour(k: u16) -> [u8; 3] {
    let h = (k as f64 * 137.508) % 360.0;
    let x = 1.0 - ((h / 60.0) % 2.0 - 1.0).abs();
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

pub(super) fn colour_of(id: u16) -> [u8; 3] {
    if id >= ontology::LESION_ID_BASE {
        return [255, 230, 0];
    }
    ontology::label_by_id(id).map_or([128, 128, 128], |l| l.color)
}

/// The preview mosaic of the first `n` subjects (first arm of each), read from the files.
pub(super) fn preview_png(
    dir: &Path,
    rows: &[ManifestRow],
    n: usize,
) -> Result<Vec<u8>, EngineError> {
    let mut seen = BTreeSet::new();
    let mut tiles = Vec::new();
    for r in rows {
        if seen.len() >= n || !seen.insert(r.subject_id.clone()) {
            continue;
        }
        let img = io::nifti::read_image(&dir.join(&r.image_path))?;
        let lab = io::nifti::read_labels(&dir.join(&r.label_path))?;
        // The slice through the subject's largest lesion, else the middle one.
        let k = r
            .lesions
            .iter()
            .max_by(|a, b| a.volume_ml.total_cmp(&b.volume_ml))
            .map(|l| img.grid.to_voxel(l.center_mm)[2].round())
            .filter(|k| (0.0..img.grid.dims[2] as f64).contains(k))
            .map_or(img.grid.dims[2] / 2, |k| k as usize);
        let t = tile(&img, &lab, k, &format!("{} {}", r.subject_id, r.arm));
        // The image alone, then with its labels.
        tiles.push(io::preview::PreviewTile {
            labels: Vec::new(),
            ..t.clone()
        });
        tiles.push(t);
    }
    Ok(io::preview::render_mosaic(&tiles, &colour_of)?)
}

/// Axial tile `k`; the window is CT lung (−1000…400 HU) where a quarter of the body is
/// aerated, CT soft tissue (−160…240 HU) for other HU-like data, else the 1–99th percentile.
pub(super) fn tile(
    img: &Volume<f32>,
    lab: &Volume<u16>,
    k: usize,
    title: &str,
) -> io::preview::PreviewTile {
    let image = img.axial_slice(k);
    let labels = if lab.grid.dims == img.grid.dims {
        lab.axial_slice(k)
    } else {
        vec![0; image.len()]
    };
    let mut sorted: Vec<f32> = image.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let q = |f: f64| {
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * f) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let body: Vec<f32> = image.iter().copied().filter(|v| *v > -990.0).collect();
    let aerated = body.iter().filter(|v| **v < -500.0).count() as f64 / body.len().max(1) as f64;
    let window = if q(0.01) <= -900.0 && aerated > 0.25 {
        (-1000.0, 400.0)
    } else if q(0.01) <= -900.0 {
        (-160.0, 240.0)
    } else {
        (q(0.01), q(0.99).max(q(0.01) + 1e-3))
    };
    io::preview::PreviewTile {
        title: title.to_string(),
        width: img.grid.dims[0],
        height: img.grid.dims[1],
        pixel_aspect: img.grid.spacing_mm[1] / img.grid.spacing_mm[0],
        image,
        labels,
        window,
    }
}

/// Rebuilds preview.png of an existing run folder from its manifest and files.
pub fn preview(dir: &Path, subjects: usize) -> Result<PathBuf, EngineError> {
    let rows = io::manifest::read_manifest(&dir.join("manifest.parquet"))?;
    let png = preview_png(dir, &rows, subjects)?;
    let out = dir.join("preview.png");
    io::atomic::write_atomic(&out, &png)?;
    Ok(out)
}
