# Generates src/acquire/ct/tables.rs from /work/shared/reference/*.tsv (plain Python).
import collections
def fmt(v, d):
    t = ('%%.%dg' % d) % v
    return t if any(c in t for c in '.e') else t + '.0'
R = '/work/shared/reference/'
def rows(f):
    out = []
    for line in open(R + f):
        if line.startswith('#'): continue
        out.append(line.rstrip('\n').split('\t'))
    return out
sp = rows('ct_spectra_spekpy.tsv')[1:]
spec = collections.defaultdict(dict)
for k, e, f in sp:
    spec[int(float(k))][float(e)] = float(f)
kvps = sorted(spec)
E0, E1 = 10, 140
o = []
o.append('//! Reference tables, generated from the project\'s `shared/reference/` TSV files (do not edit by hand).')
o.append('//!')
o.append('//! - [`SPEKPY_KVP`], [`SPEKPY_FLUENCE`]: SpekPy 2.5.4 tungsten spectra (12° anode, 2.5 mm Al, 100 cm),')
o.append('//!   `ct_spectra_spekpy.tsv` rebinned from 0.5 keV to 1 keV bins centred on 10..=140 keV;')
o.append('//!   photons / mm² / mAs per 1 keV bin at 1 m (the TSV is per cm² per keV: ×0.5 keV per half bin, ÷100).')
o.append('//! - [`MU_RHO_MATERIALS`], [`MU_RHO`]: total mass attenuation μ/ρ (cm²/g), 10..=150 keV in 1 keV steps,')
o.append('//!   `ct_mass_attenuation.tsv` (Elam, Ravel & Sieber elemental data via xraydb 4.5.8, mixed by ICRU-46')
o.append('//!   mass fractions; cross-checked against XCIST/CatSim within 0.15 %).')
o.append('//! - [`DENSITY`]: ICRU-46 / NIST densities (g/cm³) from `ct_materials.tsv`.')
o.append('')
o.append('/// First energy (keV) of the spectrum bins.')
o.append(f'pub const SPEKPY_E0_KEV: usize = {E0};')
o.append(f'/// Number of 1 keV spectrum bins ({E0}..={E1} keV).')
o.append(f'pub const SPEKPY_BINS: usize = {E1-E0+1};')
o.append(f'pub const SPEKPY_KVP: [f64; {len(kvps)}] = [{", ".join("%.1f"%k for k in kvps)}];')
o.append(f'#[rustfmt::skip]')
o.append(f'pub const SPEKPY_FLUENCE: [[f32; {E1-E0+1}]; {len(kvps)}] = [')
for k in kvps:
    vals = []
    for E in range(E0, E1+1):
        f = spec[k].get(E-0.25, 0.0) + spec[k].get(E+0.25, 0.0)
        vals.append(f * 0.5 / 100.0)
    o.append('    [' + ','.join(fmt(v, 5) for v in vals) + '],')
o.append('];')
mu = rows('ct_mass_attenuation.tsv')
hdr = mu[0][1:]
data = mu[1:]
assert int(data[0][0]) == 10 and int(data[-1][0]) == 150
o.append('')
o.append('/// First energy (keV) of the μ/ρ rows.')
o.append('pub const MU_E0_KEV: usize = 10;')
o.append(f'pub const MU_ROWS: usize = {len(data)};')
o.append(f'pub const MU_RHO_MATERIALS: [&str; {len(hdr)}] = [{", ".join(chr(34)+h+chr(34) for h in hdr)}];')
o.append('#[rustfmt::skip]')
o.append(f'pub const MU_RHO: [[f32; {len(hdr)}]; {len(data)}] = [')
for r in data:
    o.append('    [' + ','.join(fmt(float(v), 6) for v in r[1:]) + '],')
o.append('];')
mats = {r[0]: float(r[1]) for r in rows('ct_materials.tsv')[1:]}
o.append(f'pub const DENSITY: [f64; {len(hdr)}] = [{", ".join(repr(mats[h]) for h in hdr)}];')
open('/work/main/src/acquire/ct/tables.rs', 'w').write('\n'.join(o) + '\n')
