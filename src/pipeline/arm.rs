//! Acquisition arms: one type per modality, each the simulator's own protocol.
//!
//! An arm in the pipeline file is a mapping tagged by `modality`. A CT arm is a partial overlay
//! of [`CtProtocol`] fields on the scanner preset, an MRI arm of [`MriProtocol`] fields on the
//! sequence's clinical preset, a `none` arm a [`PropertyArm`]. `acquisition.defaults` is merged
//! into every arm at the document level (the arm's own fields win), before any check, so a
//! field from the defaults is checked like the arm's own and reported at the defaults' line.
//! Field names, documentation and ranges come from the protocol types: nothing here lists
//! them, and the published schema is generated from the same types ([`arm_schema`]).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Problem;
use crate::acquire::ct::CtProtocol;
use crate::acquire::mri::{MriProtocol, Sequence};

/// An arm with its defaults merged in and its modality's settings resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Arm {
    pub name: String,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "modality", rename_all = "snake_case")]
pub enum Protocol {
    /// The image is a property map of the tissue object.
    None { property: PropertyMap, field_t: f64 },
    /// A CT scan (spectrum, projection, noise, reconstruction in HU).
    Ct(Box<CtProtocol>),
    /// An MRI acquisition (signal equations, k-space, coils, noise, artifacts).
    Mri(Box<MriProtocol>),
}

impl Protocol {
    pub fn modality(&self) -> &'static str {
        match self {
            Protocol::None { .. } => "none",
            Protocol::Ct(_) => "ct",
            Protocol::Mri(_) => "mri",
        }
    }
}

/// Which tissue property a `modality: none` arm writes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PropertyMap {
    /// CT attenuation in HU.
    #[default]
    Hu,
    /// Proton density relative to CSF.
    Pd,
    /// T1 in ms.
    T1,
    /// T2 in ms.
    T2,
    /// T2* in ms.
    T2star,
}

/// A `modality: none` arm: no scanner, the image is a property map of the tissue object.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyArm {
    /// Property written as the image.
    #[serde(default)]
    pub property: PropertyMap,
    /// Main field in tesla, 0.1–3 T: the relaxation tables (Stanisz 2005, 1.5 and 3 T) end at
    /// 3 T. It selects the relaxation of the T1/T2/T2*/PD maps.
    #[serde(default = "default_field_t")]
    #[schemars(range(min = 0.1, max = 3.0))]
    pub field_t: f64,
}

fn default_field_t() -> f64 {
    3.0
}

/// One arm as written, with `acquisition.defaults` merged in: `name`, `modality` and that
/// modality's protocol fields. Resolved into its typed protocol by [`resolve`];
/// its schema is generated from the protocol types ([`arm_schema`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArmFields(pub Map<String, Value>);

impl JsonSchema for ArmFields {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Arm".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        arm_schema(g)
    }
}

/// `acquisition.defaults`: any modality's fields, without a name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArmDefaults(pub Map<String, Value>);

impl JsonSchema for ArmDefaults {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ArmDefaults".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        defaults_schema(g)
    }
}

/// The field every arm has besides its modality's settings.
const NAME: &str = "name";
/// The tag.
const MODALITY: &str = "modality";
/// CT only: the preset the arm's fields overlay.
const SCANNER: &str = "scanner";
const DEFAULT_SCANNER: &str = "generic64";

/// The modalities, the schema of each one's settings, and the keys an arm may add to them.
fn variants(g: &mut SchemaGenerator) -> [(&'static str, Schema, &'static [&'static str]); 3] {
    [
        ("none", PropertyArm::json_schema(g), &[]),
        ("ct", CtProtocol::json_schema(g), &[SCANNER]),
        ("mri", MriProtocol::json_schema(g), &[]),
    ]
}

/// One arm's schema per modality: the protocol's fields, all optional (presets fill the rest),
/// plus `name` and the `modality` tag; `named: false` gives the form `acquisition.defaults`
/// takes (no name).
fn tagged_variants(g: &mut SchemaGenerator, named: bool) -> Vec<Value> {
    let name_schema = serde_json::json!({
        "description": "Arm identifier (letters, digits, `_`, `-`), used in file names.",
        "type": "string",
        "minLength": 1,
        "maxLength": 48,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$"
    });
    let mut out = Vec::new();
    for (tag, schema, extra) in variants(g) {
        let mut v = schema.to_value();
        let Some(obj) = v.as_object_mut() else {
            continue;
        };
        obj.remove("required");
        obj.remove("title");
        obj.insert(
            "description".into(),
            Value::String(format!("An arm with `modality: {tag}`.")),
        );
        let props = obj
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(p) = props.as_object_mut() {
            if named {
                p.insert(NAME.into(), name_schema.clone());
            }
            p.insert(
                MODALITY.into(),
                serde_json::json!({"description": "none, ct or mri.", "const": tag}),
            );
            for &k in extra {
                p.insert(
                    k.into(),
                    serde_json::json!({
                        "description": "Scanner preset the arm's fields override.",
                        "enum": CtProtocol::preset_names()
                    }),
                );
            }
        }
        out.push(v);
    }
    out
}

/// Schema of one arm (after `acquisition.defaults` is merged in): one variant per modality.
pub fn arm_schema(g: &mut SchemaGenerator) -> Schema {
    // `modality` may come from `acquisition.defaults`, so the file's arm need not name it
    // (the engine checks the merged arm for it).
    Schema::try_from(serde_json::json!({
        "description": "One acquisition protocol (an arm of the virtual trial): `name`, `modality` (none, ct or mri) and that modality's settings, each optional over its preset. Fields shared by every arm can go in `acquisition.defaults`.",
        "type": "object",
        "required": [NAME],
        "anyOf": tagged_variants(g, true)
    }))
    .expect("an object is a schema")
}

/// Schema of `acquisition.defaults`: any modality's settings, without a name.
pub fn defaults_schema(g: &mut SchemaGenerator) -> Schema {
    Schema::try_from(serde_json::json!({
        "description": "Fields shared by all arms (an arm's own fields win), e.g. `{modality: ct, kvp: 120}`.",
        "type": "object",
        "anyOf": tagged_variants(g, false)
    }))
    .expect("an object is a schema")
}

/// Where each merged field of an arm came from, for messages.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// Per arm: the keys taken from `acquisition.defaults`.
    pub from_defaults: Vec<Vec<String>>,
}

impl Origins {
    /// The path a problem at `path` should name: a field that came from the defaults is
    /// reported there, where the user wrote it.
    pub fn locate(&self, path: &str) -> String {
        let Some(rest) = path.strip_prefix("acquisition.arms[") else {
            return path.to_string();
        };
        let Some((idx, field)) = rest.split_once("].") else {
            return path.to_string();
        };
        let key = field.split(['.', '[']).next().unwrap_or(field);
        match idx.parse::<usize>() {
            Ok(i)
                if self
                    .from_defaults
                    .get(i)
                    .is_some_and(|d| d.iter().any(|k| k == key)) =>
            {
                format!("acquisition.defaults.{field}")
            }
            _ => path.to_string(),
        }
    }
}

/// Merges `acquisition.defaults` into every arm of the document (the arm's own fields win;
/// nested objects such as `artifacts` are taken whole). A name in the defaults is a problem,
/// since it would name every arm.
pub fn merge_defaults(doc: &mut Value) -> (Origins, Vec<Problem>) {
    let mut origins = Origins::default();
    let mut problems = Vec::new();
    let Some(acq) = doc.get_mut("acquisition").and_then(Value::as_object_mut) else {
        return (origins, problems);
    };
    let defaults = match acq.get("defaults") {
        Some(Value::Object(d)) => d.clone(),
        _ => Map::new(),
    };
    if defaults.contains_key(NAME) {
        problems.push(Problem::at(
            "acquisition.defaults.name",
            "defaults apply to every arm, so they cannot carry a name",
        ));
    }
    if let Some(Value::Array(arms)) = acq.get_mut("arms") {
        for arm in arms {
            let mut taken = Vec::new();
            if let Value::Object(a) = arm {
                for (k, v) in &defaults {
                    if k != NAME && !a.contains_key(k) {
                        a.insert(k.clone(), v.clone());
                        taken.push(k.clone());
                    }
                }
            }
            origins.from_defaults.push(taken);
        }
    }
    (origins, problems)
}

/// Resolves one merged arm into its protocol. `path` names the arm in messages; the object
/// grid (`size` voxels of `spacing_mm`) is each modality's default recon/acquisition grid, so
/// labels need no resampling unless the arm asks for another grid.
pub fn resolve(
    arm: &Map<String, Value>,
    path: &str,
    size: [u32; 3],
    spacing_mm: [f64; 3],
) -> Result<Arm, Vec<Problem>> {
    let err = |field: &str, msg: String| {
        let p = if field.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{field}")
        };
        vec![Problem::at(p, msg)]
    };
    let name = match arm.get(NAME) {
        Some(Value::String(n)) => n.clone(),
        _ => return Err(err("", format!("missing required field `{NAME}`"))),
    };
    let modality = arm.get(MODALITY).and_then(Value::as_str).unwrap_or("");
    // The modality's own settings: everything but the tag, the name and the preset choice.
    let settings: Map<String, Value> = arm
        .iter()
        .filter(|(k, _)| ![NAME, MODALITY, SCANNER].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let [nx, ny, _] = size.map(|d| d as usize);
    let extent = [nx as f64 * spacing_mm[0], ny as f64 * spacing_mm[1]];
    let protocol = match modality {
        "none" => {
            let a: PropertyArm = typed(Value::Object(settings), path)?;
            Protocol::None {
                property: a.property,
                field_t: a.field_t,
            }
        }
        "ct" => {
            let scanner = arm
                .get(SCANNER)
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_SCANNER);
            let Some(mut preset) = CtProtocol::preset(scanner) else {
                return Err(err(
                    SCANNER,
                    format!(
                        "unknown scanner `{scanner}`; presets: {}",
                        CtProtocol::preset_names().join(", ")
                    ),
                ));
            };
            preset.fov_mm = extent[0].max(extent[1]);
            preset.matrix = nx.max(ny);
            preset.slice_mm = spacing_mm[2];
            let fov_given = settings.contains_key("fov_mm");
            let mut p: CtProtocol = typed(overlay(&preset, settings), path)?;
            if !fov_given {
                // The default FOV is the object's extent, cut to the field the scanner
                // reconstructs (a body wider than it is then imaged with truncation).
                p.fov_mm = p.fov_mm.min(2.0 * p.reconstructed_field_radius_mm());
            }
            checked(p.validate(), path)?;
            Protocol::Ct(Box::new(p))
        }
        "mri" => {
            let Some(sequence) = arm.get("sequence") else {
                return Err(err("", "an MRI arm needs `sequence` (spin_echo, spoiled_gre, inversion_recovery, flair, stir, mprage or bssfp)".into()));
            };
            let sequence: Sequence = typed(sequence.clone(), &format!("{path}.sequence"))?;
            let field_t = arm
                .get("field_t")
                .and_then(Value::as_f64)
                .unwrap_or_else(default_field_t);
            let mut preset = MriProtocol::default_for(sequence, field_t);
            preset.fov_mm = extent;
            preset.matrix = [nx, ny];
            preset.slice_mm = spacing_mm[2];
            let p: MriProtocol = typed(overlay(&preset, settings), path)?;
            checked(p.validate(), path)?;
            Protocol::Mri(Box::new(p))
        }
        _ => {
            return Err(err(
                "",
                "missing `modality` (none, ct or mri), here or in `acquisition.defaults`".into(),
            ))
        }
    };
    Ok(Arm { name, protocol })
}

/// The preset as JSON with the arm's settings written over it.
fn overlay<T: Serialize>(preset: &T, settings: Map<String, Value>) -> Value {
    let mut base = serde_json::to_value(preset).unwrap_or(Value::Null);
    if let Value::Object(b) = &mut base {
        b.extend(settings);
    }
    base
}

fn typed<T: for<'de> Deserialize<'de>>(v: Value, path: &str) -> Result<T, Vec<Problem>> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let p = if inner == "." || inner.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        vec![Problem::at(p, e.inner().to_string())]
    })
}

fn checked(problems: Vec<(String, String)>, path: &str) -> Result<(), Vec<Problem>> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(problems
        .into_iter()
        .map(|(f, m)| Problem::at(format!("{path}.{f}"), m))
        .collect())
}
