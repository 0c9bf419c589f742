//! `manifest.parquet`: one row per subject × arm.
//!
//! The Arrow schema is written out explicitly (every field non-null, list items non-null):
//! a schema inferred per batch flips nullability between batches and shards, and then
//! `synthcohort merge` or pandas/polars concatenation fails. Equal rows give equal bytes.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::OffsetBufferBuilder;
use arrow_array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, StructArray, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::IoError;

/// One inserted lesion, as sampled by the cohort stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionRow {
    pub label_id: u16,
    pub condition: String,
    pub kind: String,
    pub organ: String,
    pub shape: String,
    /// `inside`, `surface` or `exophytic` (see `anatomy::LesionPlacement`); runs recorded
    /// before placements existed read as `inside`.
    #[serde(default = "inside")]
    pub placement: String,
    /// World position (RAS+, mm) of the lesion centre.
    pub center_mm: [f64; 3],
    pub diameter_mm: f64,
    pub volume_ml: f64,
    /// Fraction of the lesion's voxels inside its organ (1 unless exophytic).
    #[serde(default = "whole")]
    pub fraction_in_organ: f64,
    /// `replace` or `displace` (see `anatomy::LesionGrowth`).
    #[serde(default = "replace")]
    pub growth: String,
    /// The lesion's second part with its label id, `name:id` (`fluid:205`), or empty.
    #[serde(default)]
    pub parts: String,
}

fn replace() -> String {
    "replace".into()
}

fn inside() -> String {
    "inside".into()
}

fn whole() -> f64 {
    1.0
}

/// One output image (subject × acquisition arm) and everything needed to trace it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub subject_id: String,
    pub subject_index: u64,
    pub arm: String,
    pub modality: String,
    pub seed: u64,
    /// Years.
    pub age: f64,
    pub sex: String,
    pub height_cm: f64,
    pub weight_kg: f64,
    /// kg/m².
    pub bmi: f64,
    pub conditions: Vec<String>,
    pub lesions: Vec<LesionRow>,
    pub prompt: String,
    /// Relative to the run directory.
    pub image_path: String,
    pub label_path: String,
    pub image_sha256: String,
    pub label_sha256: String,
    pub image_dims: [u32; 3],
    pub spacing_mm: [f64; 3],
    /// Grid of the tissue object the image was acquired from (differs from the image grid
    /// when a scanner reconstructs onto its own matrix).
    pub object_dims: [u32; 3],
    pub object_spacing_mm: [f64; 3],
    /// The arm's resolved protocol (and realised artifacts) as JSON.
    pub protocol: String,
    /// CTDIvol in mGy (0 for arms without ionising radiation).
    pub ctdi_vol_mgy: f64,
    /// The subject's water-equivalent diameter in the CT image (AAPM 220), mm (0: not CT).
    pub water_equivalent_diameter_mm: f64,
    /// Size-specific dose estimate (AAPM 204), mGy (0: not CT).
    pub ssde_mgy: f64,
    pub generator: String,
    pub pipeline_sha256: String,
    pub synthcohort_version: String,
    /// What the subject's anatomy was built on: the template's name, or the file name of the
    /// imported label map it was drawn from (`anatomy.source` may list several).
    #[serde(default)]
    pub anatomy_source: String,
}

const ZSTD_LEVEL: i32 = 3;

fn item(dt: DataType) -> FieldRef {
    Arc::new(Field::new("item", dt, false))
}

fn list(dt: DataType) -> DataType {
    DataType::List(item(dt))
}

fn lesion_fields() -> Fields {
    Fields::from(vec![
        Field::new("label_id", DataType::UInt16, false),
        Field::new("condition", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("organ", DataType::Utf8, false),
        Field::new("shape", DataType::Utf8, false),
        Field::new("placement", DataType::Utf8, false),
        Field::new("center_mm", list(DataType::Float64), false),
        Field::new("diameter_mm", DataType::Float64, false),
        Field::new("volume_ml", DataType::Float64, false),
        Field::new("fraction_in_organ", DataType::Float64, false),
        Field::new("growth", DataType::Utf8, false),
        Field::new("parts", DataType::Utf8, false),
    ])
}

/// The manifest's Arrow schema; columns in [`ManifestRow`] field order, none nullable.
pub fn manifest_schema() -> SchemaRef {
    let f = |name: &str, dt: DataType| Field::new(name, dt, false);
    Arc::new(Schema::new(vec![
        f("subject_id", DataType::Utf8),
        f("subject_index", DataType::UInt64),
        f("arm", DataType::Utf8),
        f("modality", DataType::Utf8),
        f("seed", DataType::UInt64),
        f("age", DataType::Float64),
        f("sex", DataType::Utf8),
        f("height_cm", DataType::Float64),
        f("weight_kg", DataType::Float64),
        f("bmi", DataType::Float64),
        f("conditions", list(DataType::Utf8)),
        f("lesions", list(DataType::Struct(lesion_fields()))),
        f("prompt", DataType::Utf8),
        f("image_path", DataType::Utf8),
        f("label_path", DataType::Utf8),
        f("image_sha256", DataType::Utf8),
        f("label_sha256", DataType::Utf8),
        f("image_dims", list(DataType::UInt32)),
        f("spacing_mm", list(DataType::Float64)),
        f("object_dims", list(DataType::UInt32)),
        f("object_spacing_mm", list(DataType::Float64)),
        f("protocol", DataType::Utf8),
        f("ctdi_vol_mgy", DataType::Float64),
        f("water_equivalent_diameter_mm", DataType::Float64),
        f("ssde_mgy", DataType::Float64),
        f("generator", DataType::Utf8),
        f("pipeline_sha256", DataType::Utf8),
        f("synthcohort_version", DataType::Utf8),
        f("anatomy_source", DataType::Utf8),
    ]))
}

fn list_array(
    dt: DataType,
    lengths: impl IntoIterator<Item = usize>,
    values: ArrayRef,
) -> Result<ArrayRef, IoError> {
    let mut offsets = OffsetBufferBuilder::<i32>::new(0);
    for n in lengths {
        offsets.try_push_length(n).map_err(|e| {
            IoError::ManifestWrite(parquet::errors::ParquetError::General(format!(
                "list offsets: {e}"
            )))
        })?;
    }
    let list = ListArray::try_new(item(dt), offsets.finish(), values, None)
        .map_err(|e| IoError::ManifestWrite(e.into()))?;
    Ok(Arc::new(list))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn f64s(it: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(it))
}

fn batch(rows: &[ManifestRow]) -> Result<RecordBatch, IoError> {
    let lesions: Vec<&LesionRow> = rows.iter().flat_map(|r| &r.lesions).collect();
    let lesion_struct = StructArray::try_new(
        lesion_fields(),
        vec![
            Arc::new(UInt16Array::from_iter_values(
                lesions.iter().map(|l| l.label_id),
            )),
            strings(lesions.iter().map(|l| l.condition.as_str())),
            strings(lesions.iter().map(|l| l.kind.as_str())),
            strings(lesions.iter().map(|l| l.organ.as_str())),
            strings(lesions.iter().map(|l| l.shape.as_str())),
            strings(lesions.iter().map(|l| l.placement.as_str())),
            list_array(
                DataType::Float64,
                lesions.iter().map(|_| 3),
                f64s(lesions.iter().flat_map(|l| l.center_mm)),
            )?,
            f64s(lesions.iter().map(|l| l.diameter_mm)),
            f64s(lesions.iter().map(|l| l.volume_ml)),
            f64s(lesions.iter().map(|l| l.fraction_in_organ)),
            strings(lesions.iter().map(|l| l.growth.as_str())),
            strings(lesions.iter().map(|l| l.parts.as_str())),
        ],
        None,
    )
    .map_err(|e| IoError::ManifestWrite(e.into()))?;

    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.subject_id.as_str())),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.subject_index),
        )),
        strings(rows.iter().map(|r| r.arm.as_str())),
        strings(rows.iter().map(|r| r.modality.as_str())),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
        f64s(rows.iter().map(|r| r.age)),
        strings(rows.iter().map(|r| r.sex.as_str())),
        f64s(rows.iter().map(|r| r.height_cm)),
        f64s(rows.iter().map(|r| r.weight_kg)),
        f64s(rows.iter().map(|r| r.bmi)),
        list_array(
            DataType::Utf8,
            rows.iter().map(|r| r.conditions.len()),
            strings(
                rows.iter()
                    .flat_map(|r| r.conditions.iter().map(String::as_str)),
            ),
        )?,
        list_array(
            DataType::Struct(lesion_fields()),
            rows.iter().map(|r| r.lesions.len()),
            Arc::new(lesion_struct),
        )?,
        strings(rows.iter().map(|r| r.prompt.as_str())),
        strings(rows.iter().map(|r| r.image_path.as_str())),
        strings(rows.iter().map(|r| r.label_path.as_str())),
        strings(rows.iter().map(|r| r.image_sha256.as_str())),
        strings(rows.iter().map(|r| r.label_sha256.as_str())),
        list_array(
            DataType::UInt32,
            rows.iter().map(|_| 3),
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().flat_map(|r| r.image_dims),
            )),
        )?,
        list_array(
            DataType::Float64,
            rows.iter().map(|_| 3),
            f64s(rows.iter().flat_map(|r| r.spacing_mm)),
        )?,
        list_array(
            DataType::UInt32,
            rows.iter().map(|_| 3),
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().flat_map(|r| r.object_dims),
            )),
        )?,
        list_array(
            DataType::Float64,
            rows.iter().map(|_| 3),
            f64s(rows.iter().flat_map(|r| r.object_spacing_mm)),
        )?,
        strings(rows.iter().map(|r| r.protocol.as_str())),
        f64s(rows.iter().map(|r| r.ctdi_vol_mgy)),
        f64s(rows.iter().map(|r| r.water_equivalent_diameter_mm)),
        f64s(rows.iter().map(|r| r.ssde_mgy)),
        strings(rows.iter().map(|r| r.generator.as_str())),
        strings(rows.iter().map(|r| r.pipeline_sha256.as_str())),
        strings(rows.iter().map(|r| r.synthcohort_version.as_str())),
        strings(rows.iter().map(|r| r.anatomy_source.as_str())),
    ];
    RecordBatch::try_new(manifest_schema(), columns).map_err(|e| IoError::ManifestWrite(e.into()))
}

/// Encodes the rows as a zstd-compressed Parquet file in memory (one row group for the usual
/// cohort sizes). Deterministic: equal rows give equal bytes.
pub fn encode_manifest(rows: &[ManifestRow]) -> Result<Vec<u8>, IoError> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(IoError::ManifestWrite)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), manifest_schema(), Some(props))
        .map_err(IoError::ManifestWrite)?;
    if !rows.is_empty() {
        writer
            .write(&batch(rows)?)
            .map_err(IoError::ManifestWrite)?;
    }
    writer.into_inner().map_err(IoError::ManifestWrite)
}

/// Reads a manifest written by [`encode_manifest`] (any number of row groups). A file whose
/// schema differs from [`manifest_schema`] is an error naming the first differing column.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, IoError> {
    let err = |reason: String| IoError::ManifestRead {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| IoError::io("opening", path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| err(e.to_string()))?;
    let expected = manifest_schema();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        check_schema(batch.schema().fields(), expected.fields()).map_err(|e| err(e.to_string()))?;
        decode(&batch, &mut rows).map_err(|e| err(e.to_string()))?;
    }
    Ok(rows)
}

/// What is wrong with a manifest's columns.
#[derive(Debug, thiserror::Error)]
enum ColumnError {
    #[error("missing column `{0}`")]
    Missing(String),
    #[error("column `{name}` is {got} (expected {want})")]
    Type {
        name: String,
        got: String,
        want: String,
    },
    #[error("column `{0}` has nulls")]
    Nulls(String),
    #[error("missing lesion field `{0}`")]
    MissingLesionField(String),
    #[error("`{name}` has {n} values (expected 3)")]
    NotThree { name: String, n: usize },
}

fn check_schema(got: &Fields, want: &Fields) -> Result<(), ColumnError> {
    for w in want.iter() {
        match got.iter().find(|g| g.name() == w.name()) {
            None => return Err(ColumnError::Missing(w.name().clone())),
            Some(g) if g.data_type() != w.data_type() => {
                return Err(ColumnError::Type {
                    name: w.name().clone(),
                    got: g.data_type().to_string(),
                    want: w.data_type().to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn downcast<'a, A: Array + 'static>(a: &'a dyn Array, name: &str) -> Result<&'a A, ColumnError> {
    a.as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| ColumnError::Type {
            name: name.to_string(),
            got: a.data_type().to_string(),
            want: std::any::type_name::<A>()
                .rsplit("::")
                .next()
                .unwrap_or("")
                .to_string(),
        })
}

fn col<'a, A: Array + 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a A, ColumnError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| ColumnError::Missing(name.to_string()))?;
    if c.null_count() > 0 {
        return Err(ColumnError::Nulls(name.to_string()));
    }
    downcast(c.as_ref(), name)
}

fn struct_col<'a, A: Array + 'static>(
    s: &'a StructArray,
    name: &str,
) -> Result<&'a A, ColumnError> {
    let c = s
        .column_by_name(name)
        .ok_or_else(|| ColumnError::MissingLesionField(name.to_string()))?;
    downcast(c.as_ref(), name)
}

/// A list column's per-row value ranges plus its values downcast to `A`.
fn list_col<'a, A: Array + 'static>(
    list: &'a ListArray,
    name: &str,
) -> Result<(Vec<std::ops::Range<usize>>, &'a A), ColumnError> {
    let o = list.value_offsets();
    let ranges = o.windows(2).map(|w| w[0] as usize..w[1] as usize).collect();
    Ok((ranges, downcast(list.values().as_ref(), name)?))
}

fn fixed3<T: Copy + Default>(v: &[T], name: &str) -> Result<[T; 3], ColumnError> {
    <[T; 3]>::try_from(v).map_err(|_| ColumnError::NotThree {
        name: name.to_string(),
        n: v.len(),
    })
}

fn decode(b: &RecordBatch, rows: &mut Vec<ManifestRow>) -> Result<(), ColumnError> {
    let s = |name: &str| col::<StringArray>(b, name);
    let f = |name: &str| col::<Float64Array>(b, name);
    let (subject_id, arm, modality, sex, prompt) = (
        s("subject_id")?,
        s("arm")?,
        s("modality")?,
        s("sex")?,
        s("prompt")?,
    );
    let (image_path, label_path) = (s("image_path")?, s("label_path")?);
    // Manifests written before anatomy sources were recorded lack it.
    let anatomy_source = s("anatomy_source").ok();
    let (image_sha, label_sha) = (s("image_sha256")?, s("label_sha256")?);
    let (generator, pipeline_sha, version) = (
        s("generator")?,
        s("pipeline_sha256")?,
        s("synthcohort_version")?,
    );
    let subject_index = col::<UInt64Array>(b, "subject_index")?;
    let seed = col::<UInt64Array>(b, "seed")?;
    let (age, height, weight, bmi) = (f("age")?, f("height_cm")?, f("weight_kg")?, f("bmi")?);
    let (cond_r, cond_v) = list_col::<StringArray>(col(b, "conditions")?, "conditions")?;
    let (dims_r, dims_v) = list_col::<UInt32Array>(col(b, "image_dims")?, "image_dims")?;
    let (sp_r, sp_v) = list_col::<Float64Array>(col(b, "spacing_mm")?, "spacing_mm")?;
    let (odims_r, odims_v) = list_col::<UInt32Array>(col(b, "object_dims")?, "object_dims")?;
    let (osp_r, osp_v) =
        list_col::<Float64Array>(col(b, "object_spacing_mm")?, "object_spacing_mm")?;
    let protocol = s("protocol")?;
    let ctdi = f("ctdi_vol_mgy")?;
    let (dw, ssde) = (f("water_equivalent_diameter_mm")?, f("ssde_mgy")?);
    let (les_r, les) = list_col::<StructArray>(col(b, "lesions")?, "lesions")?;

    let l_id = struct_col::<UInt16Array>(les, "label_id")?;
    let ls = |name: &str| struct_col::<StringArray>(les, name);
    let (l_cond, l_kind, l_organ, l_shape) =
        (ls("condition")?, ls("kind")?, ls("organ")?, ls("shape")?);
    let (l_ctr_r, l_ctr_v) =
        list_col::<Float64Array>(struct_col::<ListArray>(les, "center_mm")?, "center_mm")?;
    let l_diam = struct_col::<Float64Array>(les, "diameter_mm")?;
    let l_vol = struct_col::<Float64Array>(les, "volume_ml")?;
    let l_place = ls("placement")?;
    let l_frac = struct_col::<Float64Array>(les, "fraction_in_organ")?;
    // Manifests written before lesion parts existed lack these two.
    let l_growth = ls("growth").ok();
    let l_parts = ls("parts").ok();
    let lesion = |i: usize| -> Result<LesionRow, ColumnError> {
        Ok(LesionRow {
            label_id: l_id.value(i),
            condition: l_cond.value(i).to_string(),
            kind: l_kind.value(i).to_string(),
            organ: l_organ.value(i).to_string(),
            shape: l_shape.value(i).to_string(),
            placement: l_place.value(i).to_string(),
            center_mm: fixed3(&l_ctr_v.values()[l_ctr_r[i].clone()], "center_mm")?,
            diameter_mm: l_diam.value(i),
            volume_ml: l_vol.value(i),
            fraction_in_organ: l_frac.value(i),
            growth: l_growth.map_or_else(replace, |c| c.value(i).to_string()),
            parts: l_parts.map_or_else(String::new, |c| c.value(i).to_string()),
        })
    };

    for i in 0..b.num_rows() {
        rows.push(ManifestRow {
            subject_id: subject_id.value(i).to_string(),
            subject_index: subject_index.value(i),
            arm: arm.value(i).to_string(),
            modality: modality.value(i).to_string(),
            seed: seed.value(i),
            age: age.value(i),
            sex: sex.value(i).to_string(),
            height_cm: height.value(i),
            weight_kg: weight.value(i),
            bmi: bmi.value(i),
            conditions: cond_r[i]
                .clone()
                .map(|j| cond_v.value(j).to_string())
                .collect(),
            lesions: les_r[i].clone().map(lesion).collect::<Result<_, _>>()?,
            prompt: prompt.value(i).to_string(),
            image_path: image_path.value(i).to_string(),
            label_path: label_path.value(i).to_string(),
            image_sha256: image_sha.value(i).to_string(),
            label_sha256: label_sha.value(i).to_string(),
            image_dims: fixed3(&dims_v.values()[dims_r[i].clone()], "image_dims")?,
            spacing_mm: fixed3(&sp_v.values()[sp_r[i].clone()], "spacing_mm")?,
            object_dims: fixed3(&odims_v.values()[odims_r[i].clone()], "object_dims")?,
            object_spacing_mm: fixed3(&osp_v.values()[osp_r[i].clone()], "object_spacing_mm")?,
            protocol: protocol.value(i).to_string(),
            ctdi_vol_mgy: ctdi.value(i),
            water_equivalent_diameter_mm: dw.value(i),
            ssde_mgy: ssde.value(i),
            generator: generator.value(i).to_string(),
            pipeline_sha256: pipeline_sha.value(i).to_string(),
            synthcohort_version: version.value(i).to_string(),
            anatomy_source: anatomy_source.map_or_else(String::new, |c| c.value(i).to_string()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: u64, n_lesions: usize) -> ManifestRow {
        ManifestRow {
            subject_id: format!("sub-{k:04}"),
            subject_index: k,
            arm: "mas25".into(),
            modality: "ct".into(),
            seed: u64::MAX - k,
            age: 62.5 + k as f64,
            sex: if k % 2 == 0 { "female" } else { "male" }.into(),
            height_cm: 170.0,
            weight_kg: 75.2,
            bmi: 26.02,
            conditions: (0..n_lesions.min(2)).map(|c| format!("cond{c}")).collect(),
            lesions: (0..n_lesions)
                .map(|l| LesionRow {
                    label_id: 200 + l as u16,
                    condition: "solid_nodule".into(),
                    kind: "nodule".into(),
                    organ: "lung".into(),
                    shape: "lobulated".into(),
                    placement: "inside".into(),
                    center_mm: [l as f64, -3.5, 12.25],
                    diameter_mm: 6.0,
                    volume_ml: 0.113,
                    fraction_in_organ: 1.0,
                    growth: "replace".into(),
                    parts: if l == 1 {
                        "fluid:202".into()
                    } else {
                        String::new()
                    },
                })
                .collect(),
            prompt: "chest CT, female, 62 years, solid nodule".into(),
            image_path: format!("images/sub-{k:04}_mas25.nii.gz"),
            label_path: format!("labels/sub-{k:04}.nii.gz"),
            image_sha256: "ab".repeat(32),
            label_sha256: "cd".repeat(32),
            image_dims: [192, 192, 128],
            spacing_mm: [2.0, 2.0, 2.5],
            object_dims: [192, 192, 128],
            object_spacing_mm: [2.0, 2.0, 2.5],
            protocol: r#"{"modality":"ct","kvp":120}"#.into(),
            ctdi_vol_mgy: 7.5,
            water_equivalent_diameter_mm: 280.0,
            ssde_mgy: 9.6,
            generator: "procedural".into(),
            pipeline_sha256: "ef".repeat(32),
            synthcohort_version: "0.1.0".into(),
            anatomy_source: "abdomen".into(),
        }
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let rows: Vec<ManifestRow> = (0..7).map(|k| row(k, (k % 3) as usize)).collect();
        let bytes = encode_manifest(&rows).unwrap();
        assert_eq!(bytes, encode_manifest(&rows).unwrap());
        assert_eq!(&bytes[..4], b"PAR1");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.parquet");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_manifest(&p).unwrap(), rows);
    }

    #[test]
    fn schema_in_file_is_explicit_and_compressed_with_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        std::fs::write(&p, encode_manifest(&[row(0, 1)]).unwrap()).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(File::open(&p).unwrap()).unwrap();
        assert_eq!(b.schema().fields(), manifest_schema().fields());
        assert!(b.schema().fields().iter().all(|f| !f.is_nullable()));
        let md = b.metadata();
        let col = md.row_group(0).column(0);
        assert!(matches!(col.compression(), Compression::ZSTD(_)));
    }

    #[test]
    fn empty_manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        std::fs::write(&p, encode_manifest(&[]).unwrap()).unwrap();
        assert!(read_manifest(&p).unwrap().is_empty());
    }

    #[test]
    fn garbage_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        std::fs::write(&p, b"PAR1 nonsense").unwrap();
        let e = read_manifest(&p).unwrap_err().to_string();
        assert!(e.contains("m.parquet"), "{e}");
        assert!(read_manifest(&dir.path().join("none.parquet")).is_err());
    }
}
