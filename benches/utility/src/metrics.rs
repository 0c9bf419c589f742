//! Segmentation scores in 3D on the scored slices: Dice, the 95 % Hausdorff distance (as
//! MONAI's `compute_hausdorff_distance(percentile=95)`: the larger of the two directed 95th
//! percentiles of surface-to-surface distances, in mm) and lesion detection by connected
//! components.

/// A stack of label planes with its voxel size (mm, x y z).
pub struct Stack<'a> {
    pub data: &'a [u8],
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
}

/// Dice of class `c`; None when the class is in neither map (nothing to score).
pub fn dice(pred: &Stack, truth: &Stack, c: u8) -> Option<f64> {
    let (mut inter, mut p, mut t) = (0usize, 0usize, 0usize);
    for (&a, &b) in pred.data.iter().zip(truth.data) {
        let (a, b) = (a == c, b == c);
        inter += (a && b) as usize;
        p += a as usize;
        t += b as usize;
    }
    (p + t > 0).then(|| 2.0 * inter as f64 / (p + t) as f64)
}

/// Voxels of class `c` with a 6-neighbour outside it (or on the stack's edge), in mm.
fn surface(s: &Stack, c: u8) -> Vec<[f64; 3]> {
    let [nx, ny, nz] = s.dims;
    let at = |i: usize, j: usize, k: usize| s.data[(k * ny + j) * nx + i] == c;
    let mut out = Vec::new();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if !at(i, j, k) {
                    continue;
                }
                let edge = i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz;
                let border = edge
                    || !at(i - 1, j, k)
                    || !at(i + 1, j, k)
                    || !at(i, j - 1, k)
                    || !at(i, j + 1, k)
                    || !at(i, j, k - 1)
                    || !at(i, j, k + 1);
                if border {
                    out.push([
                        i as f64 * s.spacing_mm[0],
                        j as f64 * s.spacing_mm[1],
                        k as f64 * s.spacing_mm[2],
                    ]);
                }
            }
        }
    }
    out
}

/// 95th percentile of the distances from each point of `a` to its nearest point of `b`.
fn directed_p95(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let mut d: Vec<f64> = a
        .iter()
        .map(|p| {
            b.iter()
                .map(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2))
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect();
    d.sort_by(f64::total_cmp);
    // Linear interpolation between order statistics, as numpy's default percentile.
    let pos = 0.95 * (d.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    d[lo] + (d[hi] - d[lo]) * (pos - lo as f64)
}

/// HD95 of class `c` (mm); None when either map lacks the class (undefined, as in MONAI).
pub fn hd95(pred: &Stack, truth: &Stack, c: u8) -> Option<f64> {
    let (a, b) = (surface(pred, c), surface(truth, c));
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some(directed_p95(&a, &b).max(directed_p95(&b, &a)))
}

/// 26-connected components of class `c`: a component id per voxel (0 = not `c`) and the count.
pub fn components(s: &Stack, c: u8) -> (Vec<u32>, u32) {
    let [nx, ny, nz] = s.dims;
    let mut id = vec![0u32; s.data.len()];
    let mut n = 0u32;
    let mut stack = Vec::new();
    for start in 0..s.data.len() {
        if s.data[start] != c || id[start] != 0 {
            continue;
        }
        n += 1;
        id[start] = n;
        stack.push(start);
        while let Some(v) = stack.pop() {
            let (i, j, k) = (v % nx, (v / nx) % ny, v / (nx * ny));
            for dk in -1i64..=1 {
                for dj in -1i64..=1 {
                    for di in -1i64..=1 {
                        let (a, b, d) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                        if a < 0
                            || b < 0
                            || d < 0
                            || a >= nx as i64
                            || b >= ny as i64
                            || d >= nz as i64
                        {
                            continue;
                        }
                        let w = (d as usize * ny + b as usize) * nx + a as usize;
                        if s.data[w] == c && id[w] == 0 {
                            id[w] = n;
                            stack.push(w);
                        }
                    }
                }
            }
        }
    }
    (id, n)
}

/// Lesion detection: a true lesion (component of `c`) is found when a predicted component
/// overlaps it; a predicted component overlapping no true lesion is a false positive.
/// Returns (true lesions, found, false positives).
pub fn detection(pred: &Stack, truth: &Stack, c: u8) -> (u32, u32, u32) {
    let (pid, np) = components(pred, c);
    let (tid, nt) = components(truth, c);
    let mut found = vec![false; nt as usize + 1];
    let mut hits = vec![false; np as usize + 1];
    for (&p, &t) in pid.iter().zip(&tid) {
        if p > 0 && t > 0 {
            found[t as usize] = true;
            hits[p as usize] = true;
        }
    }
    let f = found.iter().skip(1).filter(|&&x| x).count() as u32;
    let fp = hits.iter().skip(1).filter(|&&x| !x).count() as u32;
    (nt, f, fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack of 1 mm isotropic voxels.
    fn iso(data: &[u8], dims: [usize; 3]) -> Stack<'_> {
        Stack {
            data,
            dims,
            spacing_mm: [1.0; 3],
        }
    }

    fn ball(dims: [usize; 3], r: f64, centre: [f64; 3]) -> Vec<u8> {
        let mut v = vec![0u8; dims[0] * dims[1] * dims[2]];
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    let d = ((i as f64 - centre[0]).powi(2)
                        + (j as f64 - centre[1]).powi(2)
                        + (k as f64 - centre[2]).powi(2))
                    .sqrt();
                    if d <= r {
                        v[(k * dims[1] + j) * dims[0] + i] = 1;
                    }
                }
            }
        }
        v
    }

    /// Concentric balls of radius 10 and 14 voxels (1 mm): HD95 = 4 mm (every surface point
    /// of the inner ball is 4 mm from the outer, within a voxel's discretisation);
    /// Dice = 2·10³/(10³ + 14³) = 0.534 analytically.
    #[test]
    fn concentric_balls_match_analytic_scores() {
        let dims = [40, 40, 40];
        let a = ball(dims, 10.0, [20.0; 3]);
        let b = ball(dims, 14.0, [20.0; 3]);
        let sa = iso(&a, dims);
        let sb = iso(&b, dims);
        let d = dice(&sa, &sb, 1).unwrap();
        let analytic = 2.0 * 1000.0 / (1000.0 + 14f64.powi(3));
        assert!((d - analytic).abs() < 0.02, "{d} vs {analytic}");
        let h = hd95(&sa, &sb, 1).unwrap();
        assert!((h - 4.0).abs() <= 1.0, "{h}");
        assert_eq!(dice(&sa, &sa, 1), Some(1.0));
        assert_eq!(hd95(&sa, &sa, 1), Some(0.0));
        assert_eq!(dice(&sa, &sb, 2), None);
        assert_eq!(hd95(&sa, &sb, 2), None);
    }

    /// Anisotropic voxels: a shift of 2 slices of 3 mm is 6 mm.
    #[test]
    fn hd95_uses_physical_spacing() {
        let dims = [30, 30, 30];
        let a = ball(dims, 6.0, [15.0, 15.0, 12.0]);
        let b = ball(dims, 6.0, [15.0, 15.0, 14.0]);
        let sa = Stack {
            data: &a,
            dims,
            spacing_mm: [1.0, 1.0, 3.0],
        };
        let sb = Stack {
            data: &b,
            dims,
            spacing_mm: [1.0, 1.0, 3.0],
        };
        let h = hd95(&sa, &sb, 1).unwrap();
        assert!(h > 3.0 && h <= 6.0 + 1e-9, "{h}");
    }

    #[test]
    fn detection_counts_found_lesions_and_false_positives() {
        let dims = [40, 20, 20];
        let mut truth = ball(dims, 3.0, [8.0, 10.0, 10.0]);
        for (t, s) in truth.iter_mut().zip(ball(dims, 3.0, [30.0, 10.0, 10.0])) {
            *t = (*t).max(s);
        }
        // One true lesion hit, one missed, one false positive far from both.
        let mut pred = ball(dims, 2.0, [9.0, 10.0, 10.0]);
        for (p, s) in pred.iter_mut().zip(ball(dims, 2.0, [20.0, 4.0, 4.0])) {
            *p = (*p).max(s);
        }
        let st = iso(&truth, dims);
        let sp = iso(&pred, dims);
        assert_eq!(detection(&sp, &st, 1), (2, 1, 1));
    }
}
