//! Coil combination of reconstructed (zero-filled) coil images into one magnitude image.
//! Both combinations take magnitudes of complex data, so background noise is Rayleigh /
//! χ-distributed, never Gaussian.

/// Running combination over coils for one slice.
pub enum Combiner {
    /// Σ|ρ_i|², square-rooted at the end (Larsson et al., MRM 2003).
    Rss(Vec<f32>),
    /// Σ c_i* ρ_i and Σ|c_i|²: |Σ c* ρ| / Σ|c|² (Roemer et al., MRM 1990, with the true maps).
    Sense {
        re: Vec<f32>,
        im: Vec<f32>,
        w: Vec<f32>,
    },
}

impl Combiner {
    pub fn new(sense: bool, n: usize) -> Combiner {
        if sense {
            Combiner::Sense {
                re: vec![0.0; n],
                im: vec![0.0; n],
                w: vec![0.0; n],
            }
        } else {
            Combiner::Rss(vec![0.0; n])
        }
    }

    /// Adds one coil image (re, im) with its sensitivity (c_re, c_im) on the output grid
    /// (ignored by RSS).
    pub fn add(&mut self, re: &[f32], im: &[f32], c_re: &[f32], c_im: &[f32]) {
        self.add_at(0, re, im, c_re, c_im);
    }

    /// [`Combiner::add`] for the pixels from `at` on (a piece of a coil image, e.g. a row).
    #[inline]
    pub fn add_at(&mut self, at: usize, re: &[f32], im: &[f32], c_re: &[f32], c_im: &[f32]) {
        let n = re.len();
        match self {
            Combiner::Rss(acc) => {
                for ((a, r), i) in acc[at..at + n].iter_mut().zip(re).zip(im) {
                    *a += r * r + i * i;
                }
            }
            Combiner::Sense { re: ar, im: ai, w } => {
                let (ar, ai, w) = (&mut ar[at..at + n], &mut ai[at..at + n], &mut w[at..at + n]);
                let (c_re, c_im, im) = (&c_re[..n], &c_im[..n], &im[..n]);
                for k in 0..n {
                    let (cr, ci) = (c_re[k], c_im[k]);
                    ar[k] += cr * re[k] + ci * im[k];
                    ai[k] += cr * im[k] - ci * re[k];
                    w[k] += cr * cr + ci * ci;
                }
            }
        }
    }

    /// The combined magnitude.
    pub fn finish(self) -> Vec<f32> {
        match self {
            Combiner::Rss(acc) => acc.into_iter().map(f32::sqrt).collect(),
            Combiner::Sense { re, im, w } => re
                .iter()
                .zip(&im)
                .zip(&w)
                .map(|((r, i), w)| {
                    if *w > 0.0 {
                        (r * r + i * i).sqrt() / w
                    } else {
                        0.0
                    }
                })
                .collect(),
        }
    }
}
