//! The benchmark's report: `report.json` (every run), `report.md` (mean ± SD over seeds per
//! arm and organ, training time) and `prediction.png` (a real held-out slice: the CT, the
//! true labels and each arm's prediction).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classes::{CLASSES, N_CLASSES};
use crate::score::Scores;
use crate::slices::{Canvas, Slice};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub arm: String,
    pub seed: u64,
    pub train_slices: usize,
    pub train_seconds: f64,
    pub scores: Scores,
}

/// Mean and sample SD of the defined values, and their count; None when there are none.
fn mean_sd(v: &[f64]) -> Option<(f64, f64, usize)> {
    (!v.is_empty()).then(|| {
        let (m, sd) = synthcohort::trial::analysis::mean_sd(v);
        (m, sd, v.len())
    })
}

#[derive(Serialize)]
pub struct Summary {
    pub arm: String,
    pub organ: String,
    pub dice_mean: Option<f64>,
    pub dice_sd: Option<f64>,
    pub hd95_mean_mm: Option<f64>,
    pub hd95_sd_mm: Option<f64>,
    /// Seeds whose prediction had the organ at all (HD95 is undefined otherwise).
    pub hd95_seeds: usize,
}

pub fn summarise(runs: &[Run], arms: &[String]) -> Vec<Summary> {
    let mut out = Vec::new();
    for arm in arms {
        let mine: Vec<&Run> = runs.iter().filter(|r| &r.arm == arm).collect();
        let Some(first) = mine.first() else { continue };
        for (o, organ) in first.scores.organs.iter().enumerate() {
            let d: Vec<f64> = mine
                .iter()
                .filter_map(|r| r.scores.organs[o].dice)
                .collect();
            let h: Vec<f64> = mine
                .iter()
                .filter_map(|r| r.scores.organs[o].hd95_mm)
                .collect();
            let (dm, hm) = (mean_sd(&d), mean_sd(&h));
            out.push(Summary {
                arm: arm.clone(),
                organ: organ.organ.clone(),
                dice_mean: dm.map(|x| x.0),
                dice_sd: dm.map(|x| x.1),
                hd95_mean_mm: hm.map(|x| x.0),
                hd95_sd_mm: hm.map(|x| x.1),
                hd95_seeds: hm.map_or(0, |x| x.2),
            });
        }
    }
    out
}

/// The markdown tables: Dice and HD95 (mean ± SD over seeds) per arm × organ, then time.
pub fn markdown(runs: &[Run], arms: &[(String, String)], header: &str) -> String {
    let names: Vec<String> = arms.iter().map(|a| a.0.clone()).collect();
    let sum = summarise(runs, &names);
    let organs: Vec<String> = runs
        .first()
        .map(|r| r.scores.organs.iter().map(|o| o.organ.clone()).collect())
        .unwrap_or_default();
    let mut s = String::from(header);
    let head = |s: &mut String, what: &str| {
        let _ = writeln!(s, "\n| {what} | {} |", organs.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(organs.len()));
    };
    head(&mut s, "Dice (mean ± SD)");
    for (arm, _) in arms {
        let cells: Vec<String> = organs
            .iter()
            .map(|o| {
                sum.iter()
                    .find(|x| &x.arm == arm && &x.organ == o)
                    .and_then(|x| x.dice_mean.zip(x.dice_sd))
                    .map_or("–".into(), |(m, sd)| format!("{m:.3} ± {sd:.3}"))
            })
            .collect();
        let _ = writeln!(s, "| {arm} | {} |", cells.join(" | "));
    }
    head(&mut s, "HD95 mm (mean ± SD)");
    for (arm, _) in arms {
        let cells: Vec<String> = organs
            .iter()
            .map(|o| {
                let x = sum.iter().find(|x| &x.arm == arm && &x.organ == o);
                match x.and_then(|x| x.hd95_mean_mm.zip(x.hd95_sd_mm).map(|v| (v, x.hd95_seeds))) {
                    Some(((m, sd), n)) => {
                        let seeds = runs.iter().filter(|r| &r.arm == arm).count();
                        let note = if n < seeds {
                            format!(" ({n}/{seeds})")
                        } else {
                            String::new()
                        };
                        format!("{m:.1} ± {sd:.1}{note}")
                    }
                    None => "–".into(),
                }
            })
            .collect();
        let _ = writeln!(s, "| {arm} | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        s,
        "\n| arm | trained on | training slices | training time per seed (s, 2 cores) | lesion false positives per scan (mean) |\n|---|---|---|---|---|"
    );
    for (arm, what) in arms {
        let mine: Vec<&Run> = runs.iter().filter(|r| &r.arm == arm).collect();
        if mine.is_empty() {
            continue;
        }
        let t = mine.iter().map(|r| r.train_seconds).sum::<f64>() / mine.len() as f64;
        let fp = mine
            .iter()
            .map(|r| r.scores.lesion_false_positives as f64)
            .sum::<f64>()
            / mine.len() as f64;
        let _ = writeln!(
            s,
            "| {arm} | {what} | {} | {t:.0} | {fp:.1} |",
            mine[0].train_slices
        );
    }
    s
}

/// RGB of each class (background transparent).
const COLOURS: [[u8; 3]; N_CLASSES] = [
    [0, 0, 0],
    [220, 120, 60],
    [150, 60, 200],
    [240, 220, 40],
    [60, 160, 240],
    [230, 40, 60],
    [250, 90, 180],
    [0, 200, 200],
    [40, 230, 90],
];
const SCALE: usize = 3;
const COLUMNS: usize = 4;

/// Panels of one slice, `COLUMNS` per row: the CT (soft-tissue window) and then each
/// labelling (classes blended over the CT at 55 %).
pub fn picture(path: &Path, slice: &Slice, panels: &[&[u8]], c: Canvas) -> std::io::Result<()> {
    let (pw, ph) = (c.nx * SCALE, c.ny * SCALE);
    let n = panels.len() + 1;
    let rows = n.div_ceil(COLUMNS);
    let (w, h) = (COLUMNS * pw, rows * ph);
    let mut rgb = vec![0u8; w * h * 3];
    let plane = c.nx * c.ny;
    for panel in 0..n {
        let (ox, oy) = ((panel % COLUMNS) * pw, (panel / COLUMNS) * ph);
        for y in 0..ph {
            for x in 0..pw {
                // Radiological view (DICOM's orientation): anterior up, patient's right on
                // the left.
                let p = (c.ny - 1 - y / SCALE) * c.nx + (c.nx - 1 - x / SCALE);
                // Channel 1 is the soft-tissue window, [-1, 1].
                let g = ((slice.x[plane + p] + 1.0) * 127.5).clamp(0.0, 255.0);
                let mut px = [g; 3];
                if panel > 0 {
                    let k = panels[panel - 1][p] as usize;
                    if k > 0 && k < N_CLASSES {
                        for ch in 0..3 {
                            px[ch] = 0.45 * px[ch] + 0.55 * COLOURS[k][ch] as f32;
                        }
                    }
                }
                let o = ((oy + y) * w + ox + x) * 3;
                for ch in 0..3 {
                    rgb[o + ch] = px[ch] as u8;
                }
            }
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(std::io::Error::other)?;
    wr.write_image_data(&rgb).map_err(std::io::Error::other)?;
    Ok(())
}

/// The legend line for the picture's colours.
pub fn legend() -> String {
    CLASSES
        .iter()
        .zip(COLOURS)
        .skip(1)
        .map(|(n, c)| format!("{n} rgb({},{},{})", c[0], c[1], c[2]))
        .collect::<Vec<_>>()
        .join(", ")
}
