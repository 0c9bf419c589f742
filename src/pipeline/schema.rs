//! The JSON Schema of the pipeline language, generated from the Rust types, and the
//! translation of schema violations into field-path problems with clear messages.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::ValidationError;
use serde_json::Value;

use super::spec::Pipeline;
use super::yaml::join_key;

/// The published schema (`synthcohort schema`, `schemas/pipeline.schema.json`).
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut v =
            serde_json::to_value(schemars::schema_for!(Pipeline)).expect("schema serialises");
        if let Value::Object(m) = &mut v {
            m.insert(
                "$id".into(),
                Value::String("https://synthcohort.dev/schemas/pipeline.schema.json".into()),
            );
        }
        v
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(schema()).expect("schema serialises");
    s.push('\n');
    s
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| jsonschema::validator_for(schema()).expect("generated schema is valid"))
}

/// (path, message) for every schema violation in `doc`.
pub fn check(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in validator().iter_errors(doc) {
        explain(&e, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn dotted(e: &ValidationError) -> String {
    let mut path = String::new();
    for seg in e.instance_path().iter() {
        match seg {
            LocationSegment::Property(p) => path = join_key(&path, &p),
            LocationSegment::Index(i) => path = format!("{path}[{i}]"),
        }
    }
    path
}

/// Follows a schema path (a JSON pointer through the schema, `$ref` segments included) to the
/// subschema it names.
fn subschema(pointer: &str) -> Option<&'static Value> {
    let root = schema();
    let mut node = root;
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        if seg == "$ref" {
            let r = node.get("$ref")?.as_str()?;
            node = root.pointer(r.strip_prefix('#')?)?;
            continue;
        }
        node = match node {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn explain(e: &ValidationError, out: &mut Vec<(String, String)>) {
    let path = dotted(e);
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            // The allowed names sit beside `additionalProperties` in the same subschema.
            let sp = e.schema_path().as_str().to_string();
            let parent = sp.strip_suffix("/additionalProperties").unwrap_or(&sp);
            let allowed: Vec<String> = subschema(parent)
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object)
                .map(|m| m.keys().map(|k| format!("`{k}`")).collect())
                .unwrap_or_default();
            for key in unexpected {
                let owners = tag_owners(parent, key);
                let msg = if let Some(here) = tag_of(parent).filter(|_| !owners.is_empty()) {
                    // An arm's setting of another modality: say whose it is.
                    let whose: Vec<String> = owners.iter().map(|t| tag_words(t)).collect();
                    let arm = match e.instance().get("name").and_then(Value::as_str) {
                        Some(n) => format!("arm `{n}`"),
                        None => "the defaults".to_string(),
                    };
                    format!(
                        "unknown field `{key}`: `{key}` is {} but {arm} has modality {here}",
                        whose.join(" and ")
                    )
                } else if allowed.is_empty() {
                    format!("unknown field `{key}`")
                } else {
                    format!(
                        "unknown field `{key}`; allowed here: {}",
                        allowed.join(", ")
                    )
                };
                out.push((join_key(&path, key), msg));
            }
        }
        ValidationErrorKind::AnyOf { context }
        | ValidationErrorKind::OneOfNotValid { context }
        | ValidationErrorKind::OneOfMultipleValid { context } => {
            // Variants tagged by `modality` (the arms): explain the one the value names.
            if let Some(tag) = e.instance().get(TAG) {
                let tag_path = join_key(&path, TAG);
                let names_other_tag = |branch: &Vec<ValidationError>| {
                    branch.iter().any(|b| {
                        matches!(b.kind(), ValidationErrorKind::Constant { .. })
                            && dotted(b) == tag_path
                    })
                };
                match context.iter().find(|branch| !names_other_tag(branch)) {
                    Some(branch) => {
                        for b in branch {
                            explain(b, out);
                        }
                    }
                    None => {
                        let mut allowed: Vec<String> = context
                            .iter()
                            .flatten()
                            .filter_map(|b| match b.kind() {
                                ValidationErrorKind::Constant { expected_value }
                                    if dotted(b) == tag_path =>
                                {
                                    Some(expected_value.to_string())
                                }
                                _ => None,
                            })
                            .collect();
                        allowed.sort();
                        out.push((
                            tag_path,
                            format!("found {}, allowed: {}", describe(tag), allowed.join(", ")),
                        ));
                    }
                }
                return;
            }
            // An enum whose variants carry docs is a oneOf of constants: list them.
            let consts: Option<Vec<Vec<String>>> = context
                .iter()
                .map(|branch| match branch.as_slice() {
                    [b] => match b.kind() {
                        ValidationErrorKind::Constant { expected_value } => {
                            Some(vec![expected_value.to_string()])
                        }
                        ValidationErrorKind::Enum { options } => options
                            .as_array()
                            .map(|a| a.iter().map(|v| v.to_string()).collect()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            if let Some(allowed) = consts.map(|c| c.concat()).filter(|c| !c.is_empty()) {
                out.push((
                    path,
                    format!(
                        "found {}, allowed: {}",
                        describe(e.instance()),
                        allowed.join(", ")
                    ),
                ));
                return;
            }
            // Report the branch whose type fits the value (e.g. the object form of a
            // distribution), not the generic "matches none of the alternatives".
            let fits = context.iter().find(|branch| {
                !branch.iter().any(|b| {
                    matches!(b.kind(), ValidationErrorKind::Type { .. }) && dotted(b) == path
                })
            });
            match fits {
                Some(branch) if !branch.is_empty() => {
                    for b in branch {
                        explain(b, out);
                    }
                }
                _ => {
                    let kinds: Vec<String> = context
                        .iter()
                        .flat_map(|b| b.iter())
                        .filter_map(|b| match b.kind() {
                            ValidationErrorKind::Type { kind } => Some(type_names(kind)),
                            _ => None,
                        })
                        .collect();
                    let found = describe(e.instance());
                    if kinds.is_empty() {
                        out.push((path, format!("{found} is not allowed here")));
                    } else {
                        out.push((
                            path,
                            format!("found {found}, expected {}", kinds.join(" or ")),
                        ));
                    }
                }
            }
        }
        ValidationErrorKind::Type { kind } => {
            out.push((
                path,
                format!(
                    "found {}, expected {}",
                    describe(e.instance()),
                    type_names(kind)
                ),
            ));
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?").to_string();
            out.push((path.clone(), format!("missing required field `{name}`")));
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            out.push((
                path,
                format!(
                    "found {}, allowed: {}",
                    describe(e.instance()),
                    allowed.join(", ")
                ),
            ));
        }
        ValidationErrorKind::MaxLength { limit } => {
            out.push((
                path,
                format!(
                    "{} is longer than {limit} characters",
                    describe(e.instance())
                ),
            ));
        }
        ValidationErrorKind::MinLength { limit } => {
            let unit = if *limit == 1 {
                "character"
            } else {
                "characters"
            };
            out.push((
                path,
                format!("{} is shorter than {limit} {unit}", describe(e.instance())),
            ));
        }
        ValidationErrorKind::Pattern { .. } => {
            out.push((
                path,
                format!("{} is not a valid name: use letters, digits, `_` and `-`, starting with a letter or digit", describe(e.instance())),
            ));
        }
        ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. } => {
            // The field's own first sentence says what the bound is for.
            let sp = e.schema_path().as_str().to_string();
            let parent = sp.rsplit_once('/').map_or(sp.as_str(), |(a, _)| a);
            let why = subschema(parent)
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .map(|d| {
                    let flat = d.split_whitespace().collect::<Vec<_>>().join(" ");
                    let first = flat.split([';']).next().unwrap_or(&flat);
                    let first = first.split(". ").next().unwrap_or(first);
                    first.trim_end_matches('.').to_string()
                });
            out.push((
                path,
                match why {
                    Some(w) => format!("{e} ({w})"),
                    None => e.to_string(),
                },
            ));
        }
        _ => out.push((path, e.to_string())),
    }
}

/// The key whose `const` tells the variants of an arm apart.
const TAG: &str = "modality";

/// The `modality` a variant subschema (at a schema path) is for, if it is a tagged variant.
fn tag_of(pointer: &str) -> Option<String> {
    subschema(pointer)?
        .pointer(&format!("/properties/{TAG}/const"))?
        .as_str()
        .map(str::to_string)
}

/// The tags of the sibling variants (in the same `anyOf`) that accept `key`.
fn tag_owners(pointer: &str, key: &str) -> Vec<String> {
    let Some((alts, _)) = pointer.rsplit_once('/') else {
        return Vec::new();
    };
    if !alts.ends_with("/anyOf") {
        return Vec::new();
    }
    subschema(alts)
        .and_then(Value::as_array)
        .map(|branches| {
            branches
                .iter()
                .filter(|b| b.pointer(&format!("/properties/{key}")).is_some())
                .filter_map(|b| b.pointer(&format!("/properties/{TAG}/const")))
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn tag_words(tag: &str) -> String {
    match tag {
        "none" => "a `modality: none` setting".to_string(),
        "mri" => "an MRI setting".to_string(),
        t => format!("a {} setting", t.to_uppercase()),
    }
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => format!("{t}"),
        TypeKind::Multiple(ts) => {
            let v: Vec<String> = ts.iter().map(|t| format!("{t}")).collect();
            v.join(" or ")
        }
    }
}

/// A short description of a found value for messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            if s.chars().count() > 40 {
                format!("string \"{short}…\"")
            } else {
                format!("string \"{short}\"")
            }
        }
        Value::Array(a) => format!("a list of {}", a.len()),
        Value::Object(_) => "a mapping".into(),
    }
}
