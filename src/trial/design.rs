//! The paired design of a trial: where signal-absent ROIs of lesion-free subjects sit, and the
//! cases (one ROI centre per lesion, the same centre in the lesion-free twin, and the
//! lesion-free subjects' sites), identical across arms so arms compare case by case.

use std::collections::BTreeMap;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::anatomy::ontology;
use crate::volume::Volume;

/// One ROI centre and the file it is read from under each arm.
#[derive(Clone, Debug)]
pub struct Case {
    pub subject: String,
    /// Signal present (a lesion ROI) or absent (its twin, or an organ site).
    pub present: bool,
    pub center_mm: [f64; 3],
    /// Label map of the subject (object grid), to keep ROIs inside the organ when asked.
    pub labels: String,
    /// The lesion's organ (a label name or group).
    pub organ: String,
    /// Arm name → image file (relative to the run folder).
    pub files: BTreeMap<String, String>,
}

/// Signal-absent ROI centres for a subject without lesions: for each lesion condition, given
/// as (organ, largest lesion diameter in mm), one voxel of the organ whose neighbourhood of
/// that diameter lies inside the organ, drawn from `rng`.
pub fn absent_sites(
    conditions: &[(String, f64)],
    labels: &Volume<u16>,
    rng: &mut ChaCha8Rng,
) -> Vec<[f64; 3]> {
    let g = &labels.grid;
    let mut sites = Vec::new();
    for (organ_name, diameter_mm) in conditions {
        let Some(organ) = ontology::organ_group(organ_name) else {
            continue;
        };
        let voxels: Vec<usize> = (0..labels.data.len())
            .filter(|&i| organ.contains(&labels.data[i]))
            .collect();
        if voxels.is_empty() {
            continue;
        }
        let radius_mm = 0.5 * diameter_mm.min(60.0);
        for _ in 0..400 {
            let idx = voxels[rng.random_range(0..voxels.len())];
            let c_mm = {
                let [i, j, k] = g.ijk(idx);
                g.world(i, j, k)
            };
            if ball_inside(labels, c_mm, radius_mm, &organ) {
                sites.push(c_mm);
                break;
            }
        }
    }
    sites
}

fn ball_inside(labels: &Volume<u16>, c: [f64; 3], r: f64, organ: &[u16]) -> bool {
    let g = &labels.grid;
    let steps = [0, 1, 2].map(|a| (r / g.spacing_mm[a]).ceil() as i64);
    for dk in -steps[2]..=steps[2] {
        for dj in -steps[1]..=steps[1] {
            for di in -steps[0]..=steps[0] {
                let d = [
                    di as f64 * g.spacing_mm[0],
                    dj as f64 * g.spacing_mm[1],
                    dk as f64 * g.spacing_mm[2],
                ];
                if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] > r * r {
                    continue;
                }
                match labels.sample_nearest([c[0] + d[0], c[1] + d[1], c[2] + d[2]]) {
                    Some(v) if organ.contains(&v) => {}
                    _ => return false,
                }
            }
        }
    }
    true
}

/// Keeps the cases whose whole axial ROI of `roi_mm` (on the object grid) is organ or lesion
/// (a uniform-background task); a lesion case and its twin share the centre, so pairs stay
/// together. `labels` reads a subject's label map by its path.
pub fn keep_within_organ<E>(
    cases: &mut Vec<Case>,
    roi_mm: f64,
    mut labels: impl FnMut(&str) -> Result<Volume<u16>, E>,
) -> Result<(), E> {
    let mut keep = Vec::with_capacity(cases.len());
    let mut cache: BTreeMap<String, Volume<u16>> = BTreeMap::new();
    for c in cases.iter() {
        if !cache.contains_key(&c.labels) {
            cache.insert(c.labels.clone(), labels(&c.labels)?);
        }
        let lab = &cache[&c.labels];
        let organ = ontology::organ_group(&c.organ).unwrap_or_default();
        let h = 0.5 * roi_mm;
        let inside = (-1..=1).all(|a| {
            (-1..=1).all(|b| {
                let q = [
                    c.center_mm[0] + a as f64 * h,
                    c.center_mm[1] + b as f64 * h,
                    c.center_mm[2],
                ];
                lab.sample_nearest(q)
                    .is_some_and(|v| organ.contains(&v) || v >= ontology::LESION_ID_BASE)
            })
        });
        keep.push(inside);
    }
    let mut k = keep.iter();
    cases.retain(|_| *k.next().unwrap_or(&false));
    Ok(())
}
