//! The trunk model behind the thorax and abdomen templates: body wall, lungs, heart,
//! abdominal organs, vessels and skeleton, in painting order.

use super::super::geom::*;
use super::super::ontology::*;

/// Sign-only ellipse test (no square roots) for objects that are painted but never offset.
fn ellipse_implicit(x: f64, y: f64, a: f64, b: f64) -> f64 {
    (x / a).powi(2) + (y / b).powi(2) - 1.0
}

/// 0 in the thorax, 1 in the abdomen; the outline and spine change shape across T11–L1.
fn abd_t(z: f64) -> f64 {
    smoothstep(-40.0, -110.0, z)
}

/// Semi-axes (mm) of the lean body outline (skin minus subcutaneous fat): chest ~300×190,
/// abdomen ~280×200, widening over the pelvis; a slow ripple keeps slices from repeating.
fn lean_ab(z: f64) -> (f64, f64) {
    let t = abd_t(z);
    let tp = smoothstep(-220.0, -280.0, z);
    let a = lerp(lerp(150.0, 140.0, t), 158.0, tp);
    let b = lerp(95.0, 100.0, t);
    let w = 1.0 + 0.02 * (z / 60.0).sin();
    (a * w, b * w)
}

/// Rib cage ellipse (through the rib centre lines): narrows towards the apex, where the first
/// ribs are about half the width of the sixth.
const RC_Y: f64 = -4.0;
fn rib_cage_ab(z: f64) -> (f64, f64) {
    let ta = (1.0 - ((z - 70.0).max(0.0) / 175.0).powi(2))
        .max(0.09)
        .sqrt();
    let tb = (1.0 - ((z - 70.0).max(0.0) / 230.0).powi(2))
        .max(0.09)
        .sqrt();
    (136.0 * ta, 82.0 * tb)
}

fn cavity_sdf(p: V3) -> f64 {
    let (a, b) = rib_cage_ab(p[2]);
    ellipse(p[0], p[1] - RC_Y, a - 7.0, b - 7.0)
}

/// Union of the two hemidiaphragm domes, as ellipsoids whose tops are the dome surfaces
/// (right dome ~15 mm higher than the left, posterior recesses reaching ~60 mm lower).
fn domes_sdf(p: V3) -> f64 {
    let r = ellipsoid(p, [60.0, -10.0, -120.0], [95.0, 90.0, 120.0]);
    let l = ellipsoid(p, [-60.0, -10.0, -135.0], [95.0, 90.0, 120.0]);
    r.min(l)
}

/// Everything inside the body wall: the rib-cage cavity above, the abdominal cavity below.
fn body_cavity_sdf(p: V3) -> f64 {
    let z = p[2];
    let (a, b) = lean_ab(z);
    let chest = cavity_sdf(p).max(-(z + 110.0));
    let abd = ellipse(p[0], p[1], a - 12.0, b - 12.0).max(z + 40.0);
    chest.min(abd)
}

fn heart() -> OrientedEllipsoid {
    // ~12 × 10 × 9 cm, long axis from the base (right, posterior, superior) to the apex
    // (left, anterior, inferior).
    OrientedEllipsoid {
        c: [-15.0, 28.0, 22.0],
        axes: frame([-0.6, 0.45, -0.65], [0.0, 0.0, 1.0]),
        r: [66.0, 52.0, 46.0],
    }
}

fn kidney(left: bool) -> OrientedEllipsoid {
    let sx = if left { -1.0 } else { 1.0 };
    // ~11 × 6 × 4.5 cm; upper poles medial and posterior; the left ~15 mm higher.
    let c = if left {
        [-62.0, -50.0, -118.0]
    } else {
        [62.0, -50.0, -135.0]
    };
    OrientedEllipsoid {
        c,
        axes: frame([-sx * 0.18, -0.15, 1.0], [1.0, 0.0, 0.0]),
        r: [55.0, 28.0, 21.0],
    }
}

struct Vert {
    id: u16,
    zc: f64,
    seg: f64,
    r: f64,
    region: char,
}

/// C1…S1 with centre z, segment height (body + disc) and body radius. Segment heights are
/// typical adult values (cervical ~17 mm, thoracic 20→27 mm, lumbar ~33 mm); T10 is centred
/// 10 mm below the right dome top.
fn vertebrae() -> Vec<Vert> {
    let mut v: Vec<(String, f64, f64, char)> = Vec::new();
    for i in 1..=7 {
        v.push((format!("C{i}"), 17.0, 10.0 + 0.5 * i as f64, 'C'));
    }
    for i in 1..=12 {
        let f = (i - 1) as f64 / 11.0;
        v.push((format!("T{i}"), 20.0 + 7.0 * f, 14.0 + 6.0 * f, 'T'));
    }
    for i in 1..=5 {
        v.push((format!("L{i}"), 33.0, 21.0 + 0.8 * i as f64, 'L'));
    }
    v.push(("S1".into(), 30.0, 24.0, 'L'));
    let mut out = Vec::new();
    let mut z = 0.0;
    for (name, seg, r, region) in &v {
        let zc = z - seg / 2.0;
        z -= seg;
        out.push(Vert {
            id: vertebra_id(name).expect("vertebra names are in the ontology"),
            zc,
            seg: *seg,
            r: *r,
            region: *region,
        });
    }
    let t10 = out.iter().find(|x| x.id == 34).map(|x| x.zc).unwrap_or(0.0);
    for x in &mut out {
        x.zc += -10.0 - t10;
    }
    out
}

/// Vertebral body centre y: the lumbar column sits further back under the lordotic abdomen.
fn spine_y(z: f64) -> f64 {
    lerp(-35.0, -40.0, abd_t(z))
}

fn canal_radius(region: char) -> f64 {
    match region {
        'C' => 9.0,
        'T' => 8.0,
        _ => 10.0,
    }
}

fn canal_y(z: f64, r: f64, region: char) -> f64 {
    spine_y(z) - 0.8 * r - canal_radius(region) - 1.0
}

fn vertebra_obj(v: &Vert) -> Obj {
    let (id, zc, seg, r, region) = (v.id, v.zc, v.seg, v.r, v.region);
    let yb = spine_y(zc);
    let rc = canal_radius(region);
    let yc = canal_y(zc, r, region);
    let big_r = rc + 3.5;
    let hb = 0.39 * seg;
    let (ls, dz, lt) = match region {
        'C' => (20.0, 6.0, 12.0),
        'T' => (22.0, 16.0, 18.0),
        _ => (26.0, 4.0, 26.0),
    };
    let spinous = Tube::new(&[
        ([0.0, yc - big_r, zc], 4.0),
        ([0.0, yc - big_r - ls, zc - dz], 4.0),
    ]);
    let tp = |s: f64| {
        Tube::new(&[
            ([0.0, yc, zc], 4.5),
            ([s * (big_r + lt), yc - 6.0, zc + 2.0], 4.5),
        ])
    };
    let (tl, tr) = (tp(1.0), tp(-1.0));
    let arch_h = 0.3 * seg;
    let sdf = move |p: V3| {
        let body = ellipse(p[0], p[1] - yb, r, 0.8 * r).max((p[2] - zc).abs() - hb);
        let rho = (p[0].hypot(p[1] - yc) - big_r).hypot((p[2] - zc) * 3.5 / arch_h);
        let arch = rho - 3.5;
        body.min(arch)
            .min(spinous.sdf(p))
            .min(tl.sdf(p))
            .min(tr.sdf(p))
    };
    let w = (big_r + lt + 5.0).max(r + 1.0);
    Obj::solid(
        id,
        (
            [-w, yc - big_r - ls - 5.0, zc - seg / 2.0 - dz - 5.0],
            [w, yb + r, zc + seg / 2.0 + 5.0],
        ),
        sdf,
    )
}

/// Rib n (1..=12) of one side: from the costovertebral joint round the rib-cage ellipse,
/// descending anteriorly; true ribs (1–7) end near the sternum, 8–10 short of it, 11–12 float.
fn rib_path(left: bool, n: usize, zc: f64) -> (Tube, Option<Tube>) {
    const DROP: [f64; 12] = [
        25.0, 40.0, 55.0, 65.0, 72.0, 78.0, 82.0, 80.0, 70.0, 60.0, 40.0, 30.0,
    ];
    const END: [f64; 12] = [
        2.72, 2.72, 2.72, 2.72, 2.72, 2.72, 2.72, 2.35, 2.15, 1.95, 1.55, 1.15,
    ];
    let sx = if left { -1.0 } else { 1.0 };
    let (th0, th1) = (0.42, END[n - 1]);
    let mut pts = vec![([sx * 18.0, spine_y(zc) - 4.0, zc], 4.0)];
    let steps = 12;
    for i in 0..=steps {
        let f = i as f64 / steps as f64;
        let th = lerp(th0, th1, f);
        let z = zc - DROP[n - 1] * f.powf(1.4);
        let (a, b) = rib_cage_ab(z);
        pts.push(([sx * a * th.sin(), RC_Y - b * th.cos(), z], 4.5));
    }
    let end = pts.last().expect("rib has points").0;
    let cart = match n {
        1..=5 => Some(Tube::new(&[
            (end, 4.0),
            ([sx * 15.0, 72.0, end[2] - 6.0], 4.0),
        ])),
        6 | 7 => Some(Tube::new(&[
            (end, 4.0),
            ([sx * 17.0, 70.0, end[2] + 12.0], 4.0),
        ])),
        8..=10 => Some(Tube::new(&[
            (end, 4.0),
            (
                [sx * (30.0 + 8.0 * (n - 8) as f64), 64.0, end[2] + 30.0],
                4.0,
            ),
        ])),
        _ => None,
    };
    (Tube::new(&pts), cart)
}

/// One object per capsule segment: each gets a tight bounding box, which matters for long
/// curved tubes such as ribs (their joint box is mostly empty).
pub(super) fn tube_obj(label: u16, t: Tube) -> Vec<Obj> {
    (0..t.pts.len().saturating_sub(1))
        .map(|s| {
            let seg = Tube {
                pts: t.pts[s..s + 2].to_vec(),
                radii: t.radii[s..s + 2].to_vec(),
            };
            Obj::solid(label, seg.bbox(), move |p| seg.sdf(p))
        })
        .collect()
}

/// The trunk's objects in painting order: later objects overwrite earlier labels where
/// their rules allow, so the order is part of the anatomy.
pub(super) fn trunk(fat: f64, seed: u64) -> Vec<Obj> {
    let h = heart();
    let mut o = body_wall_and_bowel(fat, seed);
    o.extend(lungs(h));
    o.extend(back_muscles());
    let (lo, hi) = h.bbox();
    // Heart on the central diaphragm.
    o.push(Obj::solid(HEART, (lo, hi), move |p| {
        h.sdf(p).max(3.0 - domes_sdf(p))
    }));
    o.extend(upper_abdomen());
    o.extend(airway_and_vessels());
    o.extend(skeleton());
    o
}

/// Skin-to-fat outline, muscle, the body cavity; small bowel and colon.
fn body_wall_and_bowel(fat: f64, seed: u64) -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    let zr = [-330.0, 300.0];
    let wide = |a: f64, b: f64| ([-a, -b, zr[0]], [a, b, zr[1]]);

    // Wall layers: skin-to-fat outline, muscle (lean outline), then the cavities.
    o.push(Obj::solid(
        SUBCUTANEOUS_FAT,
        wide(180.0 + 1.4 * fat, 110.0 + 1.4 * fat),
        move |p| {
            let (a, b) = lean_ab(p[2]);
            let f = fat * lerp(1.0, 1.3, abd_t(p[2]));
            ellipse_implicit(p[0], p[1], a + f, b + f)
        },
    ));
    o.push(Obj::solid(SKELETAL_MUSCLE, wide(170.0, 110.0), |p| {
        let (a, b) = lean_ab(p[2]);
        ellipse_implicit(p[0], p[1], a, b)
    }));
    o.push(Obj::solid(BODY, wide(170.0, 110.0), body_cavity_sdf));

    // Small bowel: a noise-thresholded packet in the anterior lower abdomen, mesentery between.
    o.push(Obj {
        lo: [-120.0, -50.0, -290.0],
        hi: [120.0, 100.0, -110.0],
        labels: vec![SMALL_BOWEL],
        rule: Box::new(move |p, cur| {
            (cur == BODY
                && ellipsoid(p, [0.0, 25.0, -200.0], [115.0, 70.0, 85.0]) <= 0.0
                && fbm(p, 22.0, seed ^ 0x5B) > -0.15)
                .then_some(SMALL_BOWEL)
        }),
    });
    o.extend(tube_obj(
        COLON,
        Tube::new(&[
            ([78.0, 5.0, -255.0], 24.0),
            ([88.0, -8.0, -190.0], 22.0),
            ([82.0, 5.0, -135.0], 21.0),
            ([55.0, 45.0, -140.0], 20.0),
            ([15.0, 62.0, -165.0], 19.0),
            ([-25.0, 60.0, -155.0], 19.0),
            ([-70.0, 30.0, -115.0], 20.0),
            ([-88.0, -12.0, -120.0], 20.0),
            ([-92.0, -20.0, -185.0], 19.0),
            ([-82.0, -5.0, -250.0], 18.0),
            ([-40.0, 20.0, -285.0], 17.0),
            ([0.0, 5.0, -305.0], 16.0),
        ]),
    ));

    o
}

/// Both lungs, split into lobes by the fissure planes, clear of the heart `h`.
fn lungs(h: OrientedEllipsoid) -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    // Lungs: rib-cage cavity above the domes, apex caps, medial mediastinal border, a
    // pericardial gap round the heart; lobes split by the fissure planes.
    for left in [true, false] {
        let sx = if left { -1.0 } else { 1.0 };
        let apex_c = [sx * 60.0, -15.0, if left { 40.0 } else { 45.0 }];
        let labels = if left {
            vec![LUNG_UPPER_LEFT, LUNG_LOWER_LEFT]
        } else {
            vec![LUNG_UPPER_RIGHT, LUNG_MIDDLE_RIGHT, LUNG_LOWER_RIGHT]
        };
        o.push(Obj {
            lo: [if left { -140.0 } else { 15.0 }, -95.0, -130.0],
            hi: [if left { -15.0 } else { 140.0 }, 90.0, 220.0],
            labels,
            rule: Box::new(move |p, cur| {
                if cur != BODY || sx * p[0] < 20.0 {
                    return None;
                }
                let inside = cavity_sdf(p) <= 0.0
                    && ellipsoid(p, apex_c, [95.0, 110.0, 170.0]) <= 0.0
                    && domes_sdf(p) >= 5.0
                    && h.sdf(p) >= 4.0;
                if !inside {
                    return None;
                }
                // Oblique fissure: from ~T4 posteriorly to the anterior diaphragm; the
                // horizontal fissure (right only) near the 4th costal cartilage.
                let oblique = p[1] + p[2];
                Some(if left {
                    if oblique < 58.0 {
                        LUNG_LOWER_LEFT
                    } else {
                        LUNG_UPPER_LEFT
                    }
                } else if oblique < 48.0 {
                    LUNG_LOWER_RIGHT
                } else if p[2] > 75.0 - 0.15 * p[1] {
                    LUNG_UPPER_RIGHT
                } else {
                    LUNG_MIDDLE_RIGHT
                })
            }),
        });
    }

    o
}

/// Erector spinae and psoas on both sides.
fn back_muscles() -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    // Paravertebral muscles (erector spinae) and psoas.
    for left in [true, false] {
        let sx = if left { -1.0 } else { 1.0 };
        let id = if left {
            AUTOCHTHON_LEFT
        } else {
            AUTOCHTHON_RIGHT
        };
        let (x0, x1) = if left { (-65.0, 0.0) } else { (0.0, 65.0) };
        o.push(Obj::solid(
            id,
            ([x0, -105.0, -300.0], [x1, -50.0, 290.0]),
            move |p| {
                let t = abd_t(p[2]);
                let (cy, a, b) = (
                    lerp(-80.0, -76.0, t),
                    lerp(20.0, 27.0, t),
                    lerp(12.0, 20.0, t),
                );
                ellipse(p[0] - sx * 30.0, p[1] - cy, a, b).max((p[2] + 5.0).abs() - 290.0)
            },
        ));
        let id = if left {
            ILIOPSOAS_LEFT
        } else {
            ILIOPSOAS_RIGHT
        };
        o.extend(tube_obj(
            id,
            Tube::new(&[
                ([sx * 24.0, -42.0, -75.0], 5.0),
                ([sx * 32.0, -40.0, -130.0], 13.0),
                ([sx * 42.0, -36.0, -190.0], 20.0),
                ([sx * 55.0, -25.0, -250.0], 24.0),
                ([sx * 70.0, -5.0, -310.0], 22.0),
            ]),
        ));
    }

    o
}

/// Stomach, spleen, pancreas, kidneys, liver and gallbladder under the domes.
fn upper_abdomen() -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    // Upper abdominal organs under the domes.
    let stomach = Tube::new(&[
        ([-55.0, -5.0, -40.0], 33.0),
        ([-60.0, 15.0, -75.0], 32.0),
        ([-40.0, 45.0, -105.0], 26.0),
        ([-10.0, 50.0, -115.0], 18.0),
        ([12.0, 40.0, -118.0], 12.0),
    ]);
    o.push(Obj::solid(STOMACH, stomach.bbox(), move |p| {
        stomach.sdf(p).max(domes_sdf(p) + 3.0)
    }));
    let spleen = OrientedEllipsoid {
        c: [-82.0, -42.0, -65.0],
        axes: frame([-0.25, 0.55, -0.8], [-1.0, -0.5, 0.0]),
        r: [58.0, 22.0, 36.0],
    };
    o.push(Obj::solid(SPLEEN, spleen.bbox(), move |p| {
        spleen
            .sdf(p)
            .max(domes_sdf(p) + 3.0)
            .max(body_cavity_sdf(p))
    }));
    o.extend(tube_obj(
        PANCREAS,
        Tube::new(&[
            ([20.0, 22.0, -118.0], 14.0),
            ([-10.0, 12.0, -108.0], 11.0),
            ([-40.0, -5.0, -100.0], 10.0),
            ([-68.0, -25.0, -92.0], 8.0),
        ]),
    ));
    for left in [true, false] {
        let k = kidney(left);
        let sx = if left { -1.0 } else { 1.0 };
        let hilum = [k.c[0] - sx * 28.0, k.c[1] + 8.0, k.c[2]];
        let id = if left { KIDNEY_LEFT } else { KIDNEY_RIGHT };
        o.push(Obj::solid(id, k.bbox(), move |p| {
            k.sdf(p).max(12.0 - norm(sub(p, hilum)))
        }));
    }
    let kr = kidney(false);
    o.push(Obj::solid(
        LIVER,
        ([-75.0, -90.0, -170.0], [150.0, 85.0, 25.0]),
        move |p| {
            let right = ellipsoid(p, [68.0, 2.0, -70.0], [72.0, 82.0, 90.0]);
            let left = ellipsoid(p, [0.0, 40.0, -48.0], [70.0, 38.0, 28.0]);
            smin(right, left, 15.0)
                .max(domes_sdf(p) + 5.0)
                .max(body_cavity_sdf(p))
                .max(5.0 - kr.sdf(p))
                .max(-ellipse(p[0], p[1] + 45.0, 35.0, 40.0))
        },
    ));
    let gb = OrientedEllipsoid {
        c: [48.0, 48.0, -115.0],
        axes: frame([-0.2, 0.5, -0.84], [1.0, 0.0, 0.0]),
        r: [38.0, 15.0, 15.0],
    };
    o.push(Obj::solid(GALLBLADDER, gb.bbox(), move |p| gb.sdf(p)));

    o
}

/// Trachea, oesophagus, aorta with iliac arteries, venae cavae.
fn airway_and_vessels() -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    // Airway, oesophagus and great vessels.
    o.extend(tube_obj(
        TRACHEA,
        Tube::new(&[
            ([0.0, 8.0, 300.0], 9.5),
            ([0.0, 4.0, 230.0], 9.5),
            ([0.0, 2.0, 175.0], 9.0),
            ([0.0, 0.0, 125.0], 9.0),
        ]),
    ));
    o.extend(tube_obj(
        ESOPHAGUS,
        Tube::new(&[
            ([0.0, -10.0, 300.0], 7.0),
            ([-2.0, -14.0, 200.0], 7.0),
            ([-4.0, -14.0, 120.0], 7.0),
            ([-8.0, -10.0, 40.0], 7.0),
            ([-14.0, -2.0, -25.0], 7.5),
            ([-30.0, 0.0, -45.0], 9.0),
        ]),
    ));
    o.extend(tube_obj(
        AORTA,
        Tube::new(&[
            ([-6.0, 18.0, 45.0], 14.0),
            ([-2.0, 26.0, 95.0], 15.0),
            ([0.0, 18.0, 132.0], 13.5),
            ([-14.0, -4.0, 142.0], 12.5),
            ([-26.0, -20.0, 125.0], 12.0),
            ([-27.0, -22.0, 80.0], 12.0),
            ([-22.0, -20.0, 10.0], 11.5),
            ([-12.0, -14.0, -50.0], 11.0),
            ([-6.0, -6.0, -110.0], 10.5),
            ([-5.0, -4.0, -170.0], 10.0),
            ([-4.0, -2.0, -205.0], 9.0),
        ]),
    ));
    for left in [true, false] {
        let sx = if left { -1.0 } else { 1.0 };
        o.extend(tube_obj(
            if left {
                ILIAC_ARTERY_LEFT
            } else {
                ILIAC_ARTERY_RIGHT
            },
            Tube::new(&[
                ([-4.0, -2.0, -205.0], 7.0),
                ([-4.0 + sx * 26.0, 0.0, -240.0], 7.0),
                ([-4.0 + sx * 51.0, 8.0, -280.0], 6.5),
                ([-4.0 + sx * 66.0, 15.0, -320.0], 6.0),
            ]),
        ));
    }
    o.extend(tube_obj(
        INFERIOR_VENA_CAVA,
        Tube::new(&[
            ([22.0, -2.0, -240.0], 11.0),
            ([22.0, -2.0, -150.0], 11.5),
            ([25.0, 2.0, -80.0], 12.0),
            ([22.0, 10.0, -30.0], 13.0),
            ([12.0, 16.0, -5.0], 13.0),
        ]),
    ));
    o.extend(tube_obj(
        SUPERIOR_VENA_CAVA,
        Tube::new(&[
            ([22.0, 22.0, 165.0], 10.0),
            ([22.0, 22.0, 110.0], 10.0),
            ([16.0, 20.0, 60.0], 10.0),
        ]),
    ));

    o
}

/// Vertebrae, sternum, ribs with costal cartilages, then the cord in its canal.
fn skeleton() -> Vec<Obj> {
    let mut o: Vec<Obj> = Vec::new();
    // Skeleton: vertebrae, sternum, ribs with costal cartilages, then the cord in its canal.
    let verts = vertebrae();
    for v in &verts {
        o.push(vertebra_obj(v));
    }
    o.push(Obj::solid(
        STERNUM,
        ([-30.0, 60.0, 0.0], [30.0, 90.0, 190.0]),
        |p| {
            let rx = 17.0 + 10.0 * smoothstep(150.0, 180.0, p[2]);
            ellipse(p[0], p[1] - 74.0, rx, 7.0).max((p[2] - 95.0).abs() - 90.0)
        },
    ));
    let mut carts = Vec::new();
    for left in [true, false] {
        for n in 1..=12 {
            let name = format!("T{n}");
            let zc = verts
                .iter()
                .find(|v| Some(v.id) == vertebra_id(&name))
                .map(|v| v.zc)
                .unwrap_or(0.0);
            let (rib, cart) = rib_path(left, n, zc);
            o.extend(tube_obj(rib_id(left, n), rib));
            carts.extend(cart);
        }
    }
    for c in carts {
        o.extend(tube_obj(COSTAL_CARTILAGES, c));
    }
    let cord: Vec<(V3, f64)> = verts
        .iter()
        .filter(|v| v.zc > -120.0)
        .map(|v| {
            (
                [0.0, canal_y(v.zc, v.r, v.region), v.zc],
                if v.region == 'C' { 6.5 } else { 5.0 },
            )
        })
        .chain(std::iter::once((
            [0.0, canal_y(-120.0, 22.0, 'L'), -120.0],
            2.0,
        )))
        .collect();
    o.extend(tube_obj(SPINAL_CORD, Tube::new(&cord)));
    o
}
