use super::*;
use crate::volume::Grid;

#[test]
fn bias_field_stays_within_range() {
    let g = Grid::centered([32, 24, 16], [2.0; 3]);
    let v = Volume::filled(g, 1.0f32);
    let b = apply_bias_field(&v, 0.3, 7);
    let (lo, hi) = b
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, c), &x| (a.min(x), c.max(x)));
    eprintln!("bias 0.3: field in [{lo:.4}, {hi:.4}] (allowed [0.85, 1.15])");
    assert!(lo >= 0.85 - 1e-6 && hi <= 1.15 + 1e-6 && hi - lo > 0.15);
}

/// A pseudo-random volume (every interpolation weight matters).
fn noise_volume(dims: [usize; 3]) -> Volume<f32> {
    let g = Grid::centered(dims, [1.5, 1.0, 2.0]);
    let data = (0..g.len())
        .map(|i| ((i * 7919 + 13) % 1009) as f32 / 1009.0)
        .collect();
    Volume::from_vec(g, data)
}

#[test]
fn row_samples_match_pointwise_trilinear() {
    let v = noise_volume([23, 17, 11]);
    let dims = v.grid.dims;
    let second: Vec<f32> = v.data.iter().map(|x| 1.0 - x).collect();
    // Rows inside, crossing every face, grazing the last voxel plane, and outside.
    let rows = [
        ([0.5, 3.2, 4.7], [0.93, 0.11, -0.04]),
        ([-3.0, -0.5, 5.5], [1.1, 0.8, 0.3]),
        ([22.0, 16.0, 10.0], [-0.7, -0.5, -0.4]),
        ([-1.5, 8.0, 10.0], [1.0, 0.0, 0.0]),
        ([30.0, 30.0, 30.0], [0.2, 0.1, 0.0]),
    ];
    for (start, step) in rows {
        for n in [5, 8, 37] {
            let (mut a, mut b) = (vec![0.5f32; n], vec![0.25f32; n]);
            add_row_samples(
                [&v.data, &second],
                dims,
                start,
                step,
                0.75,
                [&mut a, &mut b],
            );
            for i in 0..n {
                let p = [0, 1, 2].map(|k| start[k] + i as f64 * step[k]);
                let (wa, wb) = (
                    0.5 + 0.75 * trilinear(&v.data, dims, p),
                    0.25 + 0.75 * trilinear(&second, dims, p),
                );
                assert!(
                    (a[i] - wa).abs() < 2e-4 && (b[i] - wb).abs() < 2e-4,
                    "{start:?} + {i}·{step:?}: {} {} vs {wa} {wb}",
                    a[i],
                    b[i]
                );
            }
        }
    }
}

#[test]
fn closed_form_ghosting_and_motion_match_the_kspace_versions() {
    let v = noise_volume([20, 32, 3]);
    let (direct, reference) = (apply_ghosting(&v, 0.2), apply_ghosting_fft(&v, 0.2));
    let worst = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    assert!(worst(&direct.data, &reference.data) < 1e-5);
    // Motion: the moved object's lines replace the still one's in k-space.
    let m = super::super::Motion {
        translation_mm: [2.0, -3.0, 1.0],
        rotation_deg: [3.0, -2.0, 5.0],
        fraction_of_lines: 0.4,
    };
    let moved = transform_volume(&v, &Rigid::new(m.translation_mm, m.rotation_deg));
    let [nx, ny, _] = v.grid.dims;
    let plan = Fft::new(ny);
    let reference = per_slice_hybrid(&v, |re, im, k| {
        let mut mre = moved[k * nx * ny..(k + 1) * nx * ny].to_vec();
        let mut mim = vec![0f32; nx * ny];
        plan.process(&mut mre, &mut mim, nx, false);
        for l in (0..ny).filter(|&l| moved_line(l, ny, m.fraction_of_lines)) {
            re[l * nx..(l + 1) * nx].copy_from_slice(&mre[l * nx..(l + 1) * nx]);
            im[l * nx..(l + 1) * nx].copy_from_slice(&mim[l * nx..(l + 1) * nx]);
        }
    });
    assert!(worst(&apply_motion(&v, &m).data, &reference.data) < 1e-5);
}

#[test]
fn ghost_appears_at_half_fov_with_given_fraction() {
    let g = Grid::centered([16, 64, 1], [1.0; 3]);
    let mut v = Volume::filled(g, 0.0f32);
    v.set(8, 10, 0, 1.0);
    let o = apply_ghosting(&v, 0.2);
    assert!((o.get(8, 10, 0) - 0.8).abs() < 1e-4 && (o.get(8, 42, 0) - 0.2).abs() < 1e-4);
}

#[test]
fn motion_of_all_lines_is_a_pure_shift() {
    let g = Grid::centered([32, 32, 4], [1.0; 3]);
    let mut v = Volume::filled(g, 0.0f32);
    v.set(10, 12, 1, 1.0);
    let m = super::super::Motion {
        translation_mm: [3.0, -2.0, 0.0],
        rotation_deg: [0.0; 3],
        fraction_of_lines: 1.0,
    };
    let o = apply_motion(&v, &m);
    assert!(
        (o.get(13, 10, 1) - 1.0).abs() < 1e-4,
        "{}",
        o.get(13, 10, 1)
    );
}
