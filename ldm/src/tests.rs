//! Model-level tests: shapes end to end, checkpoints, determinism, training and resume.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};

use crate::model::{self, Ldm, LdmConfig};
use crate::train::{
    self, Case, CaseSource, Hooks, OptimState, Resume, Stage, StepLog, TrainOptions,
};
use crate::unet::Cond;
use crate::{ChannelSpec, Cpu, CpuTrain, LdmError, Modality, SampleRequest, Solver, Tokenizer};

pub fn tiny_config() -> LdmConfig {
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    let classes = vec!["background".into(), "organ".into(), "bone".into()];
    let tok = Tokenizer::build(["ct with fatty organ", "ct normal organ"], 16);
    let mut cfg = LdmConfig::for_data("tiny", Modality::Ct, ch, classes, tok);
    cfg.autoencoder.channels = [4, 8, 8];
    cfg.autoencoder.label_dim = 4;
    cfg.unet.channels = [8, 8, 16];
    cfg.unet.emb_dim = 16;
    cfg.unet.heads = 2;
    cfg.text.d_model = 16;
    cfg.unet.d_text = 16;
    cfg.text.layers = 1;
    cfg.text.heads = 2;
    cfg
}

/// A sphere "organ" (class 1, 40 HU, or −40 HU when the prompt says fatty) and a slab of
/// "bone" (class 2, 700 HU) in air-ish background (−900 HU), 16³ voxels of 4 mm.
pub fn tiny_cases(n: usize) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let d = 16usize;
            let fatty = i % 2 == 1;
            let r = 4.0 + (i % 3) as f32;
            let mut object = Vec::new();
            let mut classes = Vec::new();
            for z in 0..d {
                for y in 0..d {
                    for x in 0..d {
                        let c = [x, y, z].map(|v| v as f32 - 7.5 + (i % 2) as f32);
                        let inside = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt() < r;
                        let (k, hu) = if inside {
                            (1u8, if fatty { -40.0 } else { 40.0 })
                        } else if z < 3 {
                            (2, 700.0)
                        } else {
                            (0, -900.0)
                        };
                        classes.push(k);
                        object.push(hu);
                    }
                }
            }
            Case {
                object,
                classes,
                dims: [d; 3],
                spacing_mm: [4.0; 3],
                prompt: if fatty {
                    "ct with fatty organ"
                } else {
                    "ct normal organ"
                }
                .into(),
            }
        })
        .collect()
}

fn request<'a>(classes: &'a [u8], seed: u64) -> SampleRequest<'a> {
    SampleRequest {
        classes,
        dims: [16, 16, 12],
        spacing_mm: [4.0; 3],
        prompt: "ct with fatty organ",
        seed,
        steps: 4,
        solver: Solver::Heun,
        guidance: crate::Guidance {
            text: 2.0,
            labels: 1.5,
        },
    }
}

#[test]
fn shapes_through_the_whole_model() {
    let dev = Default::default();
    let cfg = tiny_config();
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let x = crate::model::normal_tensor::<Cpu, 5>([2, 1, 16, 32, 48], 1, &dev);
    let labels = Tensor::<Cpu, 4, Int>::zeros([2, 16, 32, 48], &dev);
    let post = m.autoencoder.encode(x, labels.clone());
    assert_eq!(post.mean.dims(), [2, 4, 4, 8, 12]);
    assert_eq!(post.logvar.dims(), [2, 4, 4, 8, 12]);
    assert_eq!(
        m.autoencoder.decode(post.mean.clone(), labels).dims(),
        [2, 1, 16, 32, 48]
    );
    let tb = cfg.tokenizer.batch::<Cpu>(&["ct normal organ", ""], &dev);
    let cond = Cond {
        labels: Tensor::zeros([2, 3, 4, 8, 12], &dev),
        text: m.text.forward(&tb),
        pad: tb.pad,
        scalars: Tensor::zeros([2, 4], &dev),
    };
    assert_eq!(
        m.unet.forward(post.mean, &[0.3, 0.9], &cond).dims(),
        [2, 4, 4, 8, 12]
    );
    // Sampling pads 12 → 16 internally and crops back.
    let classes = vec![1u8; 16 * 16 * 12];
    let out = model::sample(&m, &cfg, &request(&classes, 1), &dev, |_, _| {}).unwrap();
    assert_eq!(out.len(), 16 * 16 * 12);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let dev = Default::default();
    let cfg = tiny_config();
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let short = vec![0u8; 10];
    assert!(model::sample(&m, &cfg, &request(&short, 1), &dev, |_, _| {}).is_err());
    let bad_class = vec![7u8; 16 * 16 * 12];
    let e = model::sample(&m, &cfg, &request(&bad_class, 1), &dev, |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("class index 7"), "{e}");
    let mut wrong = tiny_config();
    wrong.autoencoder.in_channels = 2;
    assert!(Ldm::<Cpu>::init(&wrong, &dev).is_err());
}

#[test]
fn same_seed_same_sample_other_seed_other_sample() {
    let dev = Default::default();
    let cfg = tiny_config();
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let classes: Vec<u8> = (0..16 * 16 * 12).map(|i| (i % 3) as u8).collect();
    let a = model::sample(&m, &cfg, &request(&classes, 5), &dev, |_, _| {}).unwrap();
    let b = model::sample(&m, &cfg, &request(&classes, 5), &dev, |_, _| {}).unwrap();
    let c = model::sample(&m, &cfg, &request(&classes, 6), &dev, |_, _| {}).unwrap();
    assert!(a == b, "same seed, different samples");
    assert!(a != c, "different seeds, same sample");
}

#[test]
fn checkpoint_round_trip_gives_identical_samples() {
    let dev = Default::default();
    let mut cfg = tiny_config();
    cfg.latent_scale = vec![0.7, 1.3, 0.2, 2.0];
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let dir = tempdir("ckpt");
    model::save(&m, &cfg, &dir).unwrap();
    let (m2, cfg2) = model::load::<Cpu>(&dir, &dev).unwrap();
    assert_eq!(cfg2.latent_scale, vec![0.7, 1.3, 0.2, 2.0]);
    assert_eq!(cfg2.tokenizer, cfg.tokenizer);
    let classes: Vec<u8> = (0..16 * 16 * 12).map(|i| (i % 3) as u8).collect();
    let a = model::sample(&m, &cfg, &request(&classes, 9), &dev, |_, _| {}).unwrap();
    let b = model::sample(&m2, &cfg2, &request(&classes, 9), &dev, |_, _| {}).unwrap();
    assert!(a == b, "loaded model samples differently");
    // A corrupted weights file is a clear error.
    std::fs::write(dir.join("weights.mpk.gz"), b"not weights").unwrap();
    let e = model::load::<Cpu>(&dir, &dev).unwrap_err();
    assert!(e.to_string().contains("model weights"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ldm-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Records losses and saves optimizer state at checkpoints.
struct Recorder {
    losses: Vec<(Stage, usize, f64)>,
    dir: std::path::PathBuf,
}

impl<B: AutodiffBackend> Hooks<B> for Recorder {
    fn step(&mut self, log: &StepLog) {
        self.losses.push((log.stage, log.step, log.loss));
    }
    fn checkpoint(
        &mut self,
        model: &Ldm<B>,
        cfg: &LdmConfig,
        stage: Stage,
        step: usize,
        optim: &dyn OptimState,
    ) -> Result<(), LdmError> {
        let d = self.dir.join(format!("{stage:?}-{step}"));
        model::save(model, cfg, &d)?;
        optim.save(&d.join("optimizer"))
    }
}

fn tiny_opts() -> TrainOptions {
    TrainOptions {
        seed: 3,
        ae_crop: [16, 16, 16],
        ae_batch: 2,
        ae_steps: 6,
        ae_lr: 2e-3,
        dm_crop: [4, 4, 4],
        dm_batch: 2,
        dm_steps: 6,
        dm_lr: 1e-3,
        checkpoint_every: 3,
        ..TrainOptions::default()
    }
}

fn run_both(dir: &Path, opts: &TrainOptions) -> Vec<(Stage, usize, f64)> {
    let cases = tiny_cases(4);
    run_on(dir, opts, &cases, &cases)
}

/// Both stages: the autoencoder on `ae_cases`, the denoiser on `dm_cases`.
fn run_on(
    dir: &Path,
    opts: &TrainOptions,
    ae_cases: &dyn CaseSource,
    dm_cases: &dyn CaseSource,
) -> Vec<(Stage, usize, f64)> {
    let dev = Default::default();
    let mut cfg = tiny_config();
    let m = Ldm::<CpuTrain>::init_seeded(&cfg, 11, &dev).unwrap();
    let mut rec = Recorder {
        losses: vec![],
        dir: dir.to_path_buf(),
    };
    let m = train::train_autoencoder(m, &cfg, ae_cases, opts, None, &mut rec, &dev).unwrap();
    let lat = train::encode_cases(&m, &cfg, dm_cases, &dev, |_| {}).unwrap();
    cfg.latent_scale = train::latent_scale(&lat, cfg.autoencoder.latent_channels);
    train::train_denoiser(m, &cfg, dm_cases, &lat, opts, None, &mut rec, &dev).unwrap();
    rec.losses
}

#[test]
fn training_is_deterministic_and_resumes_exactly() {
    let d1 = tempdir("train1");
    let d2 = tempdir("train2");
    let opts = tiny_opts();
    let a = run_both(&d1, &opts);
    let b = run_both(&d2, &opts);
    assert!(a == b, "same seed, different losses: {a:?} vs {b:?}");
    assert_eq!(a.len(), 12);

    // Resume the denoiser from its step-3 checkpoint: steps 4–6 repeat the losses above.
    let dev = Default::default();
    let ck = d1.join("Denoiser-3");
    let (m, cfg) = model::load::<CpuTrain>(&ck, &dev).unwrap();
    let cases = tiny_cases(4);
    let (ae, _) = model::load::<CpuTrain>(&d1.join("Autoencoder-6"), &dev).unwrap();
    let lat = train::encode_cases(&ae, &cfg, &cases, &dev, |_| {}).unwrap();
    let mut rec = Recorder {
        losses: vec![],
        dir: tempdir("train3"),
    };
    let resume = Resume {
        stage: Stage::Denoiser,
        step: 3,
        optimizer: &ck.join("optimizer"),
    };
    train::train_denoiser(m, &cfg, &cases, &lat, &opts, Some(resume), &mut rec, &dev).unwrap();
    let tail: Vec<_> = a
        .iter()
        .filter(|l| l.0 == Stage::Denoiser && l.1 > 3)
        .cloned()
        .collect();
    assert_eq!(rec.losses.len(), 3);
    for (x, y) in rec.losses.iter().zip(&tail) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        assert!(
            (x.2 - y.2).abs() <= 1e-6 * y.2.abs().max(1e-3),
            "resumed {x:?} vs {y:?}"
        );
    }
    for d in [d1, d2, rec.dir] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// The latent must carry what the labels cannot: the tiny cases' organ is +40 or −40 HU with
/// identical labels, so after a short training the reconstructions must each come back
/// within 10 HU. (The first design — the decoder adding a per-class bias to one output
/// map — reconstructed −10.0 vs −7.3 HU here and shipped models with no text effect.)
#[test]
fn autoencoder_latent_carries_what_labels_cannot() {
    let dev = Default::default();
    let cfg = tiny_config();
    let cases = tiny_cases(4);
    let m = Ldm::<CpuTrain>::init_seeded(&cfg, 5, &dev).unwrap();
    let opts = TrainOptions {
        ae_steps: 80,
        checkpoint_every: 1000,
        ..tiny_opts()
    };
    let mut rec = Recorder {
        losses: vec![],
        dir: tempdir("latent"),
    };
    let m = train::train_autoencoder(m, &cfg, &cases, &opts, None, &mut rec, &dev).unwrap();
    let organ_mean = |case: &Case| {
        let x = Tensor::<CpuTrain, 5>::from_data(
            burn::tensor::TensorData::new(
                case.object.iter().map(|v| v / 1000.0).collect::<Vec<f32>>(),
                [1, 1, 16, 16, 16],
            ),
            &dev,
        );
        let labels = Tensor::<CpuTrain, 4, Int>::from_data(
            burn::tensor::TensorData::new(
                case.classes
                    .iter()
                    .map(|&c| i64::from(c))
                    .collect::<Vec<_>>(),
                [1, 16, 16, 16],
            ),
            &dev,
        );
        let out = m
            .autoencoder
            .decode(m.autoencoder.encode(x, labels.clone()).mean, labels);
        let v = out.into_data().to_vec::<f32>().unwrap();
        let idx: Vec<usize> = (0..v.len()).filter(|&i| case.classes[i] == 1).collect();
        1000.0 * idx.iter().map(|&i| v[i]).sum::<f32>() / idx.len() as f32
    };
    // Cases 0 and 2 are normal (+40 HU), 1 and 3 fatty (−40 HU).
    let (normal, fatty) = (organ_mean(&cases[0]), organ_mean(&cases[1]));
    assert!(
        (normal - 40.0).abs() < 10.0 && (fatty + 40.0).abs() < 10.0,
        "reconstructed organ means {normal:.1} vs {fatty:.1} HU (truth 40 vs −40)"
    );
    std::fs::remove_dir_all(rec.dir).ok();
}

#[test]
fn average_pooling_by_four_matches_block_means() {
    let dev = Default::default();
    let (d, h, w) = (4usize, 8usize, 12usize);
    let v: Vec<f32> = (0..2 * d * h * w)
        .map(|i| ((i * 7919) % 101) as f32)
        .collect();
    let x = Tensor::<Cpu, 5>::from_data(
        burn::tensor::TensorData::new(v.clone(), [1, 2, d, h, w]),
        &dev,
    );
    let out = crate::autoencoder::avg_pool4(x)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(out.len(), 2 * 2 * 3);
    for c in 0..2 {
        for by in 0..2 {
            for bx in 0..3 {
                let mut s = 0.0;
                for z in 0..4 {
                    for y in 0..4 {
                        for x in 0..4 {
                            s += v[((c * d + z) * h + by * 4 + y) * w + bx * 4 + x];
                        }
                    }
                }
                let got = out[(c * 2 + by) * 3 + bx];
                assert!(
                    (got - s / 64.0).abs() < 1e-3,
                    "block {c},{by},{bx}: {got} vs {}",
                    s / 64.0
                );
            }
        }
    }
}

/// Grid padding must look like background to the latent: with the object padded by the
/// background's mean, the shortcut channel of an all-padding latent cell is exactly zero
/// (zero padding made it (0 − μ_background) / s, here +2.25 for a −900 HU background).
#[test]
fn padded_cells_encode_as_background() {
    let dev = Default::default();
    let cfg = tiny_config();
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let mut m = m;
    m.autoencoder = m
        .autoencoder
        .with_residual_stats(&[-0.9, 0.04, 0.7], &[0.4], 3, 1);
    let full = &tiny_cases(1)[0];
    // Keep the lower 12 slices: the grid pads back to 16, the last latent slice is padding.
    let n = 16 * 16 * 12;
    let case = Case {
        object: full.object[..n].to_vec(),
        classes: full.classes[..n].to_vec(),
        dims: [16, 16, 12],
        ..full.clone()
    };
    let lat = train::encode_cases(&m, &cfg, &[case], &dev, |_| {}).unwrap();
    let (z, pd) = &lat[0];
    assert_eq!(*pd, [16, 16, 16]);
    // Channel 0, latent slice z = 3 (object slices 12–15): 4 × 4 cells.
    let slice = &z[3 * 16..4 * 16];
    assert!(
        slice.iter().all(|v| v.abs() < 1e-5),
        "padding encodes as {slice:?}"
    );
    assert_eq!(z.len(), 4 * 4 * 4 * cfg.autoencoder.latent_channels);
}

/// Sampling pads the label map by repeating its edge voxels, not with background (air):
/// every added voxel takes the class of the nearest voxel inside the grid.
#[test]
fn sampling_pads_labels_with_their_edge() {
    let dims = [3, 2, 2];
    let v: Vec<u8> = (0..12).collect();
    let p = model::pad_volume_edge(&v, dims, [5, 4, 3]);
    assert_eq!(p.len(), 60);
    for z in 0..3 {
        for y in 0..4 {
            for x in 0..5 {
                let want = v[(z.min(1) * 2 + y.min(1)) * 3 + x.min(2)];
                assert_eq!(p[(z * 4 + y) * 5 + x], want, "({x}, {y}, {z})");
            }
        }
    }
}

#[test]
fn oversized_config_is_refused_before_it_is_read() {
    let dir = std::env::temp_dir().join(format!("ldm-big-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A sparse file: 1 GiB on paper, nothing on disk.
    let f = std::fs::File::create(dir.join(crate::model::CONFIG_FILE)).unwrap();
    f.set_len(1 << 30).unwrap();
    let e = crate::model::load_config(&dir).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(e.contains("larger than 1048576 bytes"), "{e}");
}

/// Augmentation off is the default and draws nothing: absent fields and explicitly-off ones
/// are the same options, and the first autoencoder batch's loss changes only when it is on.
/// (Before this test landed, the tiny run's 12 losses were checked bit for bit against the
/// code before augmentation existed; they are not pinned here because the denoiser's losses
/// vary in the 3rd digit between runs of the multi-threaded CPU backend.)
#[test]
fn augmentation_is_off_unless_asked_for() {
    let absent: TrainOptions = serde_json::from_str(r#"{"seed": 3}"#).unwrap();
    let off: TrainOptions = serde_json::from_str(
        r#"{"seed": 3, "ae_flip": [], "ae_gain_jitter": 0, "ae_shift_jitter": 0}"#,
    )
    .unwrap();
    assert_eq!(absent, off);
    assert_eq!(absent.ae_flip, TrainOptions::default().ae_flip);
    let dir = tempdir("aug-off");
    let one = TrainOptions {
        ae_steps: 1,
        dm_steps: 1,
        ..tiny_opts()
    };
    let plain = run_both(&dir, &one)[0].2;
    let again = run_both(&dir, &one)[0].2;
    assert_eq!(
        plain, again,
        "the first autoencoder loss is not reproducible"
    );
    let on = TrainOptions {
        ae_flip: vec![train::Axis::X, train::Axis::Y, train::Axis::Z],
        ae_gain_jitter: 0.3,
        ae_shift_jitter: 0.1,
        ..one
    };
    let first = run_both(&dir, &on)[0].2;
    assert!((first - plain).abs() > 1e-3, "{first} against {plain}");
    std::fs::remove_dir_all(dir).ok();
}

use crate::train::source::tests::write as write_disk;

/// Cases streamed from disk train as the same cases in memory (both stages, one case of
/// another size included so crops pad).
#[test]
fn disk_cases_train_exactly_like_memory_cases() {
    let dir = tempdir("disk-train");
    let mut cases = tiny_cases(4);
    // A case 16 × 16 × 12: crops and latents of it pad.
    let n = 16 * 16 * 12;
    cases[3] = Case {
        object: cases[3].object[..n].to_vec(),
        classes: cases[3].classes[..n].to_vec(),
        dims: [16, 16, 12],
        ..cases[3].clone()
    };
    let disk = write_disk(&dir.join("cases"), &cases, &[true; 4]);
    let opts = tiny_opts();
    let mem = run_on(&dir.join("a"), &opts, &cases, &cases);
    let streamed = run_on(&dir.join("b"), &opts, &disk, &disk.labelled_only());
    assert_eq!(mem.len(), 12);
    // The autoencoder's losses to the last bit (its crops are the same values); the
    // denoiser's to 1 % (they vary in the 3rd digit between runs of the multi-threaded CPU
    // backend).
    for (m, d) in mem.iter().zip(&streamed) {
        let tol = match m.0 {
            Stage::Autoencoder => 0.0,
            Stage::Denoiser => 1e-2 * m.2.abs(),
        };
        assert!(
            m.0 == d.0 && m.1 == d.1 && (m.2 - d.2).abs() <= tol,
            "memory {mem:?}\ndisk {streamed:?}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// An unlabeled case trains the autoencoder (its crops change the losses) but not the class
/// statistics the residual is measured from: +3000 HU everywhere would move the background
/// mean by a quarter if it counted.
#[test]
fn unlabeled_cases_train_the_autoencoder_but_not_its_class_statistics() {
    let dev = Default::default();
    let dir = tempdir("unlabeled");
    let cfg = tiny_config();
    let cases = tiny_cases(3);
    let mut odd = tiny_cases(1).remove(0);
    odd.object.iter_mut().for_each(|v| *v = 3000.0);
    odd.classes.iter_mut().for_each(|c| *c = 0);
    let mut with = cases.clone();
    with.push(odd);
    let disk = write_disk(&dir.join("cases"), &with, &[true, true, true, false]);
    let opts = TrainOptions {
        ae_steps: 4,
        checkpoint_every: 1000,
        ..tiny_opts()
    };
    let train = |src: &dyn CaseSource| {
        let m = Ldm::<CpuTrain>::init_seeded(&cfg, 11, &dev).unwrap();
        let mut rec = Recorder {
            losses: vec![],
            dir: dir.clone(),
        };
        let stats_only = TrainOptions {
            ae_steps: 0,
            ..opts.clone()
        };
        let m0 = train::train_autoencoder(m.clone(), &cfg, src, &stats_only, None, &mut rec, &dev)
            .unwrap();
        train::train_autoencoder(m, &cfg, src, &opts, None, &mut rec, &dev).unwrap();
        let means: Vec<Vec<f32>> = (0..3).map(|c| m0.autoencoder.class_mean(c)).collect();
        (means, rec.losses)
    };
    let (m_plain, l_plain) = train(&cases);
    let (m_with, l_with) = train(&disk);
    assert_eq!(m_plain, m_with);
    assert_ne!(l_plain, l_with);
    std::fs::remove_dir_all(dir).ok();
}

/// The companding of the shortcut channel is undone exactly by the sampler's expansion, and
/// the learned channels pass through untouched.
#[test]
fn companded_latents_expand_back() {
    let mut cfg = tiny_config();
    cfg.latent_compand = Some(0.1);
    cfg.check().unwrap();
    let zc = cfg.autoencoder.latent_channels;
    let n = 8;
    let raw: Vec<f32> = (0..zc * n).map(|i| (i as f32 - 12.0) * 0.07).collect();
    let mut z = raw.clone();
    cfg.compand_latent(&mut z);
    // −0.84 (≈ −114 HU of block mean on the real CT's scale) is compressed to −0.28.
    assert!((z[0] - 0.1 * (-8.4f32).asinh()).abs() < 1e-6, "{}", z[0]);
    assert_eq!(&z[n..], &raw[n..], "learned channels changed");
    let t = Tensor::<Cpu, 5>::from_data(
        burn::tensor::TensorData::new(z, [1, zc, 1, 1, n]),
        &Default::default(),
    );
    let back = model::expand_latent(t, &cfg)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    for (a, b) in raw.iter().zip(&back) {
        assert!(
            (a - b).abs() < 1e-4 * (1.0 + a.abs()),
            "{a} came back as {b}"
        );
    }
    cfg.latent_compand = Some(0.0);
    assert!(cfg.check().is_err());
}
