//! Small dense linear solves for the simulator's least-squares fits (water-correction
//! polynomial, aperture filter taps).

/// Solves the augmented system [A | b] (n rows of W = n + 1 values) in place by Gauss–Jordan
/// elimination with partial pivoting and returns x.
pub fn solve_augmented<const W: usize>(a: &mut [[f64; W]]) -> Vec<f64> {
    let n = a.len();
    debug_assert_eq!(
        W,
        n + 1,
        "augmented rows hold n coefficients and the right-hand side"
    );
    for c in 0..n {
        let piv = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        for r in 0..n {
            if r != c {
                let f = a[r][c] / a[c][c];
                let pivot_row = a[c];
                for (x, p) in a[r].iter_mut().zip(pivot_row.iter()).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|r| a[r][n] / a[r][r]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_system_that_needs_pivoting() {
        // 0·x + 2y = 4, 3x + y = 5 → x = 1, y = 2 (the first pivot is zero).
        let mut a = [[0.0, 2.0, 4.0], [3.0, 1.0, 5.0]];
        let x = solve_augmented(&mut a);
        assert!(
            (x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12,
            "{x:?}"
        );
    }
}
