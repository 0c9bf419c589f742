//! `labels.json`: the id → name → colour table shared by the label maps and the preview.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEntry {
    pub id: u16,
    pub name: String,
    /// sRGB.
    pub color: [u8; 3],
    /// SNOMED CT codes of the class, as the DICOM SEG writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snomed: Option<SnomedEntry>,
}

/// Segmented Property Category, Type and (laterality) Type Modifier: `[value, scheme,
/// meaning]` each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnomedEntry {
    pub category: [String; 3],
    #[serde(rename = "type")]
    pub kind: [String; 3],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<[String; 3]>,
}

/// Pretty-printed JSON list `[{"id": 5, "name": "liver", "color": [r, g, b]}, …]` in the given
/// order, with a trailing newline.
pub fn labels_json(entries: &[LabelEntry]) -> Vec<u8> {
    // Serialising integers, strings and byte arrays into memory cannot fail.
    let mut out = serde_json::to_vec_pretty(entries).expect("label entries always serialise");
    out.push(b'\n');
    out
}

/// A deterministic, well-separated colour for a label id (black for background), for labels
/// that have no colour of their own: hues step by the golden angle so neighbouring ids differ.
pub fn label_colour(id: u16) -> [u8; 3] {
    if id == 0 {
        return [0, 0, 0];
    }
    let h = (id as f64 * 0.618_033_988_749_895).fract() * 6.0;
    let (s, v) = (0.75, if id & 1 == 0 { 0.95 } else { 0.8 });
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r, g, b].map(|u| ((u + m) * 255.0).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_documented_shape() {
        let e = vec![
            LabelEntry {
                id: 5,
                name: "liver".into(),
                color: [200, 80, 60],
                snomed: Some(SnomedEntry {
                    category: [
                        "91723000".into(),
                        "SCT".into(),
                        "Anatomical Structure".into(),
                    ],
                    kind: ["10200004".into(), "SCT".into(), "Liver".into()],
                    modifier: None,
                }),
            },
            LabelEntry {
                id: 200,
                name: "nodule_1".into(),
                color: [255, 255, 0],
                snomed: None,
            },
        ];
        let bytes = labels_json(&e);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v[0]["id"], 5);
        assert_eq!(v[0]["name"], "liver");
        assert_eq!(v[0]["color"], serde_json::json!([200, 80, 60]));
        assert_eq!(v[0]["snomed"]["type"][0], "10200004");
        assert!(v[1].get("snomed").is_none());
        let back: Vec<LabelEntry> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn palette_is_distinct_for_neighbours() {
        assert_eq!(label_colour(0), [0, 0, 0]);
        for id in 1..300u16 {
            assert_ne!(label_colour(id), label_colour(id + 1));
            assert_ne!(label_colour(id), [0, 0, 0]);
        }
    }
}
