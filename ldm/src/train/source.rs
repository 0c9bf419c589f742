//! Where the training loops get their cases: from memory (tests, evaluation), or from a
//! folder of raw little-endian files written one case at a time and read back a crop at a
//! time, so that training holds about one case and a batch however large the dataset is.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{crop, Case};
use crate::model::LdmConfig;
use crate::LdmError;

/// The training cases as the loops see them. Crops are taken at `at` (low corner, voxels)
/// with `size` voxels, zero (object) and background (classes) outside the case, channel-major
/// with x fastest, physical values.
pub trait CaseSource {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn dims(&self, i: usize) -> [usize; 3];
    fn spacing_mm(&self, i: usize) -> [f32; 3];
    fn prompt(&self, i: usize) -> &str;
    /// `false` for a case whose labels were derived, not drawn (an unlabeled image): the
    /// autoencoder trains on it, but the class statistics it is normalised by come only from
    /// labelled cases.
    fn labelled(&self, _i: usize) -> bool {
        true
    }
    fn crop_object(&self, i: usize, at: [usize; 3], size: [usize; 3])
        -> Result<Vec<f32>, LdmError>;
    fn crop_classes(&self, i: usize, at: [usize; 3], size: [usize; 3])
        -> Result<Vec<u8>, LdmError>;
    fn crop(
        &self,
        i: usize,
        at: [usize; 3],
        size: [usize; 3],
    ) -> Result<(Vec<f32>, Vec<u8>), LdmError> {
        Ok((
            self.crop_object(i, at, size)?,
            self.crop_classes(i, at, size)?,
        ))
    }
    /// The whole case, for the passes that need all of it (class statistics, latents).
    fn case(&self, i: usize) -> Result<Cow<'_, Case>, LdmError>;
    fn classes(&self, i: usize) -> Result<Cow<'_, [u8]>, LdmError> {
        Ok(match self.case(i)? {
            Cow::Borrowed(c) => Cow::Borrowed(&c.classes),
            Cow::Owned(c) => Cow::Owned(c.classes),
        })
    }
    /// Refuses cases that do not fit the model (value counts, classes) before training.
    fn check(&self, cfg: &LdmConfig) -> Result<(), LdmError>;
}

impl<T: AsRef<[Case]>> CaseSource for T {
    fn len(&self) -> usize {
        self.as_ref().len()
    }
    fn dims(&self, i: usize) -> [usize; 3] {
        self.as_ref()[i].dims
    }
    fn spacing_mm(&self, i: usize) -> [f32; 3] {
        self.as_ref()[i].spacing_mm
    }
    fn prompt(&self, i: usize) -> &str {
        &self.as_ref()[i].prompt
    }
    fn crop_object(
        &self,
        i: usize,
        at: [usize; 3],
        size: [usize; 3],
    ) -> Result<Vec<f32>, LdmError> {
        let c = &self.as_ref()[i];
        let ch = c.object.len() / c.classes.len().max(1);
        Ok(crop(&c.object, ch, c.dims, size, at))
    }
    fn crop_classes(
        &self,
        i: usize,
        at: [usize; 3],
        size: [usize; 3],
    ) -> Result<Vec<u8>, LdmError> {
        let c = &self.as_ref()[i];
        Ok(crop(&c.classes, 1, c.dims, size, at))
    }
    fn case(&self, i: usize) -> Result<Cow<'_, Case>, LdmError> {
        Ok(Cow::Borrowed(&self.as_ref()[i]))
    }
    fn check(&self, cfg: &LdmConfig) -> Result<(), LdmError> {
        let cases = self.as_ref();
        if cases.is_empty() {
            return Err(LdmError::Input("no training cases".into()));
        }
        for (i, c) in cases.iter().enumerate() {
            let n: usize = c.dims.iter().product();
            if c.object.len() != n * cfg.channels.len() || c.classes.len() != n {
                return Err(LdmError::Input(format!(
                    "case {i}: object has {} values and labels {}, dims {:?} × {} channels need {} and {n}",
                    c.object.len(),
                    c.classes.len(),
                    c.dims,
                    cfg.channels.len(),
                    n * cfg.channels.len()
                )));
            }
            if let Some(bad) = c
                .classes
                .iter()
                .find(|&&k| usize::from(k) >= cfg.classes.len())
            {
                return Err(LdmError::Input(format!(
                    "case {i}: class {bad} outside the model's classes"
                )));
            }
        }
        Ok(())
    }
}

const INDEX_FILE: &str = "index.json";

/// One case of a [`DiskCases`] folder: `<file>.f32` (object, channel-major) and `<file>.u8`
/// (classes) beside the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    file: String,
    dims: [usize; 3],
    spacing_mm: [f32; 3],
    prompt: String,
    labelled: bool,
    /// Highest class index, so that [`CaseSource::check`] needs no pass over the data.
    max_class: u8,
}

#[derive(Serialize, Deserialize)]
struct Index {
    channels: usize,
    cases: Vec<Entry>,
}

/// Training cases in a folder written by [`DiskCaseWriter`], read a crop (one seek and read
/// per row) or a case at a time.
#[derive(Clone, Debug)]
pub struct DiskCases {
    dir: PathBuf,
    channels: usize,
    entries: Vec<Entry>,
}

/// Writes cases one at a time into a folder for [`DiskCases`].
pub struct DiskCaseWriter {
    dir: PathBuf,
    channels: usize,
    entries: Vec<Entry>,
}

/// One case to write: each channel's physical values (x fastest) and the class of each voxel.
pub struct CaseParts<'a> {
    pub channels: &'a [&'a [f32]],
    pub classes: &'a [u8],
    pub dims: [usize; 3],
    pub spacing_mm: [f32; 3],
    pub prompt: &'a str,
    pub labelled: bool,
}

impl DiskCaseWriter {
    /// Starts an empty folder (creating it; cases already there are not listed).
    pub fn create(dir: &Path, channels: usize) -> Result<Self, LdmError> {
        std::fs::create_dir_all(dir).map_err(|e| LdmError::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            channels,
            entries: Vec::new(),
        })
    }

    pub fn add(&mut self, c: &CaseParts) -> Result<(), LdmError> {
        let n: usize = c.dims.iter().product();
        if c.channels.len() != self.channels
            || c.channels.iter().any(|ch| ch.len() != n)
            || c.classes.len() != n
        {
            return Err(LdmError::Input(format!(
                "case {}: {} channels of {:?} values and {} classes for dims {:?} (need {} × {n})",
                self.entries.len(),
                c.channels.len(),
                c.channels.iter().map(|ch| ch.len()).collect::<Vec<_>>(),
                c.classes.len(),
                c.dims,
                self.channels
            )));
        }
        let file = self.entries.len().to_string();
        let path = self.dir.join(format!("{file}.f32"));
        let f = File::create(&path).map_err(|e| LdmError::io(&path, e))?;
        let mut w = BufWriter::new(f);
        let mut bytes = Vec::with_capacity(4 << 14);
        for ch in c.channels {
            for chunk in ch.chunks(1 << 14) {
                bytes.clear();
                bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                w.write_all(&bytes).map_err(|e| LdmError::io(&path, e))?;
            }
        }
        w.flush().map_err(|e| LdmError::io(&path, e))?;
        let path = self.dir.join(format!("{file}.u8"));
        std::fs::write(&path, c.classes).map_err(|e| LdmError::io(&path, e))?;
        self.entries.push(Entry {
            file,
            dims: c.dims,
            spacing_mm: c.spacing_mm,
            prompt: c.prompt.to_string(),
            labelled: c.labelled,
            max_class: c.classes.iter().copied().max().unwrap_or(0),
        });
        Ok(())
    }

    /// Writes the index and opens the folder.
    pub fn finish(self) -> Result<DiskCases, LdmError> {
        let index = Index {
            channels: self.channels,
            cases: self.entries,
        };
        let path = self.dir.join(INDEX_FILE);
        let tmp = self.dir.join(format!("{INDEX_FILE}.tmp"));
        let text = serde_json::to_string(&index).map_err(|e| LdmError::Input(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| LdmError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LdmError::io(&path, e))?;
        Ok(DiskCases {
            dir: self.dir,
            channels: index.channels,
            entries: index.cases,
        })
    }
}

impl DiskCases {
    pub fn open(dir: &Path) -> Result<Self, LdmError> {
        let path = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| LdmError::io(&path, e))?;
        let index: Index = serde_json::from_str(&text)
            .map_err(|e| LdmError::Input(format!("{}: {e}", path.display())))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            channels: index.channels,
            entries: index.cases,
        })
    }

    /// The labelled cases only, in order (what the denoiser trains on).
    pub fn labelled_only(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            channels: self.channels,
            entries: self
                .entries
                .iter()
                .filter(|e| e.labelled)
                .cloned()
                .collect(),
        }
    }

    fn path(&self, i: usize, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.entries[i].file))
    }

    /// Reads the rows of `(channel, z, y)` that the crop overlaps from the object (`true`)
    /// or the classes file; `put(offset in the crop, row bytes)`.
    fn read_rows(
        &self,
        i: usize,
        object: bool,
        at: [usize; 3],
        size: [usize; 3],
        mut put: impl FnMut(usize, &[u8]),
    ) -> Result<(), LdmError> {
        let (ext, ch, width) = if object {
            ("f32", self.channels, 4)
        } else {
            ("u8", 1, 1)
        };
        let path = self.path(i, ext);
        let mut f = File::open(&path).map_err(|e| LdmError::io(&path, e))?;
        let d = self.entries[i].dims;
        let n = d[0] * d[1] * d[2];
        let x_len = d[0].saturating_sub(at[0]).min(size[0]);
        if x_len == 0 {
            return Ok(());
        }
        let mut buf = vec![0u8; x_len * width];
        let mut o = 0;
        for c in 0..ch {
            for z in 0..size[2] {
                for y in 0..size[1] {
                    let (sy, sz) = (at[1] + y, at[2] + z);
                    if sy < d[1] && sz < d[2] {
                        let v = c * n + (sz * d[1] + sy) * d[0] + at[0];
                        f.seek(SeekFrom::Start((v * width) as u64))
                            .and_then(|_| f.read_exact(&mut buf))
                            .map_err(|e| LdmError::io(&path, e))?;
                        put(o, &buf);
                    }
                    o += size[0];
                }
            }
        }
        Ok(())
    }

    fn read_all(&self, i: usize, ext: &str) -> Result<Vec<u8>, LdmError> {
        let path = self.path(i, ext);
        std::fs::read(&path).map_err(|e| LdmError::io(&path, e))
    }
}

fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl CaseSource for DiskCases {
    fn len(&self) -> usize {
        self.entries.len()
    }
    fn dims(&self, i: usize) -> [usize; 3] {
        self.entries[i].dims
    }
    fn spacing_mm(&self, i: usize) -> [f32; 3] {
        self.entries[i].spacing_mm
    }
    fn prompt(&self, i: usize) -> &str {
        &self.entries[i].prompt
    }
    fn labelled(&self, i: usize) -> bool {
        self.entries[i].labelled
    }
    fn crop_object(
        &self,
        i: usize,
        at: [usize; 3],
        size: [usize; 3],
    ) -> Result<Vec<f32>, LdmError> {
        let mut out = vec![0f32; self.channels * size.iter().product::<usize>()];
        self.read_rows(i, true, at, size, |o, row| {
            for (dst, v) in out[o..].iter_mut().zip(f32s(row)) {
                *dst = v;
            }
        })?;
        Ok(out)
    }
    fn crop_classes(
        &self,
        i: usize,
        at: [usize; 3],
        size: [usize; 3],
    ) -> Result<Vec<u8>, LdmError> {
        let mut out = vec![0u8; size.iter().product::<usize>()];
        self.read_rows(i, false, at, size, |o, row| {
            out[o..o + row.len()].copy_from_slice(row);
        })?;
        Ok(out)
    }
    fn case(&self, i: usize) -> Result<Cow<'_, Case>, LdmError> {
        let e = &self.entries[i];
        Ok(Cow::Owned(Case {
            object: f32s(&self.read_all(i, "f32")?).collect(),
            classes: self.read_all(i, "u8")?,
            dims: e.dims,
            spacing_mm: e.spacing_mm,
            prompt: e.prompt.clone(),
        }))
    }
    fn classes(&self, i: usize) -> Result<Cow<'_, [u8]>, LdmError> {
        Ok(Cow::Owned(self.read_all(i, "u8")?))
    }
    fn check(&self, cfg: &LdmConfig) -> Result<(), LdmError> {
        if self.entries.is_empty() {
            return Err(LdmError::Input("no training cases".into()));
        }
        if self.channels != cfg.channels.len() {
            return Err(LdmError::Input(format!(
                "{}: {} channels per case, the model has {}",
                self.dir.display(),
                self.channels,
                cfg.channels.len()
            )));
        }
        for (i, e) in self.entries.iter().enumerate() {
            let n = e.dims.iter().product::<usize>() as u64;
            for (ext, want) in [("f32", 4 * n * self.channels as u64), ("u8", n)] {
                let p = self.path(i, ext);
                let len = std::fs::metadata(&p)
                    .map_err(|e| LdmError::io(&p, e))?
                    .len();
                if len != want {
                    return Err(LdmError::Input(format!(
                        "{}: {len} bytes, dims {:?} need {want}",
                        p.display(),
                        e.dims
                    )));
                }
            }
            if usize::from(e.max_class) >= cfg.classes.len() {
                return Err(LdmError::Input(format!(
                    "case {i}: class {} outside the model's classes",
                    e.max_class
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn case(dims: [usize; 3], ch: usize, seed: usize) -> Case {
        let n: usize = dims.iter().product();
        Case {
            object: (0..ch * n)
                .map(|v| ((v * 7919 + seed) % 1013) as f32 - 500.25)
                .collect(),
            classes: (0..n).map(|v| ((v * 31 + seed) % 5) as u8).collect(),
            dims,
            spacing_mm: [1.5, 2.0, 3.0],
            prompt: format!("case {seed}"),
        }
    }

    /// Writes cases (any channel count) into a [`DiskCases`] folder; `labelled[i]` marks case i.
    pub(crate) fn write(dir: &Path, cases: &[Case], labelled: &[bool]) -> DiskCases {
        let ch = cases[0].object.len() / cases[0].classes.len();
        let mut w = DiskCaseWriter::create(dir, ch).unwrap();
        for (c, &l) in cases.iter().zip(labelled) {
            let n = c.classes.len();
            let chans: Vec<&[f32]> = c.object.chunks(n).collect();
            w.add(&CaseParts {
                channels: &chans,
                classes: &c.classes,
                dims: c.dims,
                spacing_mm: c.spacing_mm,
                prompt: &c.prompt,
                labelled: l,
            })
            .unwrap();
        }
        w.finish().unwrap()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ldm-src-{tag}-{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    /// Crops inside, across every edge and wholly outside a case give the same values and
    /// the same zero/background padding from disk as from memory; whole cases round-trip.
    #[test]
    fn disk_crops_equal_memory_crops_with_padding() {
        let dir = tempdir("crops");
        let cases = vec![case([7, 5, 3], 2, 1), case([16, 9, 11], 2, 2)];
        write(&dir, &cases, &[true, false]);
        let disk = DiskCases::open(&dir).unwrap();
        assert_eq!(disk.len(), 2);
        assert!(disk.labelled(0) && !disk.labelled(1));
        assert_eq!(disk.labelled_only().len(), 1);
        for i in 0..2 {
            assert_eq!(disk.case(i).unwrap().object, cases[i].object);
            assert_eq!(disk.case(i).unwrap().classes, cases[i].classes);
            assert_eq!(*disk.classes(i).unwrap(), cases[i].classes[..]);
            assert_eq!(disk.prompt(i), cases[i].prompt);
            assert_eq!(disk.spacing_mm(i), cases[i].spacing_mm);
            let d = cases[i].dims;
            let mut crops = 0;
            for at in [
                [0, 0, 0],
                [3, 2, 1],
                [d[0] - 2, d[1] - 1, d[2] - 1],
                [d[0] + 1, 0, 0],
            ] {
                for size in [[4, 4, 4], [16, 16, 16], [1, 3, 2]] {
                    let mem = cases.crop(i, at, size).unwrap();
                    let got = disk.crop(i, at, size).unwrap();
                    assert!(mem == got, "case {i} crop at {at:?} size {size:?}");
                    crops += 1;
                }
            }
            // Some crops hold padding, some values: the comparison is not vacuous.
            let padded = cases.crop(i, [d[0] - 2, 0, 0], [4, 4, 4]).unwrap();
            assert!(padded.0.contains(&0.0) && padded.0.iter().any(|&v| v != 0.0));
            assert_eq!(crops, 12);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn disk_cases_that_do_not_fit_the_model_are_refused() {
        let dir = tempdir("check");
        let mut cfg = crate::tests::tiny_config();
        let disk = write(&dir, &[case([4, 4, 4], 1, 3)], &[true]);
        // Classes 0–4 against the tiny model's 3.
        let e = disk.check(&cfg).unwrap_err().to_string();
        assert!(e.contains("class 4 outside"), "{e}");
        cfg.classes = (0..5).map(|c| format!("c{c}")).collect();
        disk.check(&cfg).unwrap();
        std::fs::write(dir.join("0.u8"), [0u8; 10]).unwrap();
        let e = disk.check(&cfg).unwrap_err().to_string();
        assert!(e.contains("10 bytes"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}
