//! Does a training set look like the real scan after normalisation? The mean normalised
//! intensity of each class over a set of slices, for the real scored slices and for every
//! arm's training slices side by side: where an arm's organs sit at other values than the
//! real scan's, a network trained on it has to transfer across that gap.

use std::fmt::Write as _;

use crate::classes::{CLASSES, N_CLASSES};
use crate::slices::{Canvas, Slice};

/// Mean of channel `ch` over the pixels of each class (index = class id); None where the
/// class has no pixel in `slices`.
pub fn class_means(slices: &[&Slice], c: Canvas, ch: usize) -> Vec<Option<f64>> {
    let plane = c.nx * c.ny;
    let (mut sum, mut n) = ([0f64; N_CLASSES], [0usize; N_CLASSES]);
    for s in slices {
        let x = &s.x[ch * plane..(ch + 1) * plane];
        for (&k, &v) in s.y.iter().zip(x) {
            if (k as usize) < N_CLASSES {
                sum[k as usize] += v as f64;
                n[k as usize] += 1;
            }
        }
    }
    (0..N_CLASSES)
        .map(|k| (n[k] > 0).then(|| sum[k] / n[k] as f64))
        .collect()
}

/// A markdown table of class means: one row per (name, means), one column per class that
/// the first row (the real scan) has.
pub fn markdown(rows: &[(String, Vec<Option<f64>>)], what: &str) -> String {
    let Some((_, real)) = rows.first() else {
        return String::new();
    };
    let cols: Vec<usize> = (0..N_CLASSES).filter(|&k| real[k].is_some()).collect();
    let mut s = format!(
        "\n| {what} | {} |\n|---|{}\n",
        cols.iter()
            .map(|&k| CLASSES[k])
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(cols.len())
    );
    for (name, means) in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|&k| means[k].map_or("–".into(), |m| format!("{m:+.2}")))
            .collect();
        let _ = writeln!(s, "| {name} | {} |", cells.join(" | "));
    }
    s
}

/// The same rows for `report.json`: `[{"set": name, "means": {class: mean}}]`, absent
/// classes left out.
pub fn json(rows: &[(String, Vec<Option<f64>>)]) -> serde_json::Value {
    rows.iter()
        .map(|(n, means)| {
            let by_class: serde_json::Map<_, _> = CLASSES
                .iter()
                .zip(means)
                .filter_map(|(k, m)| m.map(|m| (k.to_string(), m.into())))
                .collect();
            serde_json::json!({"set": n, "means": by_class})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two slices, class 1 at 0.2 and 0.4 (one pixel each) and background at −1: the class
    /// mean is 0.3, background −1, absent classes None; channel 1 is read from its plane.
    #[test]
    fn means_per_class_and_channel() {
        let c = Canvas {
            nx: 2,
            ny: 1,
            spacing_mm: 1.0,
        };
        let mk = |v: f32| Slice {
            x: vec![v, -1.0, 5.0, 5.0],
            y: vec![1, 0],
            source: 0,
            k: 0,
        };
        let (a, b) = (mk(0.2), mk(0.4));
        let m = class_means(&[&a, &b], c, 0);
        assert!((m[1].unwrap() - 0.3).abs() < 1e-6);
        assert_eq!(m[0], Some(-1.0));
        assert_eq!(m[2], None);
        assert_eq!(class_means(&[&a], c, 1)[1], Some(5.0));
        let md = markdown(&[("real".into(), m.clone()), ("arm".into(), m)], "z");
        assert!(md.contains("| real | -1.00 | +0.30 |"), "{md}");
    }
}
