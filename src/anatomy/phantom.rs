//! Procedural phantoms: thorax and abdomen (two windows onto one trunk model), head, and the
//! water-cylinder and CT QA phantoms.
//!
//! Geometry lives in a "standard frame": millimetres of a median adult male (170 cm, 72 kg),
//! RAS+ as NIfTI defines it (+x toward the patient's right, +y anterior, +z superior). Trunk z = 0 is the top of the right
//! hemidiaphragm dome. A subject is rendered through [`Frame`]: world = standard × s (s =
//! height/170) with the template's z window centred on the grid. Subcutaneous fat thickness
//! follows BMI in real millimetres.
//!
//! Dimensions are textbook-typical adult values (Gray's Anatomy 42nd ed.; Standring), tuned so
//! organ volumes fall in ranges reported for CT volumetry (lungs 4–6 L at inspiration, liver
//! ~1.5 L, kidneys ~150 mL, spleen ~200 mL, brain ~1.2–1.4 L). They are a phantom, not an atlas.

use super::geom::*;
use super::ontology::*;
use super::{BodySize, Sex, Template};
use crate::volume::{Grid, Volume};

mod trunk;
use trunk::{trunk, tube_obj};

/// Per-subject scale factors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizing {
    /// Linear scale of organs with height (standard frame → world).
    pub s: f64,
    /// Subcutaneous fat thickness (mm, real) from BMI.
    pub fat_mm: f64,
}

/// Subcutaneous fat thickness (mm) at a BMI: ~5 mm at BMI 18 to ~40 mm at BMI 35, linear
/// between (abdominal wall ultrasound/CT series report roughly this span; the phantoms and
/// the atlas band only need the trend).
pub(crate) fn subcutaneous_fat_mm(bmi: f64) -> f64 {
    (5.0 + (bmi - 18.0) * 35.0 / 17.0).clamp(3.0, 60.0)
}

pub(crate) fn sizing(t: Template, body: &BodySize) -> Sizing {
    let fat_mm = subcutaneous_fat_mm(body.bmi());
    let lin = body.height_cm / 170.0;
    let s = match t {
        // Head size grows much more slowly than height; female brains ~9 % smaller by volume.
        Template::HeadPhantom => lin.powf(0.33) * if body.sex == Sex::Female { 0.97 } else { 1.0 },
        Template::WaterCylinder | Template::CtQa => 1.0,
        _ => lin,
    };
    Sizing { s, fat_mm }
}

/// Trunk z (standard frame) placed at the grid centre, and the trunk z range the template
/// shows (objects wholly outside it are left out, so labels match `template_labels`).
fn trunk_window(t: Template) -> (f64, [f64; 2]) {
    match t {
        Template::ThoraxPhantom => (80.0, [-130.0, 290.0]),
        _ => (-120.0, [-320.0, 80.0]),
    }
}

/// Renders a template on `grid`. `noise_seed` varies the noise-driven details (gyri, bowel).
pub(crate) fn render_template(
    t: Template,
    grid: &Grid,
    body: &BodySize,
    noise_seed: u64,
) -> Volume<u16> {
    let sz = sizing(t, body);
    let (z_shift, objs) = objects(t, &sz, noise_seed);
    render(grid, Frame { s: sz.s, z_shift }, &objs, 0)
}

pub(crate) fn template_label_set(t: Template) -> Vec<u16> {
    let body = BodySize::median();
    let (_, objs) = objects(t, &sizing(t, &body), 0);
    let mut ids: Vec<u16> = objs.iter().flat_map(|o| o.labels.iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn objects(t: Template, sz: &Sizing, seed: u64) -> (f64, Vec<Obj>) {
    match t {
        Template::ThoraxPhantom | Template::AbdomenPhantom => {
            let (shift, win) = trunk_window(t);
            let objs = trunk(sz.fat_mm / sz.s, seed)
                .into_iter()
                .filter(|o| o.hi[2] >= win[0] && o.lo[2] <= win[1])
                .collect();
            (shift, objs)
        }
        Template::HeadPhantom => (0.0, head(seed)),
        // An atlas is read, not drawn: nothing procedural.
        Template::Abdomen | Template::Head | Template::Chest => (0.0, Vec::new()),
        Template::WaterCylinder => (0.0, qa(false)),
        Template::CtQa => (0.0, qa(true)),
    }
}

const BIG: f64 = 1.0e6;

// ---------------------------------------------------------------------------------------
// Head
// ---------------------------------------------------------------------------------------

fn head(seed: u64) -> Vec<Obj> {
    // Adult head ~16 × 20 cm outside, skull ~7 mm, scalp ~6 mm, subarachnoid CSF ~3 mm,
    // cortex 2.5–3 mm thick (Fischl & Dale 2000) with gyri ~15 mm apart.
    let scalp = [84.0, 102.0, 80.0];
    let skull = [78.0, 96.0, 74.0];
    let icv = [71.0, 89.0, 67.0];
    let brain = [68.0, 86.0, 64.0];
    let bb = |r: V3| (scale(r, -1.0), r);
    let mut o = tube_obj(
        BODY,
        Tube::new(&[([0.0, -10.0, -50.0], 55.0), ([0.0, -15.0, -300.0], 58.0)]),
    );
    o.push(Obj::solid(SCALP, bb(scalp), move |p| {
        ellipsoid(p, [0.0; 3], scalp)
    }));
    o.push(Obj::solid(SKULL, bb(skull), move |p| {
        ellipsoid(p, [0.0; 3], skull)
    }));
    o.push(Obj::solid(CSF, bb(icv), move |p| {
        ellipsoid(p, [0.0; 3], icv)
    }));
    o.push(Obj {
        lo: scale(brain, -1.0),
        hi: brain,
        labels: vec![CSF, GREY_MATTER, WHITE_MATTER],
        rule: Box::new(move |p, _| {
            let e = ellipsoid(p, [0.0; 3], brain);
            if e > 0.0 {
                return None;
            }
            // Interhemispheric fissure.
            if p[0].abs() < 1.5 && e > -45.0 {
                return Some(CSF);
            }
            // Sulci are the zero set of smooth noise, narrowing with depth; white matter
            // reaches up into the gyral crowns and stays deep under the sulci.
            let n = fbm(p, 16.0, seed ^ 0x6A1);
            let depth = -e;
            if n.abs() < 0.1 * (1.0 - depth / 14.0) {
                return Some(CSF);
            }
            let ribbon = 4.0 + 12.0 * (1.0 - smoothstep(0.0, 0.5, n.abs()));
            Some(if depth > ribbon {
                WHITE_MATTER
            } else {
                GREY_MATTER
            })
        }),
    });
    for sx in [1.0, -1.0] {
        // Deep grey nuclei (thalamus, basal ganglia) beside the ventricles.
        let c = [sx * 18.0, -5.0, 0.0];
        let r = [12.0, 22.0, 14.0];
        o.push(Obj::solid(GREY_MATTER, (sub(c, r), add(c, r)), move |p| {
            ellipsoid(p, c, r)
        }));
        o.extend(tube_obj(
            LATERAL_VENTRICLES,
            Tube::new(&[
                ([sx * 12.0, 32.0, 8.0], 5.5),
                ([sx * 14.0, 5.0, 16.0], 5.0),
                ([sx * 18.0, -25.0, 10.0], 6.5),
                ([sx * 20.0, -45.0, 4.0], 3.5),
            ]),
        ));
        o.extend(tube_obj(
            LATERAL_VENTRICLES,
            Tube::new(&[
                ([sx * 18.0, -25.0, 10.0], 5.0),
                ([sx * 28.0, -15.0, -12.0], 4.0),
                ([sx * 30.0, 5.0, -22.0], 3.0),
            ]),
        ));
    }
    o
}

// ---------------------------------------------------------------------------------------
// QA phantoms
// ---------------------------------------------------------------------------------------

/// 200 mm water cylinder along z; the CT QA variant adds five 25 mm rods on a 60 mm radius
/// (a CATPHAN CTP404-like sensitometry layout, simplified).
fn qa(inserts: bool) -> Vec<Obj> {
    let inf = [BIG, BIG, BIG];
    let mut o = vec![Obj::solid(
        WATER,
        ([-100.0, -100.0, -inf[2]], [100.0, 100.0, inf[2]]),
        |p| p[0].hypot(p[1]) - 100.0,
    )];
    if inserts {
        let ids = [
            INSERT_AIR,
            INSERT_FAT,
            INSERT_ACRYLIC,
            INSERT_BONE,
            INSERT_IODINE,
        ];
        for (k, id) in ids.into_iter().enumerate() {
            let a = std::f64::consts::FRAC_PI_2 + k as f64 * 2.0 * std::f64::consts::PI / 5.0;
            let (cx, cy) = (60.0 * a.cos(), 60.0 * a.sin());
            o.push(Obj::solid(
                id,
                ([cx - 13.0, cy - 13.0, -BIG], [cx + 13.0, cy + 13.0, BIG]),
                move |p| (p[0] - cx).hypot(p[1] - cy) - 12.5,
            ));
        }
    }
    o
}
