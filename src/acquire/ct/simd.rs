//! The shared AVX2 step of the projector and the backprojectors: linear interpolation of one
//! sample row at eight positions that lie close together.
//!
//! Both kernels interpolate a row at eight positions no more than ~14 samples apart (eight
//! neighbouring rays at one pixel plane, eight neighbouring pixels in one detector row). An
//! AVX2 gather costs several cycles per lane; loading the 17-sample window that holds all
//! sixteen neighbours and picking lanes with in-register permutes is a few cycles for all
//! eight, which is what makes the vector kernels worth having.

/// Whether the AVX2 + FMA kernels can run here (cached by `std`).
#[inline]
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Samples an interpolation window must have from its start: positions up to 15 past it,
/// plus the right neighbour of the last.
pub const WINDOW: usize = 17;

#[cfg(target_arch = "x86_64")]
pub use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `w[r] + f·(w[r + 1] − w[r])` per lane, with `w` the 17 samples at `win` and `r` the
    /// lane's offset into the window (0 ≤ r ≤ 15).
    ///
    /// # Safety
    /// `win` must be valid for reads of [`super::WINDOW`] `f32`s; the CPU must have AVX2 and
    /// FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn lerp_window(win: *const f32, r: __m256i, f: __m256) -> __m256 {
        // SAFETY: the caller guarantees 17 readable samples at `win`.
        let (a_lo, a_hi, b_lo, b_hi) = unsafe {
            (
                _mm256_loadu_ps(win),
                _mm256_loadu_ps(win.add(8)),
                _mm256_loadu_ps(win.add(1)),
                _mm256_loadu_ps(win.add(9)),
            )
        };
        // The permute reads the low three bits of r; bit 3 (moved to the sign) picks the half.
        let hi = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(r));
        let v0 = _mm256_blendv_ps(
            _mm256_permutevar8x32_ps(a_lo, r),
            _mm256_permutevar8x32_ps(a_hi, r),
            hi,
        );
        let v1 = _mm256_blendv_ps(
            _mm256_permutevar8x32_ps(b_lo, r),
            _mm256_permutevar8x32_ps(b_hi, r),
            hi,
        );
        _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0)
    }

    /// [`lerp_window`] for offsets 0 ≤ r ≤ 7: a 9-sample window, half the permutes.
    ///
    /// # Safety
    /// `win` must be valid for reads of 9 `f32`s; the CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn lerp_narrow(win: *const f32, r: __m256i, f: __m256) -> __m256 {
        // SAFETY: the caller guarantees 9 readable samples at `win`.
        let (a, b) = unsafe { (_mm256_loadu_ps(win), _mm256_loadu_ps(win.add(1))) };
        let v0 = _mm256_permutevar8x32_ps(a, r);
        let v1 = _mm256_permutevar8x32_ps(b, r);
        _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0)
    }

    /// The smaller of lanes 0 and 7: the window start for lanes ordered along the row.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn ends_min(k: __m256i) -> i32 {
        let first = _mm256_cvtsi256_si32(k);
        let last = _mm256_extract_epi32::<7>(k);
        first.min(last)
    }
}
