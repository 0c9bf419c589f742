//! Where the benchmark's volumes come from: a cohort's nnU-Net folder (one arm), the
//! label-mean painter's images of the same labels, and a real scan with a label map in any
//! spelling; all mapped onto the benchmark's classes.

use std::path::Path;

use synthcohort::lab::{data as nnunet, fidelity, LabError};
use synthcohort::volume::Volume;

use crate::classes::{class_of_name, class_of_ontology_ids};

/// One source volume: HU image and class map on its grid.
pub struct Case {
    pub name: String,
    pub image: Volume<f32>,
    pub classes: Volume<u8>,
    /// The source's own labels (nnU-Net ids or ontology ids), for the painter.
    pub labels: Volume<u16>,
}

/// Every case of `arm` in the cohort's nnU-Net folder (`dataset.json`, `imagesTr`,
/// `labelsTr`: the folder `synthcohort run` writes with `layout: nnunet`), first `limit`.
pub fn cohort_cases(dir: &Path, arm: &str, limit: usize) -> Result<Vec<Case>, LabError> {
    let ds = nnunet::load(dir, Some(&[arm.to_string()]), 1, Some(limit))?;
    let lut: Vec<u8> = ds.class_of_id.iter().map(|n| class_of_name(n)).collect();
    Ok(ds
        .cases
        .into_iter()
        .map(|c| {
            let classes = c.labels.map(|l| lut.get(l as usize).copied().unwrap_or(0));
            Case {
                name: c.name,
                image: c.channels.into_iter().next().expect("one channel"),
                classes,
                labels: c.labels,
            }
        })
        .collect())
}

/// The label-mean painter: each label of each subject painted with that label's mean HU in
/// the subject's own image (no texture, no noise, no partial volume).
pub fn painted(case: &Case) -> Case {
    let n = case.labels.data.iter().copied().max().unwrap_or(0) as usize + 1;
    let (mut sum, mut count) = (vec![0f64; n], vec![0usize; n]);
    for (&l, &v) in case.labels.data.iter().zip(&case.image.data) {
        sum[l as usize] += v as f64;
        count[l as usize] += 1;
    }
    let mean: Vec<f32> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| if c > 0 { (s / c as f64) as f32 } else { 0.0 })
        .collect();
    Case {
        name: format!("{}_painted", case.name),
        image: case.labels.map(|l| mean[l as usize]),
        classes: case.classes.clone(),
        labels: case.labels.clone(),
    }
}

/// A real scan: HU image, label map and its name table (`id name` per line, any spelling
/// the ontology's import knows: TotalSegmentator `total`/`total_mr`, `Liver`, …).
pub fn real_case(image: &Path, labels: &Path, names: &Path) -> Result<Case, LabError> {
    let (img, mapped, report) = fidelity::real_maps(image, labels, names)?;
    if !report.unmapped.is_empty() {
        eprintln!(
            "note: {} label name(s) of {} are not organs the ontology knows, scored as background: {}",
            report.unmapped.len(),
            names.display(),
            report
                .unmapped
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let lut = class_of_ontology_ids();
    Ok(Case {
        name: image
            .file_name()
            .map_or("real".into(), |f| f.to_string_lossy().into_owned()),
        classes: mapped.map(|l| lut[l as usize]),
        labels: mapped,
        image: img,
    })
}
