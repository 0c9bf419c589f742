//! Importing a real label map (e.g. a TotalSegmentator segmentation) as the anatomy base:
//! its ids are mapped onto the ontology by class name and it is resampled onto the target
//! grid by nearest neighbour in world coordinates.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::ontology::{label_by_id, label_by_name, normalize};
use super::AnatomyError;
use crate::volume::{Grid, Volume};

/// What an import did with each source class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// (source id, source name, ontology id).
    pub mapped: Vec<(u16, String, u16)>,
    /// Source classes with no ontology match (painted as background); ids present in the
    /// data but missing from the names list appear here named `<unnamed>`.
    pub unmapped: Vec<(u16, String)>,
}

/// Names in other tools' spellings that mean one of our labels.
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "background" | "air" | "outside" => return None,
        "subcutaneous_fat_tissue" | "subcutaneous_tissue" => "subcutaneous_fat",
        "skeletal_muscles" | "muscle" => "skeletal_muscle",
        "gray_matter" | "cortex" => "grey_matter",
        "ventricles" | "lateral_ventricle" => "lateral_ventricles",
        "body_trunc" | "body_trunk" => "body",
        "bladder" => "urinary_bladder",
        "gall_bladder" => "gallbladder",
        "vena_cava_inferior" => "inferior_vena_cava",
        "vena_cava_superior" => "superior_vena_cava",
        _ => return None,
    })
}

/// The ontology name another tool's class name means (case, spelling and synonyms
/// forgiven), if any.
pub fn ontology_name(name: &str) -> Option<&'static str> {
    map_name(name).and_then(label_by_id).map(|l| l.name)
}

fn map_name(name: &str) -> Option<u16> {
    let n = normalize(name);
    label_by_name(&n)
        .or_else(|| alias(&n).and_then(label_by_name))
        .map(|l| l.id)
}

/// Maps `src` onto the ontology by class name and resamples it onto `target`.
/// Id 0 stays background; unmapped names (and unnamed ids) become 0 and are reported.
pub fn import_labels(
    src: &Volume<u16>,
    names: &BTreeMap<u16, String>,
    target: &Grid,
) -> (Volume<u16>, ImportReport) {
    let present: BTreeSet<u16> = src.data.iter().copied().collect();
    let mut report = ImportReport::default();
    let mut lut: Vec<u16> = vec![0; u16::MAX as usize + 1];
    for (&id, name) in names {
        if id == 0 {
            continue;
        }
        match map_name(name) {
            Some(o) => {
                lut[id as usize] = o;
                report.mapped.push((id, name.clone(), o));
            }
            None => report.unmapped.push((id, name.clone())),
        }
    }
    for &id in &present {
        if id != 0 && !names.contains_key(&id) {
            report.unmapped.push((id, "<unnamed>".to_string()));
        }
    }
    report.unmapped.sort();

    let [nx, ny, _] = target.dims;
    let mut out = Volume::filled(target.clone(), 0u16);
    if !target.is_empty() {
        out.data
            .par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slice)| {
                for j in 0..ny {
                    for i in 0..nx {
                        let v = src.sample_nearest(target.world(i, j, k)).unwrap_or(0);
                        slice[i + nx * j] = lut[v as usize];
                    }
                }
            });
    }
    (out, report)
}

/// Parses "id<TAB or spaces>name" lines (a TotalSegmentator classes file); `#` starts a comment.
pub fn parse_names_file(text: &str) -> Result<BTreeMap<u16, String>, AnatomyError> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: &str| AnatomyError::NamesFile {
            line: n + 1,
            text: raw.trim().to_string(),
            reason: reason.to_string(),
        };
        let mut parts = line.splitn(2, char::is_whitespace);
        let id_s = parts.next().unwrap_or("");
        let name = parts.next().map(str::trim).unwrap_or("");
        let id: u16 = id_s
            .parse()
            .map_err(|_| err("the first field must be an integer label id 0..=65535"))?;
        if name.is_empty() {
            return Err(err("missing class name after the id"));
        }
        if out.insert(id, name.to_string()).is_some() {
            return Err(err("duplicate label id"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_reports_bad_lines() {
        let m = parse_names_file("# TotalSegmentator\n1\tspleen\n5 liver  # organ\n\n90   brain\n")
            .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[&5], "liver");
        let e = parse_names_file("1 spleen\nx liver\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("x liver"), "{e}");
        assert!(parse_names_file("3\n").is_err());
        assert!(parse_names_file("3 a\n3 b\n")
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
    }

    #[test]
    fn imports_by_name_and_resamples_in_world_coordinates() {
        // Source: 10×10×10 at 2 mm; left half (x < 0) "liver" id 7, a cube "mystery" id 9,
        // one stray voxel with an id missing from the names.
        let sg = Grid::centered([10, 10, 10], [2.0; 3]);
        let mut src = Volume::filled(sg.clone(), 0u16);
        for idx in 0..sg.len() {
            let [i, j, k] = sg.ijk(idx);
            if sg.world(i, j, k)[0] < 0.0 {
                src.data[idx] = 7;
            }
            if i >= 7 && j >= 7 && k >= 7 {
                src.data[idx] = 9;
            }
        }
        src.set(9, 0, 0, 42);
        let names: BTreeMap<u16, String> = [
            (0, "background"),
            (7, "liver"),
            (9, "mystery_organ"),
            (11, "Kidney Left"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        // Target: finer, shifted, partly outside the source.
        let tg = Grid {
            dims: [12, 8, 8],
            spacing_mm: [1.5, 1.5, 1.5],
            origin_mm: [-9.0, -5.0, -5.0],
        };
        let (out, rep) = import_labels(&src, &names, &tg);
        assert_eq!(
            rep.mapped,
            vec![
                (7, "liver".to_string(), 5),
                (11, "Kidney Left".to_string(), 3)
            ]
        );
        assert_eq!(
            rep.unmapped,
            vec![
                (9, "mystery_organ".to_string()),
                (42, "<unnamed>".to_string())
            ]
        );
        for idx in 0..tg.len() {
            let [i, j, k] = tg.ijk(idx);
            let p = tg.world(i, j, k);
            let expect = match src.sample_nearest(p) {
                Some(7) => 5,
                _ => 0,
            };
            assert_eq!(out.data[idx], expect, "at {p:?}");
        }
        assert!(out.data.contains(&5) && out.data.contains(&0));
    }
}
