//! `eval-model`'s fidelity against real data: the model draws each held-out subject from
//! that subject's own label map, and the drawing is compared with the subject's real image
//! organ by organ, beside the label-mean painter — the numbers `synthcohort fidelity` gives
//! (HU 1-Wasserstein, NPS texture, GLCM, lung vessel fraction, volume), on subjects the model
//! never trained on. The procedural renderer's row needs a pipeline run, so it is left to
//! `synthcohort fidelity RUN…` (which also takes a region of one scan as the held-out part).

use std::path::Path;

use crate::anatomy::ontology;
use crate::lab::fidelity::{
    compare, picture_columns, table, write_picture, Cohort, CohortSubject, RealScan, Row,
};
use crate::lab::LabError;
use crate::volume::Volume;

/// One held-out subject: its real image (HU), its label map (dataset ids) and the model's
/// drawing of it (HU, same grid).
pub(super) struct Drawn {
    pub real: Volume<f32>,
    pub labels: Volume<u16>,
    pub generated: Vec<f32>,
}

/// Ontology id of each dataset label id, by the model class name it was mapped to (0 for
/// the background and for lesion classes, which no organ row counts).
pub(super) fn ontology_ids(class_of_id: &[String]) -> Vec<u16> {
    class_of_id
        .iter()
        .map(|c| ontology::label_by_name(c).map_or(0, |l| l.id))
        .collect()
}

/// The rows (painter, model), written to `out/fidelity.json` and `out/patches.png`; returns
/// them with their markdown table.
pub(super) fn evaluate(
    drawn: Vec<Drawn>,
    ids: &[u16],
    out: &Path,
) -> Result<(Vec<Row>, String), LabError> {
    if drawn.is_empty() {
        return Err(LabError::Input("no held-out subject to compare".into()));
    }
    let mut reals = Vec::new();
    let mut subjects = Vec::new();
    for d in drawn {
        let labels = Volume::from_vec(
            d.labels.grid.clone(),
            d.labels
                .data
                .iter()
                .map(|&l| ids.get(l as usize).copied().unwrap_or(0))
                .collect(),
        );
        subjects.push(CohortSubject {
            image: Volume::from_vec(d.real.grid.clone(), d.generated),
            labels: labels.clone(),
            region: None,
        });
        reals.push(RealScan {
            image: d.real,
            labels,
            region: None,
        });
    }
    let cohorts = [Cohort {
        generator: "model".into(),
        arm: "object".into(),
        subjects,
    }];
    let (rows, picture) = compare(&reals, &cohorts);
    let columns = picture_columns(&cohorts);
    std::fs::create_dir_all(out).map_err(LabError::file("cannot create", out))?;
    crate::io::write_atomic(
        &out.join("fidelity.json"),
        &serde_json::to_vec_pretty(&rows)?,
    )?;
    write_picture(&out.join("patches.png"), &picture, columns.len())?;
    let md = table(&rows, &columns);
    Ok((rows, md))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A "model" that returns the real image exactly is at distance 0 from it, and the painter
    /// (flat table values) is not: the comparison runs on the subject's own real image.
    #[test]
    fn a_drawing_equal_to_the_real_image_is_at_distance_zero() {
        let g = Grid::centered([48, 48, 24], [2.0, 2.0, 2.0]);
        let liver = ontology::label_by_name("liver").expect("liver").id;
        let labels: Vec<u16> = (0..g.len())
            .map(|i| {
                let [x, y, _] = g.ijk(i);
                u16::from((4..44).contains(&x) && (4..44).contains(&y))
            })
            .collect();
        // Uniform noise from a fixed LCG: a white texture the painter lacks.
        let mut state = 7u64;
        let noise: Vec<f32> = (0..g.len())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let real: Vec<f32> = labels
            .iter()
            .zip(&noise)
            .map(|(&l, n)| if l == 1 { 60.0 + 50.0 * n } else { -1000.0 })
            .collect();
        let dir = std::env::temp_dir().join(format!("sc-evalfid-{}", std::process::id()));
        let (rows, md) = evaluate(
            vec![Drawn {
                real: Volume::from_vec(g.clone(), real.clone()),
                labels: Volume::from_vec(g.clone(), labels),
                generated: real,
            }],
            &[0, liver],
            &dir,
        )
        .unwrap();
        let row = |gen: &str| {
            rows.iter()
                .find(|r| r.organ == "liver" && r.generator == gen)
                .unwrap()
        };
        assert!(row("model").hu_w1 < 1e-9);
        assert!(row("model").texture_distance.unwrap() < 1e-9);
        assert!(row("painter").hu_w1 > 5.0);
        assert!(md.contains("| liver | model |"));
        assert!(dir.join("fidelity.json").exists() && dir.join("patches.png").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
