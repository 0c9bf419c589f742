use super::*;

/// The lesion-free part of the label map keeps organ ids; lesions are LESION_ID_BASE + k.
pub(super) fn lesion_rows(rec: &[anatomy::LesionRecord]) -> Vec<LesionRow> {
    rec.iter()
        .map(|l| LesionRow {
            label_id: l.label_id,
            condition: l.condition.clone(),
            kind: l.kind.clone(),
            organ: l.organ.clone(),
            shape: format!("{:?}", l.shape).to_lowercase(),
            center_mm: l.center_mm,
            diameter_mm: l.diameter_mm,
            volume_ml: l.volume_ml,
        })
        .collect()
}

pub(super) fn kind_name(k: crate::pipeline::spec::LesionKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Builds one subject's labels and tissue object (no files).
pub struct SubjectData {
    pub subject: Subject,
    pub anatomy: anatomy::Anatomy,
    pub object: TissueObject,
}

pub(super) fn make_subject(s: &Shared, idx: u64) -> Result<SubjectData, String> {
    let p = &s.p.spec;
    let subject = s.time("cohort", || cohort::sample(p, &s.plan, idx));
    let (height_cm, weight_kg) = if p.anatomy.body_scaling {
        (subject.height_cm, subject.weight_kg)
    } else {
        // The template's reference adult.
        (170.0, 72.0)
    };
    let params = AnatomyParams {
        template: crate::pipeline::validate::template_of(p.anatomy.template),
        grid: s.grid.clone(),
        body: BodySize {
            height_cm,
            weight_kg,
            sex: subject.sex,
        },
        deformation_mm: p.anatomy.deformation_mm,
        lesions: subject
            .lesions
            .iter()
            .map(|l| LesionRequest {
                condition: l.condition.clone(),
                kind: kind_name(l.kind),
                organ: l.organ.clone(),
                diameter_mm: l.diameter_mm,
                shape: l.shape,
            })
            .collect(),
    };
    let mut arng = rng::stream(subject.seed, Stage::Anatomy, 0);
    let mut lrng = rng::stream(subject.seed, Stage::Lesions, 0);
    let anat = s
        .time("anatomy", || {
            anatomy::build(&params, s.base.as_ref(), &mut arng, &mut lrng)
        })
        .map_err(|e| e.to_string())?;
    let lesions: Vec<LesionTissue> = anat
        .lesions
        .iter()
        .zip(&subject.lesions)
        .map(|(rec, draw)| LesionTissue {
            label_id: rec.label_id,
            hu: draw.hu,
            pd: draw.pd,
            t1_ms: draw.t1_ms,
            t2_ms: draw.t2_ms,
        })
        .collect();
    let req = generate::Request {
        labels: &anat.labels,
        lesions: &lesions,
        prompt: &subject.prompt,
        needs: &s.needs,
        seed: subject.seed,
    };
    let object = s
        .time("generate", || s.generator.generate(&req))
        .map_err(|e| e.to_string())?;
    Ok(SubjectData {
        subject,
        anatomy: anat,
        object,
    })
}

/// Builds one subject in memory, for library users, benchmarks and tests.
pub fn build_subject(p: &Resolved, idx: u64) -> Result<SubjectData, EngineError> {
    let a = &p.spec.anatomy;
    let grid = Grid::centered(a.size.map(|d| d as usize), a.spacing_mm);
    let base = load_source(p, &grid)?.map(|(v, _)| v);
    let s = Shared {
        p,
        plan: CohortPlan::new(&p.spec),
        grid,
        base,
        generator: generator(p),
        needs: needs(p),
        dir: PathBuf::new(),
        timings: Mutex::new(BTreeMap::new()),
    };
    make_subject(&s, idx).map_err(EngineError::Other)
}

/// The image an arm produces from the object (physical units).
pub(super) fn acquire(arm: &Protocol, obj: &TissueObject) -> Result<Volume<f32>, String> {
    match arm {
        Protocol::None { property, field_t } => {
            let pick = |f: fn(&generate::MriMaps) -> &Volume<f32>| {
                obj.mri_at(*field_t)
                    .map(|m| f(m).clone())
                    .ok_or_else(|| "object has no MRI maps".to_string())
            };
            match property {
                PropertyMap::Hu => obj
                    .ct
                    .as_ref()
                    .map(|c| c.hu.clone())
                    .ok_or_else(|| "object has no CT maps".into()),
                PropertyMap::Pd => pick(|m| &m.pd),
                PropertyMap::T1 => pick(|m| &m.t1_ms),
                PropertyMap::T2 => pick(|m| &m.t2_ms),
                PropertyMap::T2star => pick(|m| &m.t2star_ms),
            }
        }
    }
}

pub(super) fn dtype(p: &Resolved) -> ImageDtype {
    match p.spec.outputs.dtype {
        OutputDtype::Float32 => ImageDtype::Float32,
        OutputDtype::Int16 => ImageDtype::Int16,
    }
}

pub(super) fn run_subject(s: &Shared, idx: u64) -> Result<(), String> {
    let data = make_subject(s, idx)?;
    let p = s.p;
    let ext = extension(p);
    let gz = p.spec.outputs.compression == Compression::Gzip;
    let subj = &data.subject;
    let labels = &data.anatomy.labels;

    let label_rel = format!("labels/{}{ext}", subj.id);
    let label_bytes = s
        .time("write", || io::nifti::encode_labels(labels, gz, &descrip()))
        .map_err(|e| e.to_string())?;
    let label_sha = io::hash::sha256_hex(&label_bytes);
    let nnunet = p.spec.outputs.layout == Layout::Nnunet;

    let nnunet_lab = if nnunet {
        let lab = nnunet_labels(p, s.base.as_ref(), labels, &data.anatomy.lesions);
        Some(io::nifti::encode_labels(&lab, gz, &descrip()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut files = vec![(label_rel.clone(), label_sha.clone())];
    for arm in &p.arms {
        let image = s.time("acquire", || acquire(&arm.protocol, &data.object))?;
        let bytes = s
            .time("write", || {
                io::nifti::encode_image(&image, dtype(p), gz, &descrip())
            })
            .map_err(|e| e.to_string())?;
        let image_rel = format!("images/{}_{}{ext}", subj.id, arm.name);
        s.time("write", || {
            io::atomic::write_atomic(&s.dir.join(&image_rel), &bytes)
        })
        .map_err(|e| e.to_string())?;
        files.push((image_rel.clone(), io::hash::sha256_hex(&bytes)));
        if let Some(lab_bytes) = &nnunet_lab {
            let case = format!("{}_{}", subj.id, arm.name);
            files.push((
                format!("imagesTr/{case}_0000{ext}"),
                io::hash::sha256_hex(&bytes),
            ));
            files.push((
                format!("labelsTr/{case}{ext}"),
                io::hash::sha256_hex(lab_bytes),
            ));
            s.time("write", || {
                io::atomic::write_atomic(
                    &s.dir.join(format!("imagesTr/{case}_0000{ext}")),
                    &bytes,
                )?;
                io::atomic::write_atomic(&s.dir.join(format!("labelsTr/{case}{ext}")), lab_bytes)
            })
            .map_err(|e| e.to_string())?;
        }
        rows.push(ManifestRow {
            subject_id: subj.id.clone(),
            subject_index: subj.index,
            arm: arm.name.clone(),
            modality: arm.protocol.modality().to_string(),
            seed: subj.seed,
            age: subj.age,
            sex: if subj.sex == anatomy::Sex::Female {
                "female".into()
            } else {
                "male".into()
            },
            height_cm: subj.height_cm,
            weight_kg: subj.weight_kg,
            bmi: subj.bmi,
            conditions: subj.conditions.clone(),
            lesions: lesion_rows(&data.anatomy.lesions),
            prompt: subj.prompt.clone(),
            image_path: image_rel,
            label_path: label_rel.clone(),
            image_sha256: io::hash::sha256_hex(&bytes),
            label_sha256: label_sha.clone(),
            image_dims: image.grid.dims.map(|d| d as u32),
            spacing_mm: image.grid.spacing_mm,
            generator: s.generator.name(),
            pipeline_sha256: p.sha256.clone(),
            synthcohort_version: crate::VERSION.to_string(),
        });
    }
    s.time("write", || {
        io::atomic::write_atomic(&s.dir.join(&label_rel), &label_bytes)
    })
    .map_err(|e| e.to_string())?;
    let rec = SubjectRecord {
        index: idx,
        rows,
        lesion_ids: data.anatomy.lesions.iter().map(|l| l.label_id).collect(),
        files,
    };
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| e.to_string())?;
    io::atomic::write_atomic(&record_path(&s.dir.join(STATE_DIR), &subj.id), &json)
        .map_err(|e| e.to_string())?;
    Ok(())
}
