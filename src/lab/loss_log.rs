//! The training loss log `loss.csv`: one row per optimiser step, appended while training and
//! read back (csv crate) to resume, to report the smoothed final loss and to plot.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use synthcohort_ldm::train::{Stage, StepLog};

pub const HEADER: [&str; 7] = ["stage", "step", "loss", "l1", "grad_l1", "kl", "seconds"];

/// One row of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossRow {
    pub stage: String,
    pub step: usize,
    pub loss: f64,
    pub l1: f64,
    pub grad_l1: f64,
    pub kl: f64,
    pub seconds: f64,
}

pub fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Autoencoder => "autoencoder",
        Stage::Denoiser => "denoiser",
    }
}

impl LossRow {
    pub fn from_step(log: &StepLog, seconds: f64) -> LossRow {
        LossRow {
            stage: stage_name(log.stage).to_string(),
            step: log.step,
            loss: log.loss,
            l1: log.parts[0],
            grad_l1: log.parts[1],
            kl: log.parts[2],
            seconds,
        }
    }

    /// The row's fields as the log has always kept them (6 decimals, seconds 2).
    fn record(&self) -> [String; 7] {
        [
            self.stage.clone(),
            self.step.to_string(),
            format!("{:.6}", self.loss),
            format!("{:.6}", self.l1),
            format!("{:.6}", self.grad_l1),
            format!("{:.6}", self.kl),
            format!("{:.2}", self.seconds),
        ]
    }
}

/// Appends one step.
pub fn append<W: Write>(w: &mut csv::Writer<W>, log: &StepLog, seconds: f64) -> csv::Result<()> {
    w.write_record(LossRow::from_step(log, seconds).record())
}

/// The rows of a log; rows that do not parse (a run killed mid-write leaves at most one) are
/// skipped, a missing file is an empty log.
pub fn read(path: &Path) -> Vec<LossRow> {
    let Ok(mut r) = csv::ReaderBuilder::new().flexible(true).from_path(path) else {
        return Vec::new();
    };
    r.deserialize().filter_map(Result::ok).collect()
}

/// Writes `rows` as a whole log (header first).
pub fn write(path: &Path, rows: &[LossRow]) -> csv::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(HEADER)?;
    for r in rows {
        w.write_record(r.record())?;
    }
    w.flush()?;
    Ok(())
}

/// The rows a run resumed at (`stage`, `step`) keeps: every autoencoder row when resuming the
/// denoiser, and the resumed stage's rows up to `step`.
pub fn keep_until(rows: Vec<LossRow>, stage: Stage, step: usize) -> Vec<LossRow> {
    rows.into_iter()
        .filter(|r| match (r.stage.as_str(), stage) {
            ("autoencoder", Stage::Autoencoder) | ("denoiser", Stage::Denoiser) => r.step <= step,
            ("autoencoder", Stage::Denoiser) => true,
            _ => false,
        })
        .collect()
}

/// The training hooks' exponential moving average (0.98) replayed over a stage's rows, so a
/// resumed run reports the same final figure as an uninterrupted one.
pub fn smoothed(rows: &[LossRow], stage: &str) -> f64 {
    rows.iter()
        .filter(|r| r.stage == stage)
        .fold(0.0, |ema, r| {
            if ema == 0.0 {
                r.loss
            } else {
                0.98 * ema + 0.02 * r.loss
            }
        })
}

/// (step, loss) of one stage.
pub fn series(rows: &[LossRow], stage: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.stage == stage)
        .map(|r| (r.step as f64, r.loss))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stage: &str, step: usize, loss: f64) -> LossRow {
        LossRow {
            stage: stage.into(),
            step,
            loss,
            l1: 0.0,
            grad_l1: 0.0,
            kl: 0.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn round_trips_trims_and_skips_a_torn_last_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss.csv");
        let rows = vec![
            row("autoencoder", 1, 0.5),
            row("autoencoder", 2, 0.25),
            row("denoiser", 1, 1.0),
            row("denoiser", 2, 0.75),
        ];
        write(&p, &rows).unwrap();
        // A killed run: half a row at the end.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"denoiser,3,0.7").unwrap();
        let back = read(&p);
        assert_eq!(back.len(), 4);
        assert_eq!(smoothed(&back, "autoencoder"), 0.98 * 0.5 + 0.02 * 0.25);
        let kept = keep_until(back.clone(), Stage::Denoiser, 1);
        assert_eq!(kept.len(), 3);
        let kept = keep_until(back, Stage::Autoencoder, 1);
        assert_eq!(kept.len(), 1);
        assert_eq!(series(&kept, "autoencoder"), vec![(1.0, 0.5)]);
    }
}
