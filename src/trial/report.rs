//! The trial report: a plain Markdown table (renders on any code host, no HTML) and a
//! one-sentence conclusion carrying the numbers.

use serde::{Deserialize, Serialize};

use super::roc::{AucResult, PairedResult};

/// One arm's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmRow {
    pub arm: String,
    pub n_present: usize,
    pub n_absent: usize,
    pub auc: AucResult,
    /// Extra columns, in order, e.g. ("dose (mGy)", 3.2), ("CNR", 1.4), ("noise (HU)", 12.0).
    /// Every row should carry the same headers; the first row's headers are used.
    pub extra: Vec<(String, f64)>,
}

/// One arm pair's row: ΔAUC = AUC(arm_a) − AUC(arm_b).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub arm_a: String,
    pub arm_b: String,
    pub result: PairedResult,
}

/// Pipes would end a table cell early.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn f3(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

fn extra_value(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x != 0.0 && (x.abs() >= 1e4 || x.abs() < 1e-2) {
        format!("{x:.3e}")
    } else {
        format!("{x:.3}")
    }
}

/// "p < 0.001" below a thousandth, else three decimals.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("= {p:.3}")
    }
}

fn level(alpha: f64) -> String {
    let pct = 100.0 * (1.0 - alpha);
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0} %")
    } else {
        format!("{pct} %")
    }
}

/// The per-arm table: AUC, its DeLong and bootstrap CIs, d′ both ways, then `extra` columns.
pub fn arms_table(arms: &[ArmRow], alpha: f64) -> String {
    let lv = level(alpha);
    let extra_heads: Vec<&str> = arms
        .first()
        .map(|r| r.extra.iter().map(|(h, _)| h.as_str()).collect())
        .unwrap_or_default();
    let mut head = vec![
        "arm".to_string(),
        "present".into(),
        "absent".into(),
        "AUC".into(),
        "SE (DeLong)".into(),
        format!("{lv} CI (DeLong)"),
        format!("{lv} CI (bootstrap)"),
        "d′ (AUC)".into(),
        "d′ (scores)".into(),
    ];
    head.extend(extra_heads.iter().map(|h| cell(h)));
    let mut s = format!("| {} |\n", head.join(" | "));
    s += &format!("|{}\n", " --- |".repeat(head.len()));
    for r in arms {
        let a = &r.auc;
        let mut row = vec![
            cell(&r.arm),
            r.n_present.to_string(),
            r.n_absent.to_string(),
            f3(a.auc),
            f3(a.se_delong),
            format!("{} – {}", f3(a.ci_delong.0), f3(a.ci_delong.1)),
            format!("{} – {}", f3(a.ci_bootstrap.0), f3(a.ci_bootstrap.1)),
            f3(a.dprime_from_auc),
            f3(a.dprime_from_scores),
        ];
        for h in &extra_heads {
            let v = r
                .extra
                .iter()
                .find(|(k, _)| k == h)
                .map_or(f64::NAN, |(_, v)| *v);
            row.push(extra_value(v));
        }
        s += &format!("| {} |\n", row.join(" | "));
    }
    s
}

/// The arm-pair table: ΔAUC, its SE, CI, z and p from DeLong's paired test.
pub fn pairs_table(pairs: &[PairRow], alpha: f64) -> String {
    let mut s = format!(
        "| comparison | ΔAUC | SE | {} CI | z | p |\n| --- | --- | --- | --- | --- | --- |\n",
        level(alpha)
    );
    for p in pairs {
        let r = &p.result;
        s += &format!(
            "| {} − {} | {} | {} | {} – {} | {:.2} | {} |\n",
            cell(&p.arm_a),
            cell(&p.arm_b),
            f3(r.delta_auc),
            f3(r.se),
            f3(r.ci.0),
            f3(r.ci.1),
            r.z,
            format_p(r.p_value).trim_start_matches("= ")
        );
    }
    s
}

/// One sentence: the AUC range over arms and, for the arm pair with the smallest p-value,
/// ΔAUC with its CI and p, and whether it is significant at `alpha`.
pub fn conclusion(arms: &[ArmRow], pairs: &[PairRow], alpha: f64) -> String {
    let lv = level(alpha);
    let finite: Vec<&ArmRow> = arms.iter().filter(|r| r.auc.auc.is_finite()).collect();
    let best = finite.iter().max_by(|a, b| a.auc.auc.total_cmp(&b.auc.auc));
    let worst = finite.iter().min_by(|a, b| a.auc.auc.total_cmp(&b.auc.auc));
    let mut s = match (best, worst) {
        (Some(b), Some(w)) if finite.len() > 1 => format!(
            "AUC ranged from {} ({}) to {} ({}, {lv} CI {}–{})",
            f3(w.auc.auc),
            w.arm,
            f3(b.auc.auc),
            b.arm,
            f3(b.auc.ci_delong.0),
            f3(b.auc.ci_delong.1)
        ),
        (Some(b), _) => format!(
            "AUC was {} ({}, {lv} CI {}–{})",
            f3(b.auc.auc),
            b.arm,
            f3(b.auc.ci_delong.0),
            f3(b.auc.ci_delong.1)
        ),
        _ => "No arm had both signal-present and signal-absent cases".into(),
    };
    let key = pairs
        .iter()
        .filter(|p| p.result.p_value.is_finite())
        .min_by(|a, b| a.result.p_value.total_cmp(&b.result.p_value));
    if let Some(p) = key {
        let r = &p.result;
        let sig = if r.p_value < alpha {
            "statistically significant"
        } else {
            "not statistically significant"
        };
        let n_sig = pairs.iter().filter(|p| p.result.p_value < alpha).count();
        s += &format!(
            "; the difference {} − {} was ΔAUC = {} ({lv} CI {} to {}, p {}), {sig} at α = {alpha}",
            p.arm_a,
            p.arm_b,
            f3(r.delta_auc),
            f3(r.ci.0),
            f3(r.ci.1),
            format_p(r.p_value)
        );
        if pairs.len() > 1 {
            s += &format!(
                " ({n_sig} of {} arm pairs differ significantly, DeLong test, no multiplicity correction)",
                pairs.len()
            );
        }
    }
    s + "."
}

/// The whole report: title, a free-text description of what was run (observer, ROI size,
/// cases, folds, resamples), the two tables and the conclusion.
pub fn markdown_report(
    title: &str,
    description: &str,
    arms: &[ArmRow],
    pairs: &[PairRow],
    alpha: f64,
) -> String {
    let mut s = format!("# {title}\n\n");
    if !description.trim().is_empty() {
        s += description.trim_end();
        s += "\n\n";
    }
    s += "## Detection performance per arm\n\n";
    s += &arms_table(arms, alpha);
    if !pairs.is_empty() {
        s += "\n## Arm comparisons (DeLong, DeLong & Clarke-Pearson 1988)\n\n";
        s += &pairs_table(pairs, alpha);
    }
    s += "\n## Conclusion\n\n";
    s += &conclusion(arms, pairs, alpha);
    s += "\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(name: &str, auc: f64) -> ArmRow {
        ArmRow {
            arm: name.into(),
            n_present: 50,
            n_absent: 70,
            auc: AucResult {
                auc,
                se_delong: 0.03,
                ci_delong: (auc - 0.0588, auc + 0.0588),
                ci_bootstrap: (auc - 0.06, auc + 0.057),
                dprime_from_auc: 1.0,
                dprime_from_scores: 1.1,
            },
            extra: vec![("dose (mGy)".into(), 2.5)],
        }
    }

    #[test]
    fn report_has_tables_and_a_one_sentence_conclusion_with_the_numbers() {
        let arms = [arm("mas25", 0.71), arm("mas|100", 0.83)];
        let pairs = [PairRow {
            arm_a: "mas|100".into(),
            arm_b: "mas25".into(),
            result: PairedResult {
                delta_auc: 0.12,
                se: 0.04,
                z: 3.0,
                p_value: 0.0027,
                ci: (0.0416, 0.1984),
            },
        }];
        let md = markdown_report("Trial", "CHO, 10 channels.", &arms, &pairs, 0.05);
        assert!(md.contains("| arm | present | absent | AUC |"));
        assert!(md.contains("| mas\\|100 | 50 | 70 | 0.830 |"));
        assert!(md.contains("| 95 % CI (DeLong) |"));
        assert!(md.contains("| 2.500 |"));
        let c = conclusion(&arms, &pairs, 0.05);
        assert_eq!(c.matches(". ").count(), 0, "one sentence: {c}");
        assert!(c.contains("0.710") && c.contains("0.830") && c.contains("0.120"));
        assert!(c.contains("p = 0.003") && c.contains("statistically significant"));
        assert!(!c.contains("not statistically"));
        // Every table row has as many cells as the header.
        for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
            let counts: Vec<usize> = table.lines().map(|l| l.matches(" | ").count()).collect();
            assert!(counts.iter().all(|&c| c == counts[0]), "{table}");
        }
    }
}
