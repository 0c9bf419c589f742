//! Numeric bounds declared once, as `#[schemars(range(..))]` on a type's fields, and checked on
//! values of that type. The same attributes put the bounds into the published pipeline schema
//! (so editors and the schema pass see them) and into `validate()` of the simulators'
//! protocols (so a protocol built in code is held to the same ranges): there is no second
//! table to disagree with the first.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// (field path, message) for every number of `value` outside the bounds its type's schema
/// declares, nested objects and arrays included. Paths are dotted (`artifacts.ghosting`).
pub fn check<T: JsonSchema + Serialize>(value: &T) -> Vec<(String, String)> {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    let Ok(v) = serde_json::to_value(value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&schema, &schema, &v, "", (None, None), &mut out);
    out
}

/// The schema `s` stands for when checking `v`: `$ref`s followed, and of an `anyOf` (an
/// `Option`, or a number-or-pair such as `fov_mm`) the alternative of `v`'s JSON type.
fn resolve<'a>(root: &'a Value, s: &'a Value, v: &Value) -> &'a Value {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        if let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            return resolve(root, target, v);
        }
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        let want = match v {
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            _ => "number",
        };
        let of_type = |a: &&Value| {
            let t = resolve(root, a, v).get("type");
            t.and_then(Value::as_str) == Some(want)
                || (want == "number" && t.and_then(Value::as_str) == Some("integer"))
                || t.and_then(Value::as_array)
                    .is_some_and(|ts| ts.iter().any(|x| x.as_str() == Some(want)))
        };
        if let Some(a) = alts.iter().find(of_type) {
            return resolve(root, a, v);
        }
    }
    s
}

type Bounds = (Option<f64>, Option<f64>);

/// Bounds declared on `s` itself, else on what it resolves to, else those inherited from the
/// field (a range on a number-or-pair field holds for each number of the pair).
fn bounds_of(s: &Value, resolved: &Value, inherited: Bounds) -> Bounds {
    let get = |k: &str| {
        s.get(k)
            .and_then(Value::as_f64)
            .or_else(|| resolved.get(k).and_then(Value::as_f64))
    };
    match (get("minimum"), get("maximum")) {
        (None, None) => inherited,
        b => b,
    }
}

fn walk(
    root: &Value,
    schema: &Value,
    v: &Value,
    path: &str,
    inherited: Bounds,
    out: &mut Vec<(String, String)>,
) {
    let s = resolve(root, schema, v);
    let (lo, hi) = bounds_of(schema, s, inherited);
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let below = lo.is_some_and(|lo| x.is_nan() || x < lo);
            if below || hi.is_some_and(|hi| x > hi) {
                let range = match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => unreachable!("a bound was violated"),
                };
                out.push((
                    path.to_string(),
                    format!("{x} is outside the allowed {range}"),
                ));
            }
        }
        // A non-finite float serialises as null: an error where the schema wants a number.
        Value::Null => {
            let ty = s.get("type").and_then(Value::as_str);
            if matches!(ty, Some("number" | "integer")) {
                out.push((path.to_string(), "not a finite number".to_string()));
            }
        }
        Value::Object(m) => {
            let Some(props) = s.get("properties") else {
                return;
            };
            for (k, sub) in m {
                if let Some(ps) = props.get(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(root, ps, sub, &p, (None, None), out);
                }
            }
        }
        Value::Array(a) => {
            let items = s.get("items").unwrap_or(&Value::Null);
            for (i, x) in a.iter().enumerate() {
                walk(root, items, x, &format!("{path}[{i}]"), (lo, hi), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, JsonSchema)]
    struct Inner {
        #[schemars(range(min = 0.0, max = 1.0))]
        frac: Option<f64>,
    }

    #[derive(Serialize, JsonSchema)]
    struct Outer {
        #[schemars(range(min = 70.0, max = 140.0))]
        kvp: f64,
        #[schemars(range(min = 8))]
        views: usize,
        inner: Option<Inner>,
        #[schemars(inner(range(min = 1.0)))]
        sizes: Vec<f64>,
    }

    #[test]
    fn every_declared_bound_is_checked_with_its_path() {
        let ok = Outer {
            kvp: 120.0,
            views: 8,
            inner: Some(Inner { frac: Some(1.0) }),
            sizes: vec![1.0],
        };
        assert!(check(&ok).is_empty(), "{:?}", check(&ok));
        let bad = Outer {
            kvp: 150.0,
            views: 4,
            inner: Some(Inner { frac: Some(1.5) }),
            sizes: vec![2.0, 0.5],
        };
        let e = check(&bad);
        let mut paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["inner.frac", "kvp", "sizes[1]", "views"]);
        let msg = |p: &str| {
            e.iter()
                .find(|(q, _)| q == p)
                .map(|(_, m)| m.clone())
                .unwrap()
        };
        assert!(
            msg("kvp").contains("150") && msg("kvp").contains("70 to 140"),
            "{e:?}"
        );
        assert!(msg("views").contains("at least 8"), "{e:?}");
        // NaN serialises as null; an absent optional value is no error.
        let nan = Outer {
            kvp: f64::NAN,
            inner: Some(Inner { frac: None }),
            ..ok
        };
        assert_eq!(
            check(&nan),
            [("kvp".to_string(), "not a finite number".to_string())]
        );
    }
}
