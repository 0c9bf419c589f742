//! The hand-written radix-2 FFT the CT ramp filter used before rustfft (synthcohort 0.2.0),
//! kept here only as the peer of `benches/fft.rs`.

/// Complex numbers as (re, im).
pub type C64 = (f64, f64);

/// Twiddles and bit-reversal table for one length, reused across rows.
pub struct Fft {
    n: usize,
    rev: Vec<usize>,
    tw: Vec<C64>,
}

impl Fft {
    /// `n` must be a power of two.
    pub fn new(n: usize) -> Fft {
        assert!(n.is_power_of_two(), "FFT length {n} is not a power of two");
        let bits = n.trailing_zeros();
        let rev = (0..n)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }
            })
            .collect();
        let tw = (0..n / 2)
            .map(|k| {
                let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                (a.cos(), a.sin())
            })
            .collect();
        Fft { n, rev, tw }
    }

    /// Forward transform (e^{−2πi kn/N}); `inverse` uses the conjugate twiddles and
    /// divides by N.
    pub fn run(&self, x: &mut [C64], inverse: bool) {
        let n = self.n;
        assert_eq!(x.len(), n);
        for i in 0..n {
            let j = self.rev[i];
            if i < j {
                x.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let step = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..len / 2 {
                    let (wr, wi) = self.tw[k * step];
                    let wi = if inverse { -wi } else { wi };
                    let (ar, ai) = x[start + k];
                    let (br, bi) = x[start + k + len / 2];
                    let (tr, ti) = (br * wr - bi * wi, br * wi + bi * wr);
                    x[start + k] = (ar + tr, ai + ti);
                    x[start + k + len / 2] = (ar - tr, ai - ti);
                }
            }
            len *= 2;
        }
        if inverse {
            let s = 1.0 / n as f64;
            for v in x.iter_mut() {
                v.0 *= s;
                v.1 *= s;
            }
        }
    }
}
