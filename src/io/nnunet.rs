//! nnU-Net v2 raw dataset layout: `imagesTr/<case>_<channel:04>.nii.gz`,
//! `labelsTr/<case>.nii.gz` and `dataset.json`.
//!
//! nnU-Net v2 requires label values 0..n with no gaps and "background" = 0, while our label
//! ontology has sparse ids (organs, then lesions from 200); [`consecutive_labels`] gives the
//! remapping to apply to label maps written in this layout.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::IoError;

/// `dataset.json` for nnU-Net v2. `channel_names[c]` names input channel `c` ("CT", "T1", …);
/// `labels` must already be consecutive with ("background", 0) (see [`check_nnunet_labels`]);
/// `file_ending` includes the dot, e.g. ".nii.gz".
pub fn dataset_json(
    name: &str,
    channel_names: &[String],
    labels: &[(String, u16)],
    num_training: usize,
    file_ending: &str,
) -> Value {
    let channels: Map<String, Value> = channel_names
        .iter()
        .enumerate()
        .map(|(c, n)| (c.to_string(), Value::from(n.as_str())))
        .collect();
    let mut sorted: Vec<&(String, u16)> = labels.iter().collect();
    sorted.sort_by_key(|(_, id)| *id);
    let labels: Map<String, Value> = sorted
        .iter()
        .map(|(n, id)| (n.clone(), Value::from(*id)))
        .collect();
    json!({
        "name": name,
        "channel_names": channels,
        "labels": labels,
        "numTraining": num_training,
        "file_ending": file_ending,
    })
}

/// Checks nnU-Net v2's label rules: "background" is 0, ids are exactly 0..n, names unique.
pub fn check_nnunet_labels(labels: &[(String, u16)]) -> Result<(), IoError> {
    let fail = |reason: String| Err(IoError::encode("nnU-Net dataset.json", reason));
    if !labels.iter().any(|(n, id)| n == "background" && *id == 0) {
        return fail("labels must contain (\"background\", 0)".into());
    }
    let mut ids: Vec<u16> = labels.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    if let Some((k, id)) = ids.iter().enumerate().find(|(k, id)| **id as usize != *k) {
        return fail(format!(
            "label ids must be consecutive from 0: expected {k}, found {id}"
        ));
    }
    let mut names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return fail(format!("label name {:?} appears twice", w[0]));
    }
    Ok(())
}

/// Renumbers sparse label ids to nnU-Net's consecutive ones, keeping their order.
///
/// Returns the new (name, id) list, starting with ("background", 0), and a lookup table
/// `lut[old_id] = new_id` (length max old id + 1; ids not listed map to 0) to apply to the
/// label maps. Entries with id 0 are taken as background whatever their name.
pub fn consecutive_labels(labels: &[(String, u16)]) -> (Vec<(String, u16)>, Vec<u16>) {
    let mut sorted: Vec<&(String, u16)> = labels.iter().filter(|(_, id)| *id != 0).collect();
    sorted.sort_by_key(|(_, id)| *id);
    sorted.dedup_by_key(|(_, id)| *id);
    let max = sorted.last().map_or(0, |(_, id)| *id as usize);
    let mut lut = vec![0u16; max + 1];
    let mut out = vec![("background".to_string(), 0u16)];
    for (new, (name, old)) in sorted.into_iter().enumerate() {
        let new = new as u16 + 1;
        lut[*old as usize] = new;
        out.push((name.clone(), new));
    }
    (out, lut)
}

/// `root/imagesTr/<case>_<channel:04><file_ending>`.
pub fn nnunet_image_path(root: &Path, case: &str, channel: usize, file_ending: &str) -> PathBuf {
    root.join("imagesTr")
        .join(format!("{case}_{channel:04}{file_ending}"))
}

/// `root/labelsTr/<case><file_ending>`.
pub fn nnunet_label_path(root: &Path, case: &str, file_ending: &str) -> PathBuf {
    root.join("labelsTr").join(format!("{case}{file_ending}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_json_has_nnunet_v2_keys() {
        let labels = vec![
            ("background".to_string(), 0),
            ("lung".to_string(), 2),
            ("liver".to_string(), 1),
        ];
        check_nnunet_labels(&labels).unwrap();
        let v = dataset_json(
            "Dataset501_Lung",
            &["CT".to_string()],
            &labels,
            120,
            ".nii.gz",
        );
        assert_eq!(v["channel_names"]["0"], "CT");
        assert_eq!(v["labels"]["background"], 0);
        assert_eq!(v["labels"]["lung"], 2);
        assert_eq!(v["numTraining"], 120);
        assert_eq!(v["file_ending"], ".nii.gz");
        assert_eq!(v["name"], "Dataset501_Lung");
    }

    #[test]
    fn label_rules_are_checked() {
        let s = |n: &str, id| (n.to_string(), id);
        assert!(check_nnunet_labels(&[s("liver", 1)]).is_err());
        assert!(check_nnunet_labels(&[s("background", 0), s("liver", 2)]).is_err());
        assert!(check_nnunet_labels(&[s("background", 0), s("a", 1), s("a", 2)]).is_err());
    }

    #[test]
    fn sparse_ids_become_consecutive() {
        let s = |n: &str, id| (n.to_string(), id);
        let (labels, lut) =
            consecutive_labels(&[s("nodule", 200), s("liver", 5), s("bg", 0), s("lung", 10)]);
        assert_eq!(
            labels,
            vec![
                s("background", 0),
                s("liver", 1),
                s("lung", 2),
                s("nodule", 3)
            ]
        );
        check_nnunet_labels(&labels).unwrap();
        assert_eq!(
            (lut[5], lut[10], lut[200], lut[7], lut.len()),
            (1, 2, 3, 0, 201)
        );
    }

    #[test]
    fn paths_follow_the_layout() {
        let r = Path::new("/out");
        assert_eq!(
            nnunet_image_path(r, "sub-0001", 0, ".nii.gz"),
            Path::new("/out/imagesTr/sub-0001_0000.nii.gz")
        );
        assert_eq!(
            nnunet_label_path(r, "sub-0001", ".nii.gz"),
            Path::new("/out/labelsTr/sub-0001.nii.gz")
        );
    }
}
