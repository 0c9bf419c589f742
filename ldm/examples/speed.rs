//! Rough timings of the model's pieces on the CPU backend (criterion benches live in the
//! main crate's `benches/ldm.rs`).
use std::time::Instant;

use burn::tensor::{Distribution, Int, Tensor};
use synthcohort_ldm::text::Tokenizer;
use synthcohort_ldm::unet::Cond;
use synthcohort_ldm::{ChannelSpec, Cpu, Ldm, LdmConfig, Modality};

fn main() {
    let dev = Default::default();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let [nx, ny, nz] = [args[0], args[1], args[2]];
    let k = 24;
    let ch = vec![ChannelSpec {
        name: "hu".into(),
        unit: "HU".into(),
        offset: 0.0,
        scale: 1000.0,
    }];
    let cfg = LdmConfig::for_data(
        "t",
        Modality::Ct,
        ch,
        (0..k).map(|i| i.to_string()).collect(),
        Tokenizer::build(["chest ct male 60 years"], 32),
    );
    let m = Ldm::<Cpu>::init(&cfg, &dev).unwrap();
    let z = Tensor::<Cpu, 5>::random(
        [1, 4, nz / 4, ny / 4, nx / 4],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    let lab = Tensor::<Cpu, 4, Int>::zeros([1, nz, ny, nx], &dev);
    for _ in 0..2 {
        let t = Instant::now();
        let out = m.autoencoder.decode(z.clone(), lab.clone());
        let _ = out.into_data();
        println!("decode {nx}x{ny}x{nz}: {:.3} s", t.elapsed().as_secs_f64());
    }
    let x = Tensor::<Cpu, 5>::random([1, 1, nz, ny, nx], Distribution::Normal(0.0, 1.0), &dev);
    let t = Instant::now();
    let _ = m.autoencoder.encode(x, lab.clone()).mean.into_data();
    println!("encode: {:.3} s", t.elapsed().as_secs_f64());
    for b in [1usize, 3] {
        let tb = cfg.tokenizer.batch::<Cpu>(&vec!["chest ct male"; b], &dev);
        let cond = Cond {
            labels: Tensor::zeros([b, k, nz / 4, ny / 4, nx / 4], &dev),
            text: m.text.forward(&tb),
            pad: tb.pad,
            scalars: Tensor::zeros([b, 4], &dev),
        };
        let zb = Tensor::<Cpu, 5>::random(
            [b, 4, nz / 4, ny / 4, nx / 4],
            Distribution::Normal(0.0, 1.0),
            &dev,
        );
        for _ in 0..3 {
            let t = Instant::now();
            let _ = m.unet.forward(zb.clone(), &vec![0.5; b], &cond).into_data();
            println!("unet batch {b}: {:.3} s", t.elapsed().as_secs_f64());
        }
    }
}
