use super::*;
use flate2::read::GzDecoder;

const CT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/ts_ct_torso_3mm.nii.gz"
);
const SEG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/ts_ct_torso_3mm_seg_total.nii.gz"
);

fn test_grid() -> Grid {
    Grid {
        dims: [5, 4, 3],
        spacing_mm: [0.75, 1.25, 2.5],
        origin_mm: [-12.5, 30.25, -101.0],
    }
}

fn header_of(bytes: &[u8], gz: bool) -> NiftiHeader {
    if gz {
        NiftiHeader::from_reader(GzDecoder::new(bytes)).unwrap()
    } else {
        NiftiHeader::from_reader(bytes).unwrap()
    }
}

fn check_common_header(h: &NiftiHeader, g: &Grid, descrip: &str) {
    assert_eq!(h.sizeof_hdr, 348);
    assert_eq!(h.magic, *b"n+1\0");
    assert_eq!(h.vox_offset, 352.0);
    assert_eq!(
        h.dim,
        [
            3,
            g.dims[0] as u16,
            g.dims[1] as u16,
            g.dims[2] as u16,
            1,
            1,
            1,
            1
        ]
    );
    assert_eq!(h.sform_code, 1);
    assert_eq!(h.qform_code, 1);
    let a = g.affine();
    assert_eq!(h.srow_x, a[0].map(|v| v as f32));
    assert_eq!(h.srow_y, a[1].map(|v| v as f32));
    assert_eq!(h.srow_z, a[2].map(|v| v as f32));
    assert_eq!((h.quatern_b, h.quatern_c, h.quatern_d), (0.0, 0.0, 0.0));
    assert_eq!(
        [h.quatern_x, h.quatern_y, h.quatern_z],
        g.origin_mm.map(|v| v as f32)
    );
    assert_eq!(h.pixdim[0], 1.0);
    assert_eq!(&h.pixdim[1..4], &g.spacing_mm.map(|v| v as f32)[..]);
    assert_eq!(h.xyzt_units, NIFTI_UNITS_MM);
    let end = h
        .descrip
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(h.descrip.len());
    assert_eq!(&h.descrip[..end], descrip.as_bytes());
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn image_round_trips_both_dtypes_with_and_without_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let g = test_grid();
    let data: Vec<f32> = (0..g.len())
        .map(|i| (i as f32 * 37.3).sin() * 900.0 + 40.0)
        .collect();
    let vol = Volume::from_vec(g.clone(), data);
    let descrip = "synthcohort 0.1.0";
    for dtype in [ImageDtype::Float32, ImageDtype::Int16] {
        for gz in [false, true] {
            let bytes = encode_image(&vol, dtype, gz, descrip).unwrap();
            assert_eq!(
                bytes,
                encode_image(&vol, dtype, gz, descrip).unwrap(),
                "deterministic"
            );
            let h = header_of(&bytes, gz);
            check_common_header(&h, &g, descrip);
            let name = if gz { "img.nii.gz" } else { "img.nii" };
            let path = write_tmp(dir.path(), name, &bytes);
            // A standard reader sees the same header.
            let obj = ReaderOptions::new().read_file(&path).unwrap();
            check_common_header(obj.header(), &g, descrip);
            let back = read_image(&path).unwrap();
            assert_eq!(back.grid.dims, g.dims);
            for a in 0..3 {
                assert!((back.grid.spacing_mm[a] - g.spacing_mm[a]).abs() < 1e-6);
                assert!((back.grid.origin_mm[a] - g.origin_mm[a]).abs() < 1e-4);
            }
            match dtype {
                ImageDtype::Float32 => {
                    assert_eq!(h.datatype, DT_FLOAT32);
                    assert_eq!(h.bitpix, 32);
                    assert_eq!(back.data, vol.data);
                }
                ImageDtype::Int16 => {
                    assert_eq!(h.datatype, DT_INT16);
                    assert_eq!(h.bitpix, 16);
                    assert!(
                        h.scl_slope > 0.0 && h.scl_slope < 0.05,
                        "slope {}",
                        h.scl_slope
                    );
                    let tol = h.scl_slope / 2.0 + 1e-3;
                    for (a, b) in vol.data.iter().zip(&back.data) {
                        assert!((a - b).abs() <= tol, "{a} vs {b}, slope {}", h.scl_slope);
                    }
                }
            }
        }
    }
}

#[test]
fn integral_hu_is_stored_exactly_with_identity_scaling() {
    let g = test_grid();
    let data: Vec<f32> = (0..g.len())
        .map(|i| (i as f32 * 97.0) % 4000.0 - 1024.0)
        .collect();
    let vol = Volume::from_vec(g, data);
    let bytes = encode_image(&vol, ImageDtype::Int16, false, "x").unwrap();
    let h = header_of(&bytes, false);
    assert_eq!((h.scl_slope, h.scl_inter), (1.0, 0.0));
    let dir = tempfile::tempdir().unwrap();
    let back = read_image(&write_tmp(dir.path(), "a.nii", &bytes)).unwrap();
    assert_eq!(back.data, vol.data);
}

#[test]
fn int16_handles_constant_and_rejects_nan() {
    let g = test_grid();
    let vol = Volume::filled(g.clone(), 0.3f32);
    let bytes = encode_image(&vol, ImageDtype::Int16, false, "").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let back = read_image(&write_tmp(dir.path(), "c.nii", &bytes)).unwrap();
    assert!(back.data.iter().all(|&v| v == 0.3));
    let mut bad = Volume::filled(g, 1.0f32);
    bad.data[3] = f32::NAN;
    assert!(encode_image(&bad, ImageDtype::Int16, false, "").is_err());
}

#[test]
fn labels_round_trip_as_u8_and_u16() {
    let dir = tempfile::tempdir().unwrap();
    let g = test_grid();
    for (max, dt, bitpix) in [(117u16, DT_UINT8, 8), (300, DT_UINT16, 16)] {
        let data: Vec<u16> = (0..g.len()).map(|i| (i as u16 * 7) % (max + 1)).collect();
        let vol = Volume::from_vec(g.clone(), data);
        for gz in [false, true] {
            let bytes = encode_labels(&vol, gz, "labels").unwrap();
            let h = header_of(&bytes, gz);
            check_common_header(&h, &g, "labels");
            assert_eq!((h.datatype, h.bitpix), (dt, bitpix));
            let path = write_tmp(dir.path(), if gz { "l.nii.gz" } else { "l.nii" }, &bytes);
            let back = read_labels(&path).unwrap();
            assert_eq!(back.data, vol.data);
            assert_eq!(back.grid.dims, g.dims);
        }
    }
}

#[test]
fn long_descrip_is_truncated_on_a_char_boundary() {
    let vol = Volume::filled(test_grid(), 0u16);
    let long = "é".repeat(60); // 120 bytes
    let bytes = encode_labels(&vol, false, &long).unwrap();
    let h = header_of(&bytes, false);
    let end = h.descrip.iter().position(|&c| c == 0).unwrap();
    assert_eq!(end, 78);
    assert!(std::str::from_utf8(&h.descrip[..end]).is_ok());
}

#[test]
fn lps_and_permuted_files_are_reoriented_to_ras() {
    // Stored grid: axes (0, 1, 2) point along world (-y, -x, +z), i.e. transposed and flipped.
    let dims_in = [3usize, 4, 2];
    let sp = [2.0, 3.0, 5.0];
    let m = [
        [0.0, -sp[1], 0.0, 100.0],
        [-sp[0], 0.0, 0.0, 50.0],
        [0.0, 0.0, sp[2], -20.0],
    ];
    let n = dims_in.iter().product::<usize>();
    let stored: Vec<u16> = (0..n as u16).collect();
    let world_of = |i: usize, j: usize, k: usize| {
        let v = [i as f64, j as f64, k as f64];
        [0, 1, 2].map(|r| m[r][3] + (0..3).map(|c| m[r][c] * v[c]).sum::<f64>())
    };
    let mut raw = Vec::new();
    for v in &stored {
        raw.push(*v as u8);
    }
    let header = Header {
        dims: dims_in,
        datatype: DT_UINT8,
        bitpix: 8,
        pixdim: sp,
        slope: 1.0,
        inter: 0.0,
        srow: m,
        qform: false,
        qoffset: [0.0; 3],
        descrip: "",
    };
    let bytes = finish(header.to_bytes(), &raw, 1, |v, o| o.push(v), true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vol = read_labels(&write_tmp(dir.path(), "lps.nii.gz", &bytes)).unwrap();
    assert_eq!(vol.grid.dims, [4, 3, 2]);
    assert_eq!(vol.grid.spacing_mm, [3.0, 2.0, 5.0]);
    // Every stored voxel must land at the same world position in the RAS grid.
    for k in 0..dims_in[2] {
        for j in 0..dims_in[1] {
            for i in 0..dims_in[0] {
                let v = stored[i + dims_in[0] * (j + dims_in[1] * k)];
                assert_eq!(
                    vol.sample_nearest(world_of(i, j, k)),
                    Some(v),
                    "voxel {i},{j},{k}"
                );
            }
        }
    }
}

#[test]
fn oblique_affine_is_an_error() {
    let m = [
        [1.0, 0.2, 0.0, 0.0],
        [-0.2, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
    ];
    let e = grid_from_affine(m, [2, 2, 2]).unwrap_err().to_string();
    assert!(e.contains("oblique"), "{e}");
}

#[test]
fn qform_only_file_uses_the_quaternion() {
    // 180° about z (b=c=0, d=1): x and y flipped; qfac = 1.
    let mut h = NiftiHeader {
        sform_code: 0,
        qform_code: 1,
        quatern_d: 1.0,
        ..Default::default()
    };
    h.pixdim = [1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0];
    h.quatern_x = 10.0;
    let m = header_affine(&h);
    assert!(
        (m[0][0] + 2.0).abs() < 1e-9
            && (m[1][1] + 3.0).abs() < 1e-9
            && (m[2][2] - 4.0).abs() < 1e-9
    );
    assert_eq!(m[0][3], 10.0);
}

#[test]
fn headers_claiming_huge_volumes_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let vol = Volume::filled(test_grid(), 3u16);
    let good = encode_labels(&vol, false, "").unwrap();
    // 1000³ = 10⁹ voxels claimed by a 400-byte file (dim[1..=3] at bytes 42..48).
    let mut huge = good.clone();
    for a in 0..3 {
        huge[42 + 2 * a..44 + 2 * a].copy_from_slice(&1000i16.to_le_bytes());
    }
    let p = write_tmp(dir.path(), "huge.nii", &huge);
    match crate::sys::available_memory() {
        // 10⁹ voxels need at least 17 GB to read as labels (f64 values + u16 result).
        Some(m) if m < 17_000_000_000 => {
            let e = read_labels(&p).unwrap_err().to_string();
            assert!(
                e.contains("GiB available") && e.contains("1000000000 voxels"),
                "{e}"
            );
        }
        _ => assert!(read_labels(&p).is_err()),
    }
    // 32767³ ≈ 3.5·10¹³ voxels: over the voxel bound whatever the memory.
    for a in 0..3 {
        huge[42 + 2 * a..44 + 2 * a].copy_from_slice(&i16::MAX.to_le_bytes());
    }
    let p = write_tmp(dir.path(), "huger.nii", &huge);
    let e = read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("a volume may have"), "{e}");
}

#[test]
fn bad_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let vol = Volume::filled(test_grid(), 3u16);
    let good = encode_labels(&vol, false, "").unwrap();
    // Truncated voxel data.
    let p = write_tmp(dir.path(), "trunc.nii", &good[..good.len() - 10]);
    let e = read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("bytes but its header"), "{e}");
    // Garbage.
    let p = write_tmp(dir.path(), "junk.nii", b"not a nifti file at all");
    assert!(read_image(&p).is_err());
    // Not gzip despite the name.
    let p = write_tmp(dir.path(), "fake.nii.gz", &good);
    assert!(read_image(&p).is_err());
    // 4D.
    let mut four = good.clone();
    four[40..42].copy_from_slice(&4i16.to_le_bytes());
    four[48..50].copy_from_slice(&2i16.to_le_bytes());
    let p = write_tmp(dir.path(), "4d.nii", &four);
    let e = read_image(&p).unwrap_err().to_string();
    assert!(e.contains("3D") && e.contains("4d.nii"), "{e}");
    // Missing file.
    assert!(read_image(&dir.path().join("missing.nii.gz")).is_err());
    // Negative and fractional labels.
    let img = Volume::from_vec(test_grid(), (0..60).map(|i| i as f32 - 5.0).collect());
    let p = write_tmp(
        dir.path(),
        "neg.nii",
        &encode_image(&img, ImageDtype::Float32, false, "").unwrap(),
    );
    assert!(read_labels(&p)
        .unwrap_err()
        .to_string()
        .contains("negative"));
    let img = Volume::from_vec(test_grid(), (0..60).map(|i| i as f32 + 0.5).collect());
    let p = write_tmp(
        dir.path(),
        "frac.nii",
        &encode_image(&img, ImageDtype::Float32, false, "").unwrap(),
    );
    assert!(read_labels(&p).unwrap_err().to_string().contains("integer"));
    // Integral float labels are fine.
    let img = Volume::from_vec(test_grid(), (0..60).map(|i| i as f32).collect());
    let p = write_tmp(
        dir.path(),
        "float.nii",
        &encode_image(&img, ImageDtype::Float32, false, "").unwrap(),
    );
    assert_eq!(read_labels(&p).unwrap().data[59], 59);
}

#[test]
fn encode_rejects_inconsistent_volumes() {
    let mut vol = Volume::filled(test_grid(), 0.0f32);
    vol.data.pop();
    assert!(encode_image(&vol, ImageDtype::Float32, false, "").is_err());
    let mut g = test_grid();
    g.spacing_mm[1] = 0.0;
    assert!(encode_image(&Volume::filled(g, 0.0f32), ImageDtype::Float32, false, "").is_err());
}

#[test]
fn reads_real_totalsegmentator_ct_and_labels() {
    let seg = read_labels(Path::new(SEG)).unwrap();
    let ct = read_image(Path::new(CT)).unwrap();
    assert_eq!(seg.grid.dims, [122, 101, 112]);
    assert_eq!(seg.grid, ct.grid);
    assert_eq!(seg.grid.spacing_mm, [3.0; 3]);
    assert!((seg.grid.origin_mm[0] + 177.956).abs() < 1e-2);
    assert_eq!(seg.data.iter().copied().max(), Some(117));
    let mut present: Vec<u16> = seg.data.clone();
    present.sort_unstable();
    present.dedup();
    assert_eq!(present.len(), 62); // 61 classes + background
    let (lo, hi) = ct
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (-1207.0, 3382.0));
    // The liver (5) is soft tissue on contrast CT: mean HU well inside (0, 250).
    let (sum, n) = seg
        .data
        .iter()
        .zip(&ct.data)
        .filter(|(l, _)| **l == 5)
        .fold((0.0, 0), |(s, n), (_, v)| (s + *v as f64, n + 1));
    assert!(n > 1000);
    let mean = sum / n as f64;
    assert!(mean > 0.0 && mean < 250.0, "liver mean HU {mean}");
    // Round trip through our writer reproduces values and grid exactly.
    let dir = tempfile::tempdir().unwrap();
    let p = write_tmp(
        dir.path(),
        "ct.nii.gz",
        &encode_image(&ct, ImageDtype::Int16, true, "rt").unwrap(),
    );
    assert_eq!(read_image(&p).unwrap(), ct);
    let p = write_tmp(
        dir.path(),
        "seg.nii.gz",
        &encode_labels(&seg, true, "rt").unwrap(),
    );
    assert_eq!(read_labels(&p).unwrap(), seg);
}
