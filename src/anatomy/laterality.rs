//! Laterality of a label map in world coordinates (RAS+: +x is the patient's right).
//!
//! A left–right mirrored map is anatomically wrong yet passes every volume and overlap check,
//! so it needs its own test: right-sided organs (liver, gallbladder, right kidney, right lung
//! lobes, the higher right hemidiaphragm dome) must lie at greater x than left-sided ones
//! (spleen, stomach, left kidney, left lung lobes, the heart's apex), and every `*_left` label
//! at smaller x than its `*_right` twin. Used by the tests on every template and on imported
//! maps, and by the engine to warn when an imported map looks mirrored.

use std::collections::BTreeMap;

use super::ontology::{
    label_by_id, mirror_name, ontology, organ_group, HEART, LIVER, SPLEEN, STOMACH,
};
use super::ontology::{GALLBLADDER, KIDNEY_LEFT, KIDNEY_RIGHT};
use crate::volume::Volume;

/// A structure whose side is known, and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Landmark {
    pub name: String,
    /// World x (mm) of its centroid (or of the point it names, for the apex and the dome).
    pub x_mm: f64,
}

/// One comparison: `right` must lie at greater x than `left`.
#[derive(Clone, Debug, PartialEq)]
pub struct SideCheck {
    pub right: Landmark,
    pub left: Landmark,
}

impl SideCheck {
    pub fn holds(&self) -> bool {
        self.right.x_mm > self.left.x_mm
    }
}

/// Every comparison a map allows (those whose structures are present).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LateralityReport {
    pub checks: Vec<SideCheck>,
}

impl LateralityReport {
    pub fn violations(&self) -> Vec<&SideCheck> {
        self.checks.iter().filter(|c| !c.holds()).collect()
    }

    /// True when the map has side-specific structures and more comparisons fail than hold:
    /// the signature of a mirrored map rather than of one odd organ.
    pub fn looks_mirrored(&self) -> bool {
        let bad = self.violations().len();
        !self.checks.is_empty() && 2 * bad > self.checks.len()
    }
}

impl std::fmt::Display for SideCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} x = {:.1} mm vs {} x = {:.1} mm",
            self.right.name, self.right.x_mm, self.left.name, self.left.x_mm
        )
    }
}

/// Fewer voxels than this and a structure is too small a cut to place reliably.
const MIN_VOXELS: usize = 20;

struct Stats {
    n: usize,
    sum_x: f64,
}

/// Voxel count and summed world x of every label, from one pass over the map.
fn centroids(v: &Volume<u16>) -> BTreeMap<u16, Stats> {
    let mut s: BTreeMap<u16, Stats> = BTreeMap::new();
    for (idx, &l) in v.data.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let [i, j, k] = v.grid.ijk(idx);
        let e = s.entry(l).or_insert(Stats { n: 0, sum_x: 0.0 });
        e.n += 1;
        e.sum_x += v.grid.world(i, j, k)[0];
    }
    s.retain(|_, e| e.n >= MIN_VOXELS);
    s
}

fn mean_x(stats: &BTreeMap<u16, Stats>, ids: &[u16]) -> Option<f64> {
    let (n, sx) = ids
        .iter()
        .filter_map(|id| stats.get(id))
        .fold((0usize, 0.0), |(n, sx), e| (n + e.n, sx + e.sum_x));
    (n > 0).then(|| sx / n as f64)
}

/// The heart's apex: mean x of the 2 % of heart voxels furthest anterior-inferior (largest
/// y − z), a side-neutral definition, since the apex points forwards and down.
fn heart_apex_x(v: &Volume<u16>) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for (idx, &l) in v.data.iter().enumerate() {
        if l == HEART {
            let [i, j, k] = v.grid.ijk(idx);
            let p = v.grid.world(i, j, k);
            pts.push((p[1] - p[2], p[0]));
        }
    }
    if pts.len() < MIN_VOXELS {
        return None;
    }
    pts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = (pts.len() / 50).max(1);
    Some(pts[..n].iter().map(|p| p.1).sum::<f64>() / n as f64)
}

/// The higher hemidiaphragm dome (the right one in a normal subject): the highest lung base
/// that sits on an upper-abdominal organ (liver, spleen, stomach, kidney) within 25 mm below
/// it (the diaphragm between them is unlabelled or generic tissue). Found without looking at
/// x, so a mirrored map puts it on the wrong side. None when the highest base lies within
/// 25 mm of the grid's top.
fn higher_dome_x(v: &Volume<u16>, lungs: &[u16]) -> Option<f64> {
    const VISCERA: [u16; 5] = [LIVER, SPLEEN, STOMACH, KIDNEY_LEFT, KIDNEY_RIGHT];
    let [nx, ny, nz] = v.grid.dims;
    let reach = (25.0 / v.grid.spacing_mm[2]).ceil() as usize;
    // (lung base k, x) of every column whose lung base rests on a viscus.
    let mut bases: Vec<(usize, f64)> = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let at = |k: usize| v.data[v.grid.index(i, j, k)];
            let Some(k) = (0..nz).find(|&k| lungs.contains(&at(k))) else {
                continue;
            };
            if (k.saturating_sub(reach)..k).any(|kb| VISCERA.contains(&at(kb))) {
                bases.push((k, v.grid.world(i, j, k)[0]));
            }
        }
    }
    // Average the columns at the top level so a single voxel does not decide the side.
    let top = bases.iter().map(|b| b.0).max()?;
    // A base within reach of the grid's top says nothing: the field may cut through the domes,
    // with the higher one (and its lung) above it.
    if top + reach >= nz {
        return None;
    }
    let xs: Vec<f64> = bases.iter().filter(|b| b.0 == top).map(|b| b.1).collect();
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Every side comparison the map supports. Label ids are the ontology's.
pub fn laterality(v: &Volume<u16>) -> LateralityReport {
    let stats = centroids(v);
    let name = |id: u16| label_by_id(id).map_or(format!("label {id}"), |l| l.name.to_string());
    let lungs = organ_group("lung").unwrap_or_default();
    let side_lungs = |side: &str| -> Vec<u16> {
        lungs
            .iter()
            .copied()
            .filter(|&id| name(id).ends_with(side))
            .collect()
    };

    // Organs placed by their centroid, then the two points found without looking at x.
    let landmarks = |organs: Vec<(&str, Vec<u16>)>, point: (&str, Option<f64>)| {
        let mut out: Vec<Landmark> = organs
            .into_iter()
            .filter_map(|(label, ids)| {
                mean_x(&stats, &ids).map(|x_mm| Landmark {
                    name: label.into(),
                    x_mm,
                })
            })
            .collect();
        if let Some(x_mm) = point.1 {
            out.push(Landmark {
                name: point.0.into(),
                x_mm,
            });
        }
        out
    };
    let right = landmarks(
        vec![
            ("liver", vec![LIVER]),
            ("gallbladder", vec![GALLBLADDER]),
            ("kidney_right", vec![KIDNEY_RIGHT]),
            ("right lung lobes", side_lungs("_right")),
        ],
        (
            "higher (right) hemidiaphragm dome",
            higher_dome_x(v, &lungs),
        ),
    );
    let left = landmarks(
        vec![
            ("spleen", vec![SPLEEN]),
            ("stomach", vec![STOMACH]),
            ("kidney_left", vec![KIDNEY_LEFT]),
            ("left lung lobes", side_lungs("_left")),
        ],
        ("heart apex", heart_apex_x(v)),
    );
    let mut checks: Vec<SideCheck> = Vec::new();
    for r in &right {
        for l in &left {
            checks.push(SideCheck {
                right: r.clone(),
                left: l.clone(),
            });
        }
    }

    // Named twins: every `…left…` label against its `…right…` counterpart.
    for info in ontology() {
        if !info.name.contains("left") {
            continue;
        }
        let Some(twin) = mirror_name(info.name) else {
            continue;
        };
        let Some(r) = ontology().iter().find(|o| o.name == twin) else {
            continue;
        };
        if let (Some(xl), Some(xr)) = (mean_x(&stats, &[info.id]), mean_x(&stats, &[r.id])) {
            checks.push(SideCheck {
                right: Landmark {
                    name: twin.clone(),
                    x_mm: xr,
                },
                left: Landmark {
                    name: info.name.to_string(),
                    x_mm: xl,
                },
            });
        }
    }
    LateralityReport { checks }
}
