use super::*;

/// The lesion-free part of the label map keeps organ ids; lesions and their parts take ids
/// from LESION_ID_BASE up, in order.
pub(super) fn lesion_rows(rec: &[anatomy::LesionRecord]) -> Vec<LesionRow> {
    rec.iter()
        .map(|l| LesionRow {
            label_id: l.label_id,
            condition: l.condition.clone(),
            kind: l.kind.clone(),
            organ: l.organ.clone(),
            shape: l.shape.name().to_string(),
            placement: format!("{:?}", l.placement).to_lowercase(),
            center_mm: l.center_mm,
            diameter_mm: l.diameter_mm,
            volume_ml: l.volume_ml,
            fraction_in_organ: l.fraction_in_organ,
            growth: format!("{:?}", l.growth).to_lowercase(),
            parts: l
                .parts
                .iter()
                .map(|p| format!("{}:{}", p.part.name(), p.label_id))
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect()
}

fn diffuse_kind(k: crate::pipeline::spec::DiffuseKind) -> generate::diffuse::DiffuseKind {
    use crate::pipeline::spec::DiffuseKind as S;
    use generate::diffuse::DiffuseKind as G;
    match k {
        S::Steatosis => G::Steatosis,
        S::Emphysema => G::Emphysema,
        S::Osteopenia => G::Osteopenia,
        S::WmHyperintensity => G::WmHyperintensity,
    }
}

/// Builds one subject's labels and tissue object (no files).
pub struct SubjectData {
    pub subject: Subject,
    pub anatomy: anatomy::Anatomy,
    pub object: TissueObject,
}

/// Why one subject could not be made; the run reports every failed subject with its id.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error(transparent)]
    Anatomy(#[from] anatomy::AnatomyError),
    #[error(transparent)]
    Generate(#[from] generate::GenerateError),
    #[error("CT: {0}")]
    Ct(#[from] crate::acquire::ct::CtError),
    #[error("MRI: {0}")]
    Mri(#[from] crate::acquire::mri::MriError),
    #[error("object has no {0} maps")]
    MissingMaps(&'static str),
    #[error(transparent)]
    Io(#[from] io::IoError),
    #[error("encoding the subject record: {0}")]
    Json(#[from] serde_json::Error),
}

pub(super) fn make_subject(s: &Shared, idx: u64) -> Result<SubjectData, SubjectError> {
    make_subject_with(s, idx, true)
}

/// Builds a subject; with `lesions = false`, its lesion-free twin (same seed, so the same
/// anatomy, deformation and texture: only the lesions differ).
pub(super) fn make_subject_with(
    s: &Shared,
    idx: u64,
    lesions: bool,
) -> Result<SubjectData, SubjectError> {
    let p = &s.p.spec;
    let mut subject = s.time("cohort", || cohort::sample(p, &s.plan, idx));
    if !lesions {
        subject.lesions.clear();
    }
    let params = AnatomyParams {
        template: p.anatomy.template,
        grid: s.grid.clone(),
        body: subject.body_size(p.anatomy.body_scaling),
        deformation_mm: p.anatomy.deformation_mm,
        lesions: subject
            .lesions
            .iter()
            .map(|l| LesionRequest {
                condition: l.condition.clone(),
                kind: l.kind.name().to_string(),
                organ: l.organ.clone(),
                diameter_mm: l.diameter_mm,
                shape: l.shape,
                placement: l.placement,
                growth: l.growth,
            })
            .collect(),
    };
    let mut arng = rng::stream(subject.seed, Stage::Anatomy, 0);
    let mut lrng = rng::stream(subject.seed, Stage::Lesions, 0);
    let anat = s
        .time("anatomy", || {
            match s.sources.atlases.get(s.sources.pick(subject.seed)) {
                Some(a) => anatomy::build_on_atlas(&params, a, &mut arng, &mut lrng),
                None => anatomy::build(&params, s.sources.base.as_ref(), &mut arng, &mut lrng),
            }
        })
        .map_err(SubjectError::from)?;
    let lesions: Vec<LesionTissue> = anat
        .lesions
        .iter()
        .zip(&subject.lesions)
        .map(|(rec, draw)| LesionTissue {
            label_id: rec.label_id,
            host: crate::tissue::tissue_for_label(&rec.organ),
            hu: draw.hu,
            // Validated against the table when the pipeline loaded.
            material: crate::tissue::attenuation::material_names()
                .iter()
                .copied()
                .find(|m| *m == draw.material)
                .unwrap_or("water"),
            perfusion: draw.enhancement.perfusion(),
            pd: draw.pd,
            t1_ms: draw.t1_ms,
            t2_ms: draw.t2_ms,
            adc_um2_ms: draw.adc_um2_ms,
        })
        .collect();
    // Second parts (cyst fluid, necrotic core, ground glass) take their lesion's tissue as
    // their starting point.
    let parts: Vec<LesionTissue> = anat
        .lesions
        .iter()
        .zip(&lesions)
        .flat_map(|(rec, own)| rec.parts.iter().map(|p| own.part(p.part, p.label_id)))
        .collect();
    let lesions: Vec<LesionTissue> = lesions.into_iter().chain(parts).collect();
    let diffuse: Vec<generate::diffuse::DiffuseEffect> = subject
        .diffuse
        .iter()
        .map(|d| generate::diffuse::DiffuseEffect {
            kind: diffuse_kind(d.kind),
            severity: d.severity,
        })
        .collect();
    let req = generate::Request {
        labels: &anat.labels,
        lesions: &lesions,
        diffuse: &diffuse,
        prompt: &subject.prompt,
        needs: &s.needs,
        seed: subject.seed,
    };
    let object = s
        .time("generate", || s.generator.generate(&req))
        .map_err(SubjectError::from)?;
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
    let sources = SourceMaps::new(p, &grid, load_sources(p)?);
    let s = Shared {
        p,
        plan: CohortPlan::new(&p.spec),
        grid,
        sources,
        generator: generator(p)?,
        needs: needs(p),
        dir: PathBuf::new(),
        timings: Mutex::new(BTreeMap::new()),
        warnings: Mutex::new(Vec::new()),
    };
    Ok(make_subject(&s, idx)?)
}

/// The image an arm produces from the object (physical units).
/// Noise streams of twins start here so they never coincide with an arm's own stream.
const TWIN_ARM_OFFSET: usize = 1 << 20;

/// One arm's image with what the manifest records about it.
pub(super) struct Acquired {
    pub image: Volume<f32>,
    /// Complex multi-coil k-space (MRI arms with `export_kspace`).
    pub kspace: Option<crate::acquire::mri::KSpace>,
    /// SENSE g-factor map (MRI arms with `g_factor_map`).
    pub g_factor: Option<Volume<f32>>,
    /// ADC map, µm²/ms (DWI arms with `adc_map`).
    pub adc: Option<Volume<f32>>,
    pub ctdi_vol_mgy: f64,
    /// CT: water-equivalent diameter (mm) and SSDE (mGy); 0 otherwise.
    pub water_equivalent_diameter_mm: f64,
    pub ssde_mgy: f64,
    /// The resolved protocol plus realised artifacts and calibration, as JSON.
    pub protocol: serde_json::Value,
}

/// Images the object under one arm. `arm_index` separates the noise streams of arms.
pub(super) fn acquire(
    arm: &Protocol,
    obj: &TissueObject,
    seed: u64,
    arm_index: usize,
) -> Result<Acquired, SubjectError> {
    let noise_seed = rng::subject_seed(seed ^ 0xA5A5_5A5A_A5A5_5A5A, arm_index as u64);
    let protocol = serde_json::to_value(arm).unwrap_or_default();
    match arm {
        Protocol::None { property, field_t } => {
            let pick = |f: fn(&generate::MriMaps) -> &Volume<f32>| {
                obj.mri_at(*field_t)
                    .map(|m| f(m).clone())
                    .ok_or(SubjectError::MissingMaps("MRI"))
            };
            let image = match property {
                PropertyMap::Hu => obj
                    .ct
                    .as_ref()
                    .map(|c| c.hu.clone())
                    .ok_or(SubjectError::MissingMaps("CT")),
                PropertyMap::Pd => pick(|m| &m.pd),
                PropertyMap::T1 => pick(|m| &m.t1_ms),
                PropertyMap::T2 => pick(|m| &m.t2_ms),
                PropertyMap::T2star => pick(|m| &m.t2star_ms),
            }?;
            Ok(Acquired {
                image,
                kspace: None,
                g_factor: None,
                adc: None,
                ctdi_vol_mgy: 0.0,
                water_equivalent_diameter_mm: 0.0,
                ssde_mgy: 0.0,
                protocol,
            })
        }
        Protocol::Ct(ct) => {
            let maps = obj.ct.as_ref().ok_or(SubjectError::MissingMaps("CT"))?;
            let r = crate::acquire::ct::acquire(maps, ct, noise_seed)?;
            let mut protocol = protocol;
            protocol["scan_field_radius_mm"] = serde_json::json!(ct.scan_field_radius_mm());
            if let Some(t) = r.truncation_mm {
                protocol["truncation_mm"] = serde_json::json!(t);
            }
            protocol["effective_energy_kev"] = serde_json::json!(r.effective_energy_kev);
            // The tube load behind each recon slice (tube-current modulation), mAs.
            protocol["tube_current_mas_per_slice"] = serde_json::json!(r
                .mas_per_slice
                .iter()
                .map(|m| (m * 100.0).round() / 100.0)
                .collect::<Vec<_>>());
            Ok(Acquired {
                image: r.image,
                kspace: None,
                g_factor: None,
                adc: None,
                ctdi_vol_mgy: r.ctdi_vol_mgy,
                water_equivalent_diameter_mm: r.water_equivalent_diameter_mm,
                ssde_mgy: r.ssde_mgy,
                protocol,
            })
        }
        Protocol::Mri(m) => {
            let maps = obj
                .mri_at(m.field_t)
                .ok_or(SubjectError::MissingMaps("MRI"))?;
            let r = crate::acquire::mri::acquire(maps, m, noise_seed)?;
            let mut protocol = protocol;
            protocol["applied"] = r.applied.clone();
            Ok(Acquired {
                image: r.image,
                kspace: r.kspace,
                g_factor: r.g_factor,
                adc: r.adc,
                ctdi_vol_mgy: 0.0,
                water_equivalent_diameter_mm: 0.0,
                ssde_mgy: 0.0,
                protocol,
            })
        }
    }
}

/// Drops the object's maps that no later arm images, so an arm's image and working set take
/// the place of maps already used (a 512 × 512 × 224 object's CT maps are 0.6 GB).
fn release_maps(object: &mut TissueObject, later: &Needs) {
    if !later.ct {
        object.ct = None;
    }
    object
        .mri
        .retain(|m| later.mri_fields_t.contains(&m.field_t));
}

/// Nearest-neighbour resampling of labels onto another grid (world coordinates), for arms
/// whose image grid is not the object grid.
pub(super) fn labels_on(labels: &Volume<u16>, grid: &Grid) -> Volume<u16> {
    if &labels.grid == grid {
        return labels.clone();
    }
    let mut out = Volume::filled(grid.clone(), 0u16);
    let n = grid.dims[0] * grid.dims[1];
    out.data
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(k, slab)| {
            for j in 0..grid.dims[1] {
                for i in 0..grid.dims[0] {
                    slab[i + grid.dims[0] * j] =
                        labels.sample_nearest(grid.world(i, j, k)).unwrap_or(0);
                }
            }
        });
    out
}

pub(super) fn dtype(p: &Resolved) -> ImageDtype {
    match p.spec.outputs.dtype {
        OutputDtype::Float32 => ImageDtype::Float32,
        OutputDtype::Int16 => ImageDtype::Int16,
    }
}

/// Axial slices where a label touches the grid's side faces (x or y edge), if any: the body
/// is wider than the grid there.
fn cut_slices(labels: &Volume<u16>) -> Option<usize> {
    let [nx, ny, nz] = labels.grid.dims;
    let n = (0..nz)
        .filter(|&k| {
            (0..nx).any(|i| labels.get(i, 0, k) != 0 || labels.get(i, ny - 1, k) != 0)
                || (0..ny).any(|j| labels.get(0, j, k) != 0 || labels.get(nx - 1, j, k) != 0)
        })
        .count();
    (n > 0).then_some(n)
}

/// A label map written for one image grid: the grid, its relative path and sha256, its
/// nnU-Net-class bytes (nnU-Net layout) and the map itself (for the DICOM SEG).
type LabelFile = (Grid, String, String, Option<Vec<u8>>, Volume<u16>);

pub(super) fn run_subject(s: &Shared, idx: u64) -> Result<(), SubjectError> {
    let mut data = make_subject(s, idx)?;
    let p = s.p;
    let ext = extension(p);
    let gz = p.spec.outputs.compression == Compression::Gzip;
    let subj = &data.subject;
    let labels = &data.anatomy.labels;
    let nnunet = p.spec.outputs.layout == Layout::Nnunet;
    if let Some(n) = cut_slices(labels).filter(|_| !p.spec.anatomy.template.is_qa()) {
        let e = labels.grid.extent_mm();
        // An imported map is most often cut by its own scan's field of view, which no grid
        // size restores; say so rather than send the user to widen the grid for nothing.
        let hint = if p.spec.anatomy.source.is_some() {
            "widen anatomy.size if the imported map reaches further (a map its scan's field of view cut stays cut)"
        } else {
            "widen anatomy.size"
        };
        s.warn(format!(
            "{}: the body reaches the side of the anatomy grid ({:.0} × {:.0} mm) on {n} of {} slices and is cut there; {hint}",
            subj.id, e[0], e[1], labels.grid.dims[2]
        ));
    }
    let write = |rel: &str, bytes: &[u8]| -> Result<(String, String), SubjectError> {
        s.time("write", || {
            io::atomic::write_atomic(&s.dir.join(rel), bytes)
        })
        .map_err(SubjectError::from)?;
        Ok((rel.to_string(), io::hash::sha256_hex(bytes)))
    };
    let encode_labels = |v: &Volume<u16>| -> Result<Vec<u8>, SubjectError> {
        s.time("write", || io::nifti::encode_labels(v, gz, &descrip()))
            .map_err(SubjectError::from)
    };

    // Labels on the object grid; an arm that reconstructs onto another grid gets its own
    // resampled label map (labels/<subject>_<arm>), written once per distinct grid.
    let mut files = Vec::new();
    let mut label_files: Vec<LabelFile> = Vec::new();
    let study = p
        .spec
        .outputs
        .dicom
        .then(|| super::dicom::study_info(p, subj));
    let mut rows = Vec::new();
    for (ai, arm) in p.arms.iter().enumerate() {
        let acq = s.time("acquire", || {
            acquire(&arm.protocol, &data.object, subj.seed, ai)
        })?;
        release_maps(&mut data.object, &needs_of(&p.arms[ai + 1..]));
        crate::sys::release_free_heap();
        if let (Some(t), crate::pipeline::arm::Protocol::Ct(ct)) = (
            acq.protocol.get("truncation_mm").and_then(|v| v.as_f64()),
            &arm.protocol,
        ) {
            s.warn(format!(
                "{} arm `{}`: the body reaches {t:.1} mm past the {:.1} mm scan field radius; its projections are cut at the detector's edges (truncation artefacts){}",
                subj.id,
                arm.name,
                ct.scan_field_radius_mm(),
                if ct.extended_fov { "; the extended-FOV reconstruction extrapolates them" } else { "; extended_fov: true extrapolates them" }
            ));
        }
        let image = &acq.image;
        let li = match label_files.iter().position(|(g, ..)| g == &image.grid) {
            Some(i) => i,
            None => {
                let on_grid = labels_on(labels, &image.grid);
                let rel = if image.grid == labels.grid {
                    format!("labels/{}{ext}", subj.id)
                } else {
                    format!("labels/{}_{}{ext}", subj.id, arm.name)
                };
                let (rel, sha) = write(&rel, &encode_labels(&on_grid)?)?;
                files.push((rel.clone(), sha.clone()));
                let nn = if nnunet {
                    Some(encode_labels(&nnunet_labels(
                        p,
                        s.sources.label_ids.as_deref(),
                        &on_grid,
                        &data.anatomy.lesions,
                    ))?)
                } else {
                    None
                };
                label_files.push((image.grid.clone(), rel, sha, nn, on_grid));
                label_files.len() - 1
            }
        };
        let (_, label_rel, label_sha, nn_labels, on_grid) = &label_files[li];
        let bytes = s
            .time("write", || {
                io::nifti::encode_image(image, dtype(p), gz, &descrip())
            })
            .map_err(SubjectError::from)?;
        let (image_rel, image_sha) =
            write(&format!("images/{}_{}{ext}", subj.id, arm.name), &bytes)?;
        files.push((image_rel.clone(), image_sha.clone()));
        if let Some(st) = &study {
            if let Some(da) = super::dicom::acquisition(&arm.protocol, image, acq.ctdi_vol_mgy) {
                let encoded = s
                    .time("dicom", || {
                        super::dicom::encode_arm(
                            st,
                            ai,
                            &arm.name,
                            &da,
                            image,
                            on_grid,
                            &data.anatomy.lesions,
                        )
                    })
                    .map_err(SubjectError::from)?;
                for (rel, bytes) in encoded {
                    files.push(write(&rel, &bytes)?);
                }
            }
        }
        if let Some(k) = &acq.kspace {
            // (coils, slices, ky, kx), complex64, DC at the centre of each k axis.
            let npy =
                io::npy::encode_complex64(&[k.coils, k.dims[2], k.dims[1], k.dims[0]], &k.data);
            files.push(write(
                &format!("kspace/{}_{}.npy", subj.id, arm.name),
                &npy,
            )?);
        }
        for (dir, map) in [("gfactor", &acq.g_factor), ("adc", &acq.adc)] {
            if let Some(v) = map {
                let bytes = io::nifti::encode_image(v, ImageDtype::Float32, gz, &descrip())
                    .map_err(SubjectError::from)?;
                files.push(write(
                    &format!("{dir}/{}_{}{ext}", subj.id, arm.name),
                    &bytes,
                )?);
            }
        }
        if let Some(nn) = nn_labels {
            let case = format!("{}_{}", subj.id, arm.name);
            files.push(write(&format!("imagesTr/{case}_0000{ext}"), &bytes)?);
            files.push(write(&format!("labelsTr/{case}{ext}"), nn)?);
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
            image_sha256: image_sha,
            label_sha256: label_sha.clone(),
            image_dims: image.grid.dims.map(|d| d as u32),
            spacing_mm: image.grid.spacing_mm,
            object_dims: labels.grid.dims.map(|d| d as u32),
            object_spacing_mm: labels.grid.spacing_mm,
            protocol: acq.protocol.to_string(),
            ctdi_vol_mgy: acq.ctdi_vol_mgy,
            water_equivalent_diameter_mm: acq.water_equivalent_diameter_mm,
            ssde_mgy: acq.ssde_mgy,
            generator: s.generator.name(),
            pipeline_sha256: p.sha256.clone(),
            synthcohort_version: crate::VERSION.to_string(),
            anatomy_source: s.sources.name_for(subj.seed, p.spec.anatomy.template),
        });
    }
    // Virtual trial: the lesion-free twin under every arm (independent noise), and for
    // subjects without lesions, signal-absent sites inside the lesions' organs.
    let mut absent_sites = Vec::new();
    if p.spec.trial.is_some() {
        if data.anatomy.lesions.is_empty() {
            absent_sites = super::trial::absent_sites(p, labels, subj.seed);
        } else {
            let twin = make_subject_with(s, idx, false)?;
            for (ai, arm) in p.arms.iter().enumerate() {
                let acq = s.time("acquire", || {
                    acquire(&arm.protocol, &twin.object, subj.seed, ai + TWIN_ARM_OFFSET)
                })?;
                let bytes = s
                    .time("write", || {
                        io::nifti::encode_image(&acq.image, dtype(p), gz, &descrip())
                    })
                    .map_err(SubjectError::from)?;
                files.push(write(
                    &super::trial::twin_path(&subj.id, &arm.name, ext),
                    &bytes,
                )?);
            }
        }
    }
    let rec = SubjectRecord {
        index: idx,
        rows,
        lesion_ids: data
            .anatomy
            .lesions
            .iter()
            .flat_map(|l| l.label_ids())
            .collect(),
        files,
        absent_sites,
    };
    let json = serde_json::to_vec_pretty(&rec).map_err(SubjectError::from)?;
    io::atomic::write_atomic(&record_path(&s.dir.join(STATE_DIR), &subj.id), &json)
        .map_err(SubjectError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tissue::object::{CtMaps, MriMaps};

    fn object() -> TissueObject {
        let g = Grid::centered([2, 2, 2], [1.0; 3]);
        let f = || Volume::filled(g.clone(), 1.0f32);
        let mri = |field_t| MriMaps {
            field_t,
            pd: f(),
            t1_ms: f(),
            t2_ms: f(),
            t2star_ms: f(),
            fat_fraction: f(),
            adc_um2_ms: f(),
            chi_ppm: None,
        };
        TissueObject {
            ct: Some(CtMaps {
                hu: f(),
                density: f(),
                material: Volume::filled(g.clone(), 0u8),
                materials: vec!["water"],
                perfusion: None,
            }),
            mri: vec![mri(1.5), mri(3.0)],
        }
    }

    #[test]
    fn maps_a_later_arm_images_are_kept_and_the_rest_released() {
        let mut o = object();
        release_maps(
            &mut o,
            &Needs {
                ct: false,
                mri_fields_t: vec![3.0],
            },
        );
        assert!(o.ct.is_none());
        assert_eq!(o.mri.len(), 1);
        assert!(o.mri_at(3.0).is_some());
        let mut o = object();
        release_maps(
            &mut o,
            &Needs {
                ct: true,
                mri_fields_t: vec![],
            },
        );
        assert!(o.ct.is_some() && o.mri.is_empty());
    }
}
