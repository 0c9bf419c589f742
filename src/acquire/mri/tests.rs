//! Whole-acquisition tests against physics: contrast, noise statistics, Gibbs, aliasing,
//! motion, bias, chemical shift, determinism.

use super::*;
use crate::tissue::{tissue, Relaxation};

/// Maps on `grid` from a function world point → relaxation (None = air).
fn maps_from(grid: Grid, f: impl Fn([f64; 3]) -> Option<(Relaxation, f32)>) -> MriMaps {
    let n = grid.len();
    let mut v: [Vec<f32>; 5] = std::array::from_fn(|_| vec![0f32; n]);
    #[allow(clippy::needless_range_loop)]
    for idx in 0..n {
        let [i, j, k] = grid.ijk(idx);
        let (r, ff) = f(grid.world(i, j, k)).unwrap_or((
            Relaxation {
                pd: 0.0,
                t1_ms: 1.0,
                t2_ms: 1.0,
                t2star_ms: 1.0,
            },
            0.0,
        ));
        v[0][idx] = r.pd as f32;
        v[1][idx] = r.t1_ms as f32;
        v[2][idx] = r.t2_ms as f32;
        v[3][idx] = r.t2star_ms as f32;
        v[4][idx] = ff;
    }
    let adc = Volume::filled(grid.clone(), 1.0f32);
    let [pd, t1, t2, t2s, ff] = v.map(|d| Volume::from_vec(grid.clone(), d));
    MriMaps {
        field_t: 3.0,
        pd,
        t1_ms: t1,
        t2_ms: t2,
        t2star_ms: t2s,
        fat_fraction: ff,
        adc_um2_ms: adc,
        chi_ppm: None,
    }
}

/// A flat tissue giving signal 1 in spin echo: PD 1, instant T1, no T2 decay.
fn flat() -> Relaxation {
    Relaxation {
        pd: 1.0,
        t1_ms: 1e-3,
        t2_ms: 1e9,
        t2star_ms: 1e9,
    }
}

fn base(matrix: [usize; 2], fov: [f64; 2], slice: f64) -> MriProtocol {
    let mut p = MriProtocol::default_for(Sequence::SpinEcho, 3.0);
    p.matrix = matrix;
    p.fov_mm = fov;
    p.slice_mm = slice;
    p.noise = false;
    p
}

/// A 105 mm disc of three flat regions (PD 1, 0.6, 0.8) on a 96² × 2.5 mm grid, for the
/// parallel-imaging tests.
fn banded_disc() -> MriMaps {
    let grid = Grid::centered([96, 96, 1], [2.5, 2.5, 5.0]);
    maps_from(grid, |w| {
        let pd = if w[0] < -30.0 {
            1.0
        } else if w[1] < 20.0 {
            0.6
        } else {
            0.8
        };
        (w[0].hypot(w[1]) < 105.0).then_some((Relaxation { pd, ..flat() }, 0.0))
    })
}

/// Per-pixel SD of the image over `n` noise replicas (seeds `seed0`…), noise on.
fn pixel_sd_over_replicas(maps: &MriMaps, p: &MriProtocol, n: u64, seed0: u64) -> Vec<f64> {
    let q = MriProtocol {
        noise: true,
        ..p.clone()
    };
    let len = maps.pd.grid.len();
    let (mut s1, mut s2) = (vec![0f64; len], vec![0f64; len]);
    for seed in 0..n {
        let img = acquire(maps, &q, seed0 + seed).unwrap().image;
        for (i, &v) in img.data.iter().enumerate() {
            s1[i] += v as f64;
            s2[i] += (v as f64).powi(2);
        }
    }
    let n = n as f64;
    (0..len)
        .map(|i| ((s2[i] - s1[i] * s1[i] / n) / (n - 1.0)).max(0.0).sqrt())
        .collect()
}

/// RMS difference of `img` from `reference` over the pixels `idx`, relative to `scale`.
fn rel_rmse(img: &Volume<f32>, reference: &Volume<f32>, idx: &[usize], scale: f64) -> f64 {
    let ss: f64 = idx
        .iter()
        .map(|&i| (img.data[i] as f64 - reference.data[i] as f64).powi(2))
        .sum();
    (ss / idx.len() as f64).sqrt() / scale
}

fn mean_sd(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

#[test]
fn contrast_orders_wm_gm_csf_and_flair_nulls_csf() {
    // Three vertical bands: WM (x < −32 mm), GM, CSF (x ≥ 32 mm).
    let grid = Grid::centered([64, 64, 2], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| {
        let name = if p[0] < -32.0 {
            "white_matter"
        } else if p[0] < 32.0 {
            "grey_matter"
        } else {
            "csf"
        };
        Some((tissue(name).mri_3t, 0.0))
    });
    let sample = |p: &MriProtocol| {
        let img = acquire(&maps, p, 1).unwrap().image;
        [8usize, 32, 56].map(|i| img.get(i, 32, 0) as f64)
    };
    let mut t1w = base([64, 64], [256.0, 256.0], 5.0);
    t1w.tr_ms = 500.0;
    t1w.te_ms = 15.0;
    let [wm, gm, csf] = sample(&t1w);
    eprintln!("T1w SE 500/15: WM {wm:.3} GM {gm:.3} CSF {csf:.3}");
    assert!(wm > gm && gm > csf);
    let mut t2w = t1w.clone();
    t2w.tr_ms = 4000.0;
    t2w.te_ms = 100.0;
    let [wm, gm, csf] = sample(&t2w);
    eprintln!("T2w SE 4000/100: WM {wm:.3} GM {gm:.3} CSF {csf:.3}");
    assert!(csf > gm && gm > wm);
    let mut flair = MriProtocol::default_for(Sequence::Flair, 3.0);
    flair.matrix = [64, 64];
    flair.noise = false;
    let [wm, gm, csf] = sample(&flair);
    eprintln!(
        "FLAIR TI {:.0}: WM {wm:.3} GM {gm:.3} CSF {csf:.2e}",
        flair.ti_ms.unwrap()
    );
    assert!(csf < 0.01 * gm && wm > 0.05);
    // Grey matter above white matter in FLAIR, as on every clinical FLAIR (Stanisz T1/T2).
    assert!(gm > wm, "FLAIR GM {gm} vs WM {wm}");
    // With noise on, CSF is within noise of zero: a Rayleigh background.
    flair.noise = true;
    let img = acquire(&maps, &flair, 2).unwrap().image;
    let csf_px: Vec<f32> = (0..64)
        .flat_map(|j| (50..62).map(move |i| (i, j)))
        .map(|(i, j)| img.get(i, j, 0))
        .collect();
    let sigma = noise::noise_sigma(&flair);
    let (m, _) = mean_sd(&csf_px);
    eprintln!(
        "FLAIR CSF mean {m:.4} vs Rayleigh {:.4}",
        sigma * (std::f64::consts::PI / 2.0).sqrt()
    );
    assert!((m / (sigma * (std::f64::consts::PI / 2.0).sqrt()) - 1.0).abs() < 0.1);
}

#[test]
fn background_noise_is_rayleigh_and_chi_for_rss() {
    let grid = Grid::centered([128, 128, 4], [2.0, 2.0, 5.0]);
    let maps = maps_from(grid, |_| None);
    for coils in [1usize, 8] {
        let mut p = base([128, 128], [256.0, 256.0], 5.0);
        p.noise = true;
        p.coils = coils;
        let img = acquire(&maps, &p, 3).unwrap().image;
        let sigma = noise::noise_sigma(&p);
        let (m, sd) = mean_sd(&img.data);
        let (tm, tsd) = noise::central_chi_mean_sd(sigma, coils);
        eprintln!("{coils} coil(s): mean {m:.5} (theory {tm:.5}), SD {sd:.5} (theory {tsd:.5}), σ {sigma:.5}");
        assert!((m / tm - 1.0).abs() < 0.03 && (sd / tsd - 1.0).abs() < 0.03);
    }
}

#[test]
fn snr_scales_with_sqrt_nex() {
    let grid = Grid::centered([64, 64, 2], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |_| Some((flat(), 0.0)));
    let snr = |nex: u32| {
        let mut p = base([64, 64], [256.0, 256.0], 5.0);
        p.noise = true;
        p.snr = 1.0; // low SNR so the noise is well measured
        p.nex = nex;
        let img = acquire(&maps, &p, 4).unwrap().image;
        let (m, sd) = mean_sd(&img.data);
        m / sd
    };
    let (a, b) = (snr(1), snr(4));
    eprintln!("SNR NEX 1 {a:.2}, NEX 4 {b:.2}, ratio {:.3}", b / a);
    assert!((b / a - 2.0).abs() < 0.15);
}

/// SNR measured in the image (mean / SD over a flat object) as the receiver bandwidth halves
/// and as the matrix doubles at a fixed FOV: √2, and ¼ (voxel area) × √2 (phase lines).
#[test]
fn snr_follows_bandwidth_and_matrix() {
    let grid = Grid::centered([64, 64, 2], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |_| Some((flat(), 0.0)));
    let snr = |matrix: usize, bw: f64| {
        let mut p = base([matrix, matrix], [256.0, 256.0], 5.0);
        p.noise = true;
        p.snr = 2.0;
        p.bandwidth_hz_per_px = bw;
        let img = acquire(&maps, &p, 5).unwrap().image;
        let (m, sd) = mean_sd(&img.data);
        m / sd
    };
    let base_snr = snr(64, 200.0);
    let half_bw = snr(64, 100.0);
    let double_matrix = snr(128, 200.0);
    let (r_bw, r_mx) = (half_bw / base_snr, double_matrix / base_snr);
    eprintln!(
        "SNR 64² 200 Hz/px {base_snr:.2}; 100 Hz/px {half_bw:.2} (ratio {r_bw:.3}, predicted {:.3}); \
         128² {double_matrix:.2} (ratio {r_mx:.3}, predicted {:.3})",
        2f64.sqrt(),
        0.25 * 2f64.sqrt()
    );
    assert!(
        (r_bw / 2f64.sqrt() - 1.0).abs() < 0.05,
        "bandwidth ratio {r_bw}"
    );
    assert!(
        (r_mx / (0.25 * 2f64.sqrt()) - 1.0).abs() < 0.05,
        "matrix ratio {r_mx}"
    );
}

#[test]
fn truncated_edge_rings_with_gibbs_overshoot() {
    // 0.5 mm object, 4 mm pixels: the readout keeps 1/8 of the object's spectrum.
    let grid = Grid::centered([512, 8, 1], [0.5, 8.0, 5.0]);
    // Edges at ±62 mm lie on output pixel centres, so the sample one pixel inside sits on
    // the first Gibbs maximum (at 1/(2 k_max) = one pixel from the edge).
    let maps = maps_from(grid, |p| (p[0].abs() < 62.0).then_some((flat(), 0.0)));
    let p = base([64, 8], [256.0, 64.0], 5.0);
    let r = acquire(&maps, &p, 5).unwrap();
    assert_eq!(r.applied["oversampling"], json!([8, 1]));
    let row: Vec<f32> = (0..64).map(|i| r.image.get(i, 4, 0)).collect();
    let max = row.iter().cloned().fold(0.0f32, f32::max) as f64;
    let plateau = row[32] as f64;
    let overshoot = max / plateau - 1.0;
    eprintln!(
        "Gibbs overshoot {:.2} % (theory 8.95 % of the jump)",
        100.0 * overshoot
    );
    assert!((overshoot - 0.0895).abs() < 0.012);
}

#[test]
fn regular_undersampling_aliases_at_fov_over_r() {
    let grid = Grid::centered([64, 64, 1], [4.0, 4.0, 5.0]);
    // A 3×3-pixel block centred at pixel (32, 40).
    let maps = maps_from(grid.clone(), |p| {
        let v = grid.to_voxel(p);
        ((v[0] - 32.0).abs() < 1.5 && (v[1] - 40.0).abs() < 1.5).then_some((flat(), 0.0))
    });
    for r in [2usize, 4] {
        let mut p = base([64, 64], [256.0, 256.0], 5.0);
        p.undersampling = Some(Undersampling {
            factor: r as f64,
            pattern: SamplingPattern::Regular,
            center_lines: 0,
        });
        let res = acquire(&maps, &p, 6).unwrap();
        let col: Vec<f32> = (0..64).map(|j| res.image.get(32, j, 0)).collect();
        let mut peaks: Vec<usize> = (0..64).filter(|&j| col[j] > 0.5 / r as f32 * 0.9).collect();
        peaks.sort();
        let want: Vec<usize> = {
            let mut w: Vec<usize> = (0..r)
                .flat_map(|k| [39, 40, 41].map(|j| (j + k * 64 / r) % 64))
                .collect();
            w.sort();
            w
        };
        eprintln!(
            "R {r}: alias rows {peaks:?} (FOV/R = {} px), peak {:.3}",
            64 / r,
            col[40]
        );
        assert_eq!(peaks, want);
        assert!((col[40] - 1.0 / r as f32).abs() < 0.02);
        assert_eq!(
            res.mask
                .as_ref()
                .unwrap()
                .iter()
                .filter(|&&m| m == 1)
                .count(),
            64 / r
        );
    }
}

#[test]
fn rigid_shift_on_all_lines_moves_the_image_and_bias_stays_in_range() {
    let grid = Grid::centered([64, 64, 4], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| {
        (p[0].abs() < 50.0 && (p[1] - 10.0).abs() < 30.0).then_some((flat(), 0.0))
    });
    let p0 = base([64, 64], [256.0, 256.0], 5.0);
    let still = acquire(&maps, &p0, 7).unwrap().image;
    let mut p = p0.clone();
    p.artifacts.motion = Some(Motion {
        translation_mm: [8.0, -12.0, 0.0],
        rotation_deg: [0.0; 3],
        fraction_of_lines: 1.0,
    });
    let moved = acquire(&maps, &p, 7).unwrap().image;
    let mut worst = 0.0f32;
    for k in 0..4 {
        for j in 3..61 {
            for i in 0..62 {
                worst = worst.max((moved.get(i + 2, j - 3, k) - still.get(i, j, k)).abs());
            }
        }
    }
    eprintln!("motion (8, −12) mm on all lines: max |moved − shifted still| = {worst:.2e}");
    assert!(worst < 1e-4);
    // Half the lines moved: ghosting/blurring, not a shift.
    p.artifacts.motion.as_mut().unwrap().fraction_of_lines = 0.5;
    let half = acquire(&maps, &p, 7).unwrap();
    assert_eq!(half.applied["motion"]["moved_lines"], 32);
    // Bias field.
    let mut pb = p0.clone();
    pb.artifacts.bias_field = Some(0.3);
    let biased = acquire(&maps, &pb, 8).unwrap().image;
    let ratios: Vec<f32> = biased
        .data
        .iter()
        .zip(&still.data)
        .filter(|(_, &s)| s > 0.99)
        .map(|(b, s)| b / s)
        .collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, c), &x| (a.min(x), c.max(x)));
    eprintln!("bias 0.3: image ratio in [{lo:.4}, {hi:.4}]");
    assert!(lo >= 0.85 - 1e-4 && hi <= 1.15 + 1e-4 && hi - lo > 0.05);
}

#[test]
fn fat_shifts_along_readout_by_chemical_shift_over_bandwidth() {
    let grid = Grid::centered([64, 64, 1], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| {
        (p[0].abs() < 20.0 && p[1].abs() < 20.0).then_some((tissue("fat").mri_3t, 1.0))
    });
    let mut p = base([64, 64], [256.0, 256.0], 5.0);
    let fat_hz = protocol::ppm_to_hz(protocol::FAT_SHIFT_PPM, 3.0);
    p.bandwidth_hz_per_px = fat_hz.abs() / 2.0;
    let centroid = |p: &MriProtocol| {
        let img = acquire(&maps, p, 9).unwrap().image;
        let (s, w) = (0..64).fold((0.0, 0.0), |(s, w), i| {
            (
                s + i as f64 * img.get(i, 32, 0) as f64,
                w + img.get(i, 32, 0) as f64,
            )
        });
        s / w
    };
    let c0 = centroid(&p);
    p.artifacts.chemical_shift = true;
    let c1 = centroid(&p);
    eprintln!("fat centroid shift {:.3} px (expected −2)", c1 - c0);
    assert!((c1 - c0 + 2.0).abs() < 0.05);
}

#[test]
fn ghost_spike_offresonance_and_readout_axis() {
    let grid = Grid::centered([64, 64, 2], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid.clone(), |p| {
        let v = grid.to_voxel(p);
        ((v[0] - 20.0).abs() < 1.5 && (v[1] - 10.0).abs() < 1.5).then_some((flat(), 0.0))
    });
    let mut p = base([64, 64], [256.0, 256.0], 5.0);
    let plain = acquire(&maps, &p, 10).unwrap().image;
    // Readout along y gives the same noiseless image.
    let mut py = p.clone();
    py.readout = ReadoutAxis::Y;
    let alt = acquire(&maps, &py, 10).unwrap().image;
    assert!(plain
        .data
        .iter()
        .zip(&alt.data)
        .all(|(a, b)| (a - b).abs() < 1e-5));
    p.artifacts.ghosting = Some(0.1);
    let gh = acquire(&maps, &p, 10).unwrap().image;
    eprintln!(
        "ghost: main {:.3} ghost at +FOV/2 {:.3}",
        gh.get(20, 10, 0),
        gh.get(20, 42, 0)
    );
    assert!((gh.get(20, 42, 0) - 0.1).abs() < 1e-3 && (gh.get(20, 10, 0) - 0.9).abs() < 1e-3);
    let mut ps = base([64, 64], [256.0, 256.0], 5.0);
    ps.artifacts.spike = Some(0.5);
    let sp = acquire(&maps, &ps, 11).unwrap();
    assert!(sp.applied["spike"]["kx"].is_i64());
    // Away from the object the spike is a plane wave of amplitude intensity · |DC| / N.
    let want = 0.5 * plain.data[..64 * 64].iter().map(|&v| v as f64).sum::<f64>() / (64.0 * 64.0);
    let bg = sp.image.get(50, 50, 0) as f64;
    eprintln!("spike: background {bg:.5}, expected plane-wave amplitude {want:.5}");
    assert!((bg / want - 1.0).abs() < 0.01);
    let mut pb = base([64, 64], [256.0, 256.0], 5.0);
    pb.sequence = Sequence::SpoiledGre;
    pb.te_ms = 2.3;
    pb.tr_ms = 250.0;
    pb.flip_deg = 70.0;
    pb.artifacts.b0_offresonance_ppm = Some(2.0);
    let b0 = acquire(&maps, &pb, 12).unwrap();
    assert!(
        b0.applied["b0_offresonance"]["max_shift_px"]
            .as_f64()
            .unwrap()
            > 1.0
    );
}

#[test]
fn multicoil_combinations_preserve_the_object_and_runs_are_deterministic() {
    let grid = Grid::centered([64, 64, 3], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| (p[0].hypot(p[1]) < 90.0).then_some((flat(), 0.0)));
    let mut p = base([64, 64], [256.0, 256.0], 5.0);
    p.coils = 8;
    p.combine = Combine::Sense;
    let sense = acquire(&maps, &p, 13).unwrap().image;
    assert!((sense.get(32, 32, 1) - 1.0).abs() < 1e-3 && (sense.get(12, 32, 1) - 1.0).abs() < 1e-3);
    p.combine = Combine::Rss;
    let rss = acquire(&maps, &p, 13).unwrap().image;
    // Σ|c|² = 1 at the isocentre, larger towards the coils.
    assert!((rss.get(32, 32, 1) - 1.0).abs() < 0.02 && rss.get(12, 32, 1) > rss.get(32, 32, 1));
    p.noise = true;
    p.export_kspace = true;
    let a = acquire(&maps, &p, 14).unwrap();
    let b = acquire(&maps, &p, 14).unwrap();
    let c = acquire(&maps, &p, 15).unwrap();
    assert_eq!(a.image.data, b.image.data);
    assert_ne!(a.image.data, c.image.data);
    let k = a.kspace.unwrap();
    assert_eq!(
        (k.coils, k.dims, k.data.len()),
        (8, [64, 64, 3], 8 * 64 * 64 * 3)
    );
}

#[test]
fn exported_kspace_is_the_orthonormal_spectrum() {
    let grid = Grid::centered([32, 32, 1], [8.0, 8.0, 5.0]);
    let maps = maps_from(grid, |p| {
        (p[0].abs() < 40.0 && p[1].abs() < 60.0).then_some((flat(), 0.0))
    });
    let mut p = base([32, 32], [256.0, 256.0], 5.0);
    p.export_kspace = true;
    let r = acquire(&maps, &p, 16).unwrap();
    let k = r.kspace.unwrap();
    let dc = k.data[16 * 32 + 16];
    let sum: f64 = r.image.data.iter().map(|&v| v as f64).sum();
    assert!((dc[0] as f64 - sum / 32.0).abs() < 1e-3 * sum && dc[1].abs() < 1e-3);
}

#[test]
fn image_domain_shortcut_matches_the_kspace_path() {
    // Partial motion (with a through-slice part), a spike and 8 coils, noise off: the direct
    // image-domain path (coil groups sharing a transform pair, the spike's closed form) and
    // the k-space path that exporting forces give the same image, for both combinations.
    let grid = Grid::centered([64, 48, 4], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| {
        (p[0].hypot(1.3 * p[1]) < 80.0 || (p[0] - 60.0).hypot(p[1]) < 20.0).then_some((flat(), 0.0))
    });
    let mut p = base([64, 48], [256.0, 192.0], 5.0);
    p.coils = 8;
    p.artifacts.motion = Some(Motion {
        translation_mm: [6.0, -4.0, 2.0],
        rotation_deg: [0.0, 2.0, 5.0],
        fraction_of_lines: 0.4,
    });
    p.artifacts.spike = Some(0.3);
    for combine in [Combine::Rss, Combine::Sense] {
        p.combine = combine;
        p.export_kspace = false;
        let direct = acquire(&maps, &p, 21).unwrap().image;
        p.export_kspace = true;
        let kspace = acquire(&maps, &p, 21).unwrap().image;
        let peak = kspace.data.iter().fold(0.0f32, |a, &v| a.max(v));
        let worst = direct
            .data
            .iter()
            .zip(&kspace.data)
            .fold(0.0f32, |a, (x, y)| a.max((x - y).abs()));
        assert!(worst < 1e-4 * peak, "{combine:?}: {worst} of {peak}");
    }
}

/// SENSE R = 2 and 3 with 8 coils: the unfolded image against the fully sampled one
/// (noise-free), and the noise it carries, measured pixel by pixel over noise replicas,
/// against the analytic g-factor of the same coil maps: σ_R / (σ_1 √R) = g.
#[test]
fn sense_unfolds_regular_undersampling_and_its_noise_follows_the_g_factor() {
    let maps = banded_disc();
    let inside: Vec<usize> = (0..96 * 96)
        .filter(|&i| {
            let w = maps.pd.grid.world(i % 96, i / 96, 0);
            w[0].hypot(w[1]) < 100.0
        })
        .collect();
    let mut p = base([96, 96], [240.0, 240.0], 5.0);
    p.coils = 8;
    p.combine = Combine::Sense;
    p.snr = 50.0;
    let full = acquire(&maps, &p, 1).unwrap().image;
    let replicas = |p: &MriProtocol| pixel_sd_over_replicas(&maps, p, 48, 100);
    let sd_full = replicas(&p);
    let mean_full = inside.iter().map(|&i| full.data[i] as f64).sum::<f64>() / inside.len() as f64;
    for r in [2usize, 3] {
        let mut q = p.clone();
        q.undersampling = Some(Undersampling {
            factor: r as f64,
            pattern: SamplingPattern::Regular,
            center_lines: 16,
        });
        q.g_factor_map = true;
        assert!(q.validate().is_empty(), "{:?}", q.validate());
        let res = acquire(&maps, &q, 1).unwrap();
        let rmse = |img: &Volume<f32>| rel_rmse(img, &full, &inside, mean_full);
        let unfolded = rmse(&res.image);
        let mut rss = q.clone();
        rss.combine = Combine::Rss;
        rss.g_factor_map = false;
        let aliased = rmse(&acquire(&maps, &rss, 1).unwrap().image);
        let g = res.g_factor.expect("g-factor map requested");
        let sd_r = replicas(&q);
        let (mut g_meas, mut g_pred) = (0.0, 0.0);
        for &i in &inside {
            g_meas += sd_r[i] / (sd_full[i] * (r as f64).sqrt());
            g_pred += g.data[i] as f64;
        }
        g_meas /= inside.len() as f64;
        g_pred /= inside.len() as f64;
        let g_max = inside.iter().map(|&i| g.data[i]).fold(0f32, f32::max);
        eprintln!(
            "SENSE R = {r}, 8 coils: RMSE vs full {:.4} % of the mean (zero-filled RSS {:.1} %); \
             g-factor mean measured {g_meas:.3}, analytic {g_pred:.3} (max {g_max:.2})",
            100.0 * unfolded,
            100.0 * aliased
        );
        assert!(unfolded < 0.005, "R {r}: unfolded RMSE {unfolded}");
        assert!(
            aliased > 0.05,
            "R {r}: zero-filled RSS should alias: {aliased}"
        );
        assert!(
            (g_meas / g_pred - 1.0).abs() < 0.05,
            "R {r}: g {g_meas} vs {g_pred}"
        );
        assert!(g_pred >= 1.0);
    }
    // R larger than the coils is refused.
    let mut q = p.clone();
    q.coils = 2;
    q.undersampling = Some(Undersampling {
        factor: 3.0,
        pattern: SamplingPattern::Regular,
        center_lines: 0,
    });
    assert!(q
        .validate()
        .iter()
        .any(|(f, m)| f == "undersampling.factor" && m.contains("exceed the coils")));
}

/// 5/8 partial Fourier, 8 coils (each with its own phase roll), noise-free: the homodyne
/// image against the fully sampled one, beside zero filling.
#[test]
fn homodyne_restores_partial_fourier_better_than_zero_filling() {
    let grid = Grid::centered([128, 128, 1], [2.0, 2.0, 5.0]);
    let maps = maps_from(grid, |w| {
        let r = w[0].hypot(w[1]);
        let pd = if (w[1] / 12.0).floor() as i64 % 2 == 0 {
            1.0
        } else {
            0.6
        };
        (r < 100.0).then_some((Relaxation { pd, ..flat() }, 0.0))
    });
    let mut p = base([128, 128], [256.0, 256.0], 5.0);
    p.coils = 8;
    let full = acquire(&maps, &p, 1).unwrap().image;
    let inside: Vec<usize> = (0..128 * 128).filter(|&i| full.data[i] > 0.3).collect();
    let mean = inside.iter().map(|&i| full.data[i] as f64).sum::<f64>() / inside.len() as f64;
    let err = |recon: PartialFourierRecon| {
        let mut q = p.clone();
        q.partial_fourier = 5.0 / 8.0;
        q.partial_fourier_recon = recon;
        let img = acquire(&maps, &q, 1).unwrap().image;
        rel_rmse(&img, &full, &inside, mean)
    };
    let (zf, hd) = (
        err(PartialFourierRecon::ZeroFill),
        err(PartialFourierRecon::Homodyne),
    );
    eprintln!(
        "5/8 partial Fourier, 8 coils: RMSE vs full {:.2} % zero-filled, {:.2} % homodyne",
        100.0 * zf,
        100.0 * hd
    );
    assert!(hd < 0.5 * zf, "homodyne {hd} vs zero fill {zf}");
}

/// GRAPPA R = 2 and 3, 8 coils, 24 calibration lines, noise-free: the residual aliasing
/// energy (‖image − fully sampled‖² / ‖fully sampled‖², both RSS) beside the zero-filled
/// image of the same lines.
#[test]
fn grappa_removes_most_of_the_aliasing_energy() {
    let maps = banded_disc();
    let mut p = base([96, 96], [240.0, 240.0], 5.0);
    p.coils = 8;
    let full = acquire(&maps, &p, 1).unwrap().image;
    let energy = |img: &Volume<f32>| {
        let num: f64 = img
            .data
            .iter()
            .zip(&full.data)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        num / full.data.iter().map(|&b| (b as f64).powi(2)).sum::<f64>()
    };
    for r in [2.0, 3.0] {
        let mut q = p.clone();
        q.undersampling = Some(Undersampling {
            factor: r,
            pattern: SamplingPattern::Regular,
            center_lines: 24,
        });
        let zero_filled = energy(&acquire(&maps, &q, 1).unwrap().image);
        q.combine = Combine::Grappa;
        assert!(q.validate().is_empty(), "{:?}", q.validate());
        let grappa = energy(&acquire(&maps, &q, 1).unwrap().image);
        eprintln!(
            "GRAPPA R = {r}, 8 coils, 24 ACS lines: residual aliasing energy {:.2e} % (zero-filled {:.2} %)",
            100.0 * grappa,
            100.0 * zero_filled
        );
        assert!(
            grappa < 0.1 * zero_filled,
            "R {r}: {grappa} vs {zero_filled}"
        );
    }
    let mut q = p.clone();
    q.combine = Combine::Grappa;
    assert!(q.validate().iter().any(|(f, _)| f == "undersampling"));
}

/// DWI at b = 1000 s/mm² (TR 5000, TE 80, one coil, high SNR): the ADC map computed from the
/// b = 0 and b = 1000 magnitude images gives each tissue's table ADC back within 5 %; a
/// negative b is refused.
#[test]
fn dwi_adc_map_recovers_each_tissue_adc() {
    use crate::tissue::diffusion::adc_um2_ms;
    let names = ["white_matter", "grey_matter", "csf", "liver", "kidney"];
    let grid = Grid::centered([100, 20, 1], [2.0, 2.0, 5.0]);
    let band = |x: f64| (((x + 100.0) / 40.0).floor() as usize).min(names.len() - 1);
    let mut maps = maps_from(grid.clone(), |w| {
        Some((tissue(names[band(w[0])]).mri_3t, 0.0))
    });
    for (idx, v) in maps.adc_um2_ms.data.iter_mut().enumerate() {
        let [i, j, k] = grid.ijk(idx);
        *v = adc_um2_ms(names[band(grid.world(i, j, k)[0])]) as f32;
    }
    let mut p = MriProtocol::default_for(Sequence::Dwi, 3.0);
    p.matrix = [100, 20];
    p.fov_mm = [200.0, 40.0];
    p.slice_mm = 5.0;
    p.snr = 2000.0;
    p.adc_map = true;
    // Spin-echo readout, then single-shot SE-EPI as clinical DWI runs (T2/T2′ filter
    // k-space along the phase axis in both the b = 0 and the b image).
    for epi in [false, true] {
        p.epi = epi;
        p.bandwidth_hz_per_px = if epi { 1500.0 } else { 200.0 };
        assert!(p.validate().is_empty(), "{:?}", p.validate());
        let res = acquire(&maps, &p, 3).unwrap();
        let adc = res.adc.expect("ADC map requested");
        for (t, name) in names.iter().enumerate() {
            // The band's central columns, away from its edges (Gibbs, partial volume).
            let px: Vec<f32> = (0..20)
                .flat_map(|j| (20 * t + 6..20 * t + 14).map(move |i| (i, j)))
                .map(|(i, j)| adc.get(i, j, 0))
                .collect();
            let (m, _) = mean_sd(&px);
            let want = adc_um2_ms(name);
            eprintln!("DWI b 1000 (EPI: {epi}): {name} ADC {m:.3} µm²/ms (table {want:.2})");
            assert!((m / want - 1.0).abs() < 0.05, "{name}: ADC {m} vs {want}");
        }
    }
    let mut bad = p.clone();
    bad.b_value_s_mm2 = -100.0;
    assert!(bad.validate().iter().any(|(f, _)| f == "b_value_s_mm2"));
}

/// Correlated coil noise (ρ = 0.3 between ring neighbours, 8 coils): the noise covariance
/// measured across the coils' exported k-space is the protocol's Ψ, and SENSE R = 2 — now
/// prewhitened with Ψ — still carries the noise its analytic g-factor predicts.
#[test]
fn coil_noise_covariance_is_drawn_and_prewhitened() {
    let grid = Grid::centered([64, 64, 12], [4.0, 4.0, 5.0]);
    let air = maps_from(grid, |_| None);
    let mut p = base([64, 64], [256.0, 256.0], 5.0);
    p.noise = true;
    p.coils = 8;
    p.coil_noise_correlation = 0.3;
    p.export_kspace = true;
    assert!(p.validate().is_empty(), "{:?}", p.validate());
    let k = acquire(&air, &p, 9).unwrap().kspace.unwrap();
    let per_coil = k.data.len() / k.coils;
    let psi = noise::coil_noise_covariance(&p);
    let var: Vec<f64> = (0..k.coils)
        .map(|c| {
            k.data[c * per_coil..(c + 1) * per_coil]
                .iter()
                .map(|v| (v[0] as f64).powi(2) + (v[1] as f64).powi(2))
                .sum::<f64>()
        })
        .collect();
    let mut worst = 0.0f64;
    for a in 0..k.coils {
        for b in 0..k.coils {
            // Re E[n_a n_b*] / √(var_a var_b).
            let cov: f64 = (0..per_coil)
                .map(|i| {
                    let (x, y) = (k.data[a * per_coil + i], k.data[b * per_coil + i]);
                    x[0] as f64 * y[0] as f64 + x[1] as f64 * y[1] as f64
                })
                .sum();
            let corr = cov / (var[a] * var[b]).sqrt();
            worst = worst.max((corr - psi[a * k.coils + b]).abs());
        }
    }
    eprintln!("coil noise correlation (ρ 0.3, 8 coils): worst |measured − Ψ| = {worst:.4}");
    // 49 152 complex samples per coil: each correlation's SD ≈ 1/√(2·49 152) = 0.003.
    assert!(worst < 0.015, "noise covariance off by {worst}");
    // SENSE with the correlated noise, prewhitened.
    let maps = banded_disc();
    let mut q = base([96, 96], [240.0, 240.0], 5.0);
    q.coils = 8;
    q.combine = Combine::Sense;
    q.snr = 50.0;
    q.coil_noise_correlation = 0.3;
    let inside: Vec<usize> = (0..96 * 96)
        .filter(|&i| {
            let w = maps.pd.grid.world(i % 96, i / 96, 0);
            w[0].hypot(w[1]) < 100.0
        })
        .collect();
    let sd = |q: &MriProtocol| pixel_sd_over_replicas(&maps, q, 48, 300);
    let sd_full = sd(&q);
    q.undersampling = Some(Undersampling {
        factor: 2.0,
        pattern: SamplingPattern::Regular,
        center_lines: 0,
    });
    q.g_factor_map = true;
    let g = acquire(&maps, &q, 1).unwrap().g_factor.unwrap();
    let sd_r = sd(&q);
    let (mut meas, mut pred) = (0.0, 0.0);
    for &i in &inside {
        meas += sd_r[i] / (sd_full[i] * 2f64.sqrt());
        pred += g.data[i] as f64;
    }
    let (meas, pred) = (meas / inside.len() as f64, pred / inside.len() as f64);
    eprintln!("SENSE R 2 with correlated coil noise: g measured {meas:.3}, analytic {pred:.3}");
    assert!((meas / pred - 1.0).abs() < 0.05, "g {meas} vs {pred}");
}

/// |inverse 2D DFT| of a k-space whose line ky (DFT order) is the DFT of `echo_image(t(ky))`:
/// the echo-train signal model evaluated directly, one full image per line time.
fn echo_train_reference(
    n: usize,
    line_time: impl Fn(i64) -> f64,
    echo_image: impl Fn(f64) -> Vec<f64>,
) -> Vec<f64> {
    use std::f64::consts::PI;
    let dft = |v: &[(f64, f64)], sign: f64| -> Vec<(f64, f64)> {
        (0..n)
            .map(|k| {
                v.iter()
                    .enumerate()
                    .fold((0.0, 0.0), |(a, b), (x, &(re, im))| {
                        let (s, c) = (sign * 2.0 * PI * (k * x) as f64 / n as f64).sin_cos();
                        (a + re * c - im * s, b + re * s + im * c)
                    })
            })
            .collect()
    };
    // Line times → the image at each distinct time, transformed along x (rows), then along y
    // for the one ky that time fills.
    let mut k = vec![(0.0, 0.0); n * n];
    for l in 0..n {
        let ky = kspace::ky_of(l, n);
        let img = echo_image(line_time(ky));
        let rows: Vec<Vec<(f64, f64)>> = (0..n)
            .map(|y| {
                dft(
                    &img[y * n..(y + 1) * n]
                        .iter()
                        .map(|&v| (v, 0.0))
                        .collect::<Vec<_>>(),
                    -1.0,
                )
            })
            .collect();
        for kx in 0..n {
            let col: Vec<(f64, f64)> = (0..n).map(|y| rows[y][kx]).collect();
            k[l * n + kx] = dft(&col, -1.0)[l];
        }
    }
    // Inverse along y then x.
    let mut tmp = vec![(0.0, 0.0); n * n];
    for kx in 0..n {
        let col: Vec<(f64, f64)> = (0..n).map(|l| k[l * n + kx]).collect();
        for (y, v) in dft(&col, 1.0).into_iter().enumerate() {
            tmp[y * n + kx] = v;
        }
    }
    (0..n)
        .flat_map(|y| dft(&tmp[y * n..(y + 1) * n], 1.0))
        .map(|(re, im)| re.hypot(im) / (n * n) as f64)
        .collect()
}

/// Three discs of T2 40, 100 and 400 ms (T2* shorter still) on a 64² grid.
fn t2_discs() -> MriMaps {
    let grid = Grid::centered([64, 64, 1], [4.0, 4.0, 5.0]);
    maps_from(grid, |w| {
        let t2 = [(-60.0, 40.0), (0.0, 100.0), (60.0, 400.0)]
            .iter()
            .find(|(cx, _)| (w[0] - cx).hypot(w[1]) < 24.0)?
            .1;
        Some((
            Relaxation {
                pd: 1.0,
                t1_ms: 800.0,
                t2_ms: t2,
                t2star_ms: 0.6 * t2,
            },
            0.0,
        ))
    })
}

/// A fast spin echo (ETL 16, ESP 8 ms, TE 72 ms) and an SE-EPI (ESP 0.8 ms, TE 60 ms) image
/// against the signal model evaluated line by line: every k-space line is the spectrum of the
/// image at that line's echo time (FSE: e^{−(t − TE)/T2}; SE-EPI: e^{−(t − TE)/T2 − |t − TE|/T2′}).
#[test]
fn echo_trains_filter_kspace_as_the_line_by_line_signal_model() {
    let maps = t2_discs();
    let n = 64;
    let fse = MriProtocol {
        etl: 16,
        echo_spacing_ms: Some(8.0),
        te_ms: 72.0,
        tr_ms: 4000.0,
        ..base([64, 64], [256.0, 256.0], 5.0)
    };
    let epi = MriProtocol {
        epi: true,
        echo_spacing_ms: Some(0.8),
        te_ms: 60.0,
        tr_ms: 4000.0,
        ..base([64, 64], [256.0, 256.0], 5.0)
    };
    for (name, p, line_time) in [
        (
            "FSE",
            &fse,
            Box::new(|ky: i64| 8.0 * ((ky + 32) / 4 + 1) as f64) as Box<dyn Fn(i64) -> f64>,
        ),
        ("SE-EPI", &epi, Box::new(|ky: i64| 60.0 + 0.8 * ky as f64)),
    ] {
        assert!(p.validate().is_empty(), "{:?}", p.validate());
        let sp = SeqParams::from_protocol(p);
        let img = acquire(&maps, p, 1).unwrap().image;
        let reference = echo_train_reference(n, &line_time, |t| {
            (0..n * n)
                .map(|v| {
                    let (pd, t1, t2, t2s) = (
                        maps.pd.data[v] as f64,
                        maps.t1_ms.data[v] as f64,
                        maps.t2_ms.data[v] as f64,
                        maps.t2star_ms.data[v] as f64,
                    );
                    let s = signal::signal(&sp, pd, t1, t2, t2s, 0.0).0;
                    let dt = t - p.te_ms;
                    let r2p = if p.epi { 1.0 / t2s - 1.0 / t2 } else { 0.0 };
                    s * (-dt / t2 - dt.abs() * r2p).exp()
                })
                .collect()
        });
        let plain = acquire(
            &maps,
            &MriProtocol {
                etl: 1,
                epi: false,
                echo_spacing_ms: None,
                ..p.clone()
            },
            1,
        )
        .unwrap()
        .image;
        let peak = reference.iter().copied().fold(0.0, f64::max);
        let err = img
            .data
            .iter()
            .zip(&reference)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        let blur = img
            .data
            .iter()
            .zip(&plain.data)
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        eprintln!(
            "{name}: max |engine − line-by-line model| = {:.2e} of the peak; the train changes the image by up to {:.3} of the peak",
            err / peak,
            blur / peak
        );
        assert!(err < 1e-3 * peak, "{name}: {err} vs peak {peak}");
        assert!(
            blur > 0.02 * peak,
            "{name}: the train left the image unchanged"
        );
    }
}

/// GRE-EPI: fat (−3.4 ppm, −434 Hz at 3 T) moves along the phase axis by Δf × the time per ky
/// step × N — with R = 2 the step takes half an echo spacing — and along the readout by
/// Δf / bandwidth. Fat's T2* is lengthened here: its decay along the train blurs the block
/// with long tails that wrap around the field of view and bias a centroid.
#[test]
fn epi_displaces_fat_along_phase_by_offresonance_times_echo_spacing() {
    let grid = Grid::centered([64, 64, 1], [4.0, 4.0, 5.0]);
    let fat = Relaxation {
        t2star_ms: 1e6,
        t2_ms: 1e6,
        ..tissue("fat").mri_3t
    };
    let maps = maps_from(grid, |p| {
        (p[0].abs() < 16.0 && p[1].abs() < 16.0).then_some((fat, 1.0))
    });
    let fat_hz = protocol::ppm_to_hz(protocol::FAT_SHIFT_PPM, 3.0);
    let centroid = |p: &MriProtocol| {
        let img = acquire(&maps, p, 9).unwrap().image;
        let (mut s, mut w) = ([0.0; 2], 0.0);
        for j in 0..64 {
            for i in 0..64 {
                let v = img.get(i, j, 0) as f64;
                s[0] += i as f64 * v;
                s[1] += j as f64 * v;
                w += v;
            }
        }
        [s[0] / w, s[1] / w]
    };
    for r in [1.0, 2.0] {
        let mut p = MriProtocol {
            sequence: Sequence::SpoiledGre,
            epi: true,
            echo_spacing_ms: Some(0.5),
            te_ms: 20.0,
            tr_ms: 100.0,
            flip_deg: 30.0,
            bandwidth_hz_per_px: 1500.0,
            undersampling: (r > 1.0).then_some(Undersampling {
                factor: r,
                pattern: SamplingPattern::Regular,
                center_lines: 0,
            }),
            combine: if r > 1.0 {
                Combine::Sense
            } else {
                Combine::Rss
            },
            coils: if r > 1.0 { 8 } else { 1 },
            ..base([64, 64], [256.0, 256.0], 5.0)
        };
        assert!(p.validate().is_empty(), "{:?}", p.validate());
        let c0 = centroid(&p);
        p.artifacts.chemical_shift = true;
        let c1 = centroid(&p);
        let want_phase = fat_hz * 0.5e-3 / r * 64.0;
        let want_read = fat_hz / 1500.0;
        eprintln!(
            "GRE-EPI R {r}: fat moved {:.3} px along phase (predicted Δf·ESP/R·N = {want_phase:.3}), {:.3} px along readout (predicted {want_read:.3})",
            c1[1] - c0[1],
            c1[0] - c0[0]
        );
        assert!((c1[1] - c0[1] - want_phase).abs() < 0.1, "phase shift");
        assert!((c1[0] - c0[0] - want_read).abs() < 0.05, "read shift");
    }
}

/// Odd echoes shifted by d samples along kx put ½(1 − e^{iφ(x)}) of the object half a field
/// of view away, φ(x) = 2π d (x − x_c)/N: ghost / object = |tan(φ/2)| per column.
#[test]
fn nyquist_ghost_follows_the_odd_echo_shift() {
    let grid = Grid::centered([64, 64, 1], [4.0, 4.0, 5.0]);
    let maps = maps_from(grid, |p| {
        (p[0].abs() < 100.0 && p[1].abs() < 50.0).then_some((flat(), 0.0))
    });
    let d = 0.4;
    let p = MriProtocol {
        epi: true,
        echo_spacing_ms: Some(0.5),
        te_ms: 20.0,
        tr_ms: 4000.0,
        bandwidth_hz_per_px: 1500.0,
        artifacts: Artifacts {
            epi_echo_shift_samples: Some(d),
            ..Artifacts::default()
        },
        ..base([64, 64], [256.0, 256.0], 5.0)
    };
    let img = acquire(&maps, &p, 1).unwrap().image;
    let mut worst = 0.0f64;
    for x in [12, 20, 28, 40, 50] {
        let obj = img.get(x, 32, 0) as f64;
        let ghost = img.get(x, 2, 0) as f64;
        let phi = 2.0 * std::f64::consts::PI * d * (x as f64 - 32.0) / 64.0;
        let want = (0.5 * phi).tan().abs();
        worst = worst.max((ghost / obj - want).abs());
        eprintln!(
            "column {x}: ghost/object {:.4} (predicted |tan φ/2| = {want:.4})",
            ghost / obj
        );
    }
    assert!(worst < 0.01, "{worst}");
}

/// A 16 mm air sphere (Δχ = +9.41 ppm against water) in water at 3 T. The water along a row
/// through the sphere's centre sits in the analytic dipole field Δχ/3 (a/r)³ (3 cos²θ − 1)
/// (−401 Hz at the equator's surface) less the linear shim, and each voxel's signal moves
/// along the readout by its field over the bandwidth: the row's first moment changes by
/// Σ displacement × signal, whatever the splatting does to the edges (it conserves signal).
#[test]
fn susceptibility_field_displaces_water_around_an_air_sphere_as_the_dipole_predicts() {
    let grid = Grid::centered([64, 64, 64], [2.0; 3]);
    let a = 16.0;
    let mut maps = maps_from(grid.clone(), |w| {
        ((w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt() >= a).then_some((flat(), 0.0))
    });
    maps.chi_ppm = Some(Volume::from_vec(
        grid.clone(),
        maps.pd
            .data
            .iter()
            .map(|&pd| if pd > 0.0 { 0.0 } else { 9.41 })
            .collect(),
    ));
    let p = base([64, 64], [128.0, 128.0], 2.0);
    let row = |p: &MriProtocol| -> Vec<f64> {
        let img = acquire(&maps, p, 1).unwrap().image;
        (0..64).map(|i| img.get(i, 32, 32) as f64).collect()
    };
    let off = row(&p);
    let on = row(&MriProtocol {
        artifacts: Artifacts {
            susceptibility: true,
            ..Artifacts::default()
        },
        ..p.clone()
    });
    let moment = |r: &[f64]| r.iter().enumerate().map(|(i, v)| i as f64 * v).sum::<f64>();
    // The shim's fit at each voxel of the row, from the unshimmed and shimmed field maps.
    let chi = maps.chi_ppm.as_ref().unwrap();
    let field = susceptibility::field_shift_ppm(chi);
    let shimmed = susceptibility::shim_linear(&field, |i| maps.pd.data[i] > 0.0);
    let hz_per_ppm = protocol::ppm_to_hz(1.0, 3.0);
    let px_per_ppm = hz_per_ppm / p.bandwidth_hz_per_px;
    let mut predicted = 0.0;
    for (i, &v) in off.iter().enumerate() {
        let w = grid.world(i, 32, 32);
        let r = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
        if r < a {
            continue;
        }
        let dipole = 9.41 / 3.0 * (a / r).powi(3) * (3.0 * w[2] * w[2] / (r * r) - 1.0);
        let idx = (32 * 64 + 32) * 64 + i;
        let shim = (shimmed.data[idx] - field.data[idx]) as f64;
        predicted += (dipole + shim) * px_per_ppm * v;
    }
    let measured = moment(&on) - moment(&off);
    let hole = off.iter().filter(|&&v| v < 0.5).count() as f64;
    eprintln!(
        "air sphere at 3 T, {} Hz/px: the row's water moved by Σ d·S = {measured:.3} px (analytic dipole + shim: {predicted:.3}); surface field −Δχ/3 = {:.1} Hz = {:.2} px; mean over the hole's width {:.2} px",
        p.bandwidth_hz_per_px,
        -9.41 / 3.0 * hz_per_ppm,
        -9.41 / 3.0 * px_per_ppm,
        measured / hole
    );
    assert!(
        (measured - predicted).abs() < 0.05 * predicted.abs(),
        "{measured} vs {predicted}"
    );
}
