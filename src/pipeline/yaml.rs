//! YAML → JSON value plus a map from every field path to its line and column.
//!
//! The pipeline is checked in JSON space (JSON Schema, then serde), whose errors carry a
//! path but no position; this map puts the position back. Built from parser events rather
//! than a loaded tree so that duplicate keys (which a tree silently overwrites) are errors.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// Bounds on what one pipeline document may hold. Real pipelines are a few kilobytes with a
/// few hundred nodes; the bounds sit far above that and far below what could hurt a shared
/// machine. Aliases count by what they expand to, so a "billion laughs" document is refused
/// at the alias that crosses the node budget, in memory proportional to the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the whole file.
    pub max_bytes: usize,
    /// Open mappings and sequences at once.
    pub max_depth: usize,
    /// Values in the loaded document, every alias counted as the nodes it copies.
    pub max_nodes: usize,
    /// Bytes of one scalar (a prompt, a path, a name).
    pub max_scalar_bytes: usize,
}

impl Limits {
    pub const PIPELINE: Limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 32,
        max_nodes: 100_000,
        max_scalar_bytes: 16 * 1024,
    };
}

/// 1-based line and column in the source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Field path → position of the value (and, for mapping entries, of the key).
#[derive(Clone, Debug, Default)]
pub struct Locations {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Locations {
    /// Position of `path`, or of its nearest ancestor that appears in the file (a field filled
    /// in from defaults has no position of its own).
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.values.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }

    /// Position of the key naming `path` (for "unknown field" errors), else of the value.
    pub fn find_key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.find(path))
    }
}

/// A YAML problem found before any schema check.
#[derive(Clone, Debug)]
pub struct YamlIssue {
    pub path: String,
    pub pos: Option<Pos>,
    pub message: String,
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

enum Frame {
    Map {
        path: String,
        map: Map<String, Value>,
        key: Option<(String, Pos)>,
        anchor: usize,
        /// Node count when the collection opened: its own size is the difference at its end.
        nodes_before: usize,
    },
    Seq {
        path: String,
        seq: Vec<Value>,
        anchor: usize,
        nodes_before: usize,
    },
}

/// The message for a file over `max` bytes (it may have been read only up to `max + 1`).
pub fn too_large(max: usize) -> String {
    format!("the file is larger than {max} bytes, the limit for a pipeline file")
}

fn check_nodes(
    nodes: usize,
    limits: &Limits,
    path: &str,
    span: &Span,
) -> Result<(), Vec<YamlIssue>> {
    if nodes > limits.max_nodes {
        return Err(limit_issue(
            path.to_string(),
            span,
            format!(
                "more than {} values, the limit for a pipeline file",
                limits.max_nodes
            ),
        ));
    }
    Ok(())
}

fn limit_issue(path: String, span: &Span, message: String) -> Vec<YamlIssue> {
    vec![YamlIssue {
        path,
        pos: Some(pos(span)),
        message,
    }]
}

/// Parses one YAML document within [`Limits::PIPELINE`]. Returns the JSON value and
/// locations, or every issue found.
pub fn parse(text: &str) -> Result<(Value, Locations), Vec<YamlIssue>> {
    parse_with(text, Limits::PIPELINE)
}

/// [`parse`] with explicit limits. A limit is reported at once, naming the line and the limit,
/// without reading further.
pub fn parse_with(text: &str, limits: Limits) -> Result<(Value, Locations), Vec<YamlIssue>> {
    if text.len() > limits.max_bytes {
        return Err(vec![YamlIssue {
            path: String::new(),
            pos: None,
            message: too_large(limits.max_bytes),
        }]);
    }
    let mut locs = Locations::default();
    let mut issues = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Anchored values with the number of nodes each copies when aliased.
    let mut anchors: HashMap<usize, (Value, usize)> = HashMap::new();
    let mut nodes = 0usize;
    let mut root: Option<Value> = None;
    let mut documents = 0;

    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                return Err(vec![YamlIssue {
                    path: String::new(),
                    pos: Some(Pos {
                        line: m.line(),
                        col: m.col() + 1,
                    }),
                    message: format!("YAML syntax error: {}", e.info()),
                }]);
            }
        };
        // The path the next value would get, given the innermost open collection.
        let next_path = |stack: &Vec<Frame>| -> String {
            match stack.last() {
                Some(Frame::Map {
                    path,
                    key: Some((k, _)),
                    ..
                }) => join_key(path, k),
                Some(Frame::Seq { path, seq, .. }) => format!("{path}[{}]", seq.len()),
                _ => String::new(),
            }
        };
        let value = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    issues.push(YamlIssue {
                        path: String::new(),
                        pos: Some(pos(&span)),
                        message:
                            "the file holds more than one YAML document; a pipeline is one document"
                                .into(),
                    });
                    return Err(issues);
                }
                continue;
            }
            Event::MappingStart(..) | Event::SequenceStart(..)
                if stack.len() >= limits.max_depth =>
            {
                return Err(limit_issue(
                    next_path(&stack),
                    &span,
                    format!(
                        "nesting deeper than {} levels, the limit for a pipeline file",
                        limits.max_depth
                    ),
                ));
            }
            Event::MappingStart(anchor, _) => {
                let path = next_path(&stack);
                locs.values.insert(path.clone(), pos(&span));
                nodes += 1;
                check_nodes(nodes, &limits, &path, &span)?;
                stack.push(Frame::Map {
                    path,
                    map: Map::new(),
                    key: None,
                    anchor,
                    nodes_before: nodes - 1,
                });
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                let path = next_path(&stack);
                locs.values.insert(path.clone(), pos(&span));
                nodes += 1;
                check_nodes(nodes, &limits, &path, &span)?;
                stack.push(Frame::Seq {
                    path,
                    seq: Vec::new(),
                    anchor,
                    nodes_before: nodes - 1,
                });
                continue;
            }
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    map,
                    anchor,
                    nodes_before,
                    ..
                }) => remember(
                    &mut anchors,
                    anchor,
                    Value::Object(map),
                    nodes - nodes_before,
                ),
                _ => continue,
            },
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    seq,
                    anchor,
                    nodes_before,
                    ..
                }) => remember(
                    &mut anchors,
                    anchor,
                    Value::Array(seq),
                    nodes - nodes_before,
                ),
                _ => continue,
            },
            Event::Alias(id) => match anchors.get(&id) {
                Some((v, n)) => {
                    // Checked before the copy is made: the budget bounds memory too.
                    if nodes + n > limits.max_nodes {
                        return Err(limit_issue(
                            next_path(&stack),
                            &span,
                            format!(
                                "this alias expands the document past {} values, the limit for a pipeline file (aliases count as the values they copy; a YAML \"billion laughs\" document stops here)",
                                limits.max_nodes
                            ),
                        ));
                    }
                    nodes += n;
                    v.clone()
                }
                None => Value::Null,
            },
            Event::Scalar(text, ..) if text.len() > limits.max_scalar_bytes => {
                // A key has no path of its own yet: name the mapping it is in.
                let path = match stack.last() {
                    Some(Frame::Map {
                        path, key: None, ..
                    }) => path.clone(),
                    _ => next_path(&stack),
                };
                return Err(limit_issue(
                    path,
                    &span,
                    format!(
                        "a value of {} bytes, more than the {} bytes one value may have in a pipeline file",
                        text.len(),
                        limits.max_scalar_bytes
                    ),
                ));
            }
            Event::Scalar(text, style, anchor, tag) => {
                // A mapping key waiting to be filled takes this scalar as its name.
                if let Some(Frame::Map { path, map, key, .. }) = stack.last_mut() {
                    if key.is_none() {
                        let k = text.to_string();
                        let kpath = join_key(path, &k);
                        if map.contains_key(&k) {
                            issues.push(YamlIssue {
                                path: kpath.clone(),
                                pos: Some(pos(&span)),
                                message: format!("duplicate key `{k}`"),
                            });
                        }
                        locs.keys.insert(kpath, pos(&span));
                        *key = Some((k, pos(&span)));
                        continue;
                    }
                }
                let path = next_path(&stack);
                locs.values.insert(path.clone(), pos(&span));
                nodes += 1;
                check_nodes(nodes, &limits, &path, &span)?;
                let v = scalar_value(&text, style, tag.as_ref(), &path, &span, &mut issues);
                remember(&mut anchors, anchor, v, 1)
            }
            _ => continue,
        };
        // Attach the finished value to its parent.
        match stack.last_mut() {
            Some(Frame::Map { map, key, .. }) => match key.take() {
                Some((k, _)) => {
                    map.insert(k, value);
                }
                None => {
                    issues.push(YamlIssue {
                        path: String::new(),
                        pos: Some(pos(&span)),
                        message: "mapping keys must be plain strings".into(),
                    });
                    return Err(issues);
                }
            },
            Some(Frame::Seq { seq, .. }) => seq.push(value),
            None => root = Some(value),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    match root {
        Some(v) => Ok((v, locs)),
        None => Err(vec![YamlIssue {
            path: String::new(),
            pos: None,
            message: "the file is empty: a pipeline needs at least `version`, `name`, `cohort`, `anatomy` and `acquisition`".into(),
        }]),
    }
}

/// A scalar's JSON value by YAML 1.2 core-schema resolution (respecting quotes and tags); a
/// non-finite number or a value that contradicts its tag is an issue and reads as null.
fn scalar_value(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Cow<'_, Tag>>,
    path: &str,
    span: &Span,
    issues: &mut Vec<YamlIssue>,
) -> Value {
    let mut bad = |message: String| {
        issues.push(YamlIssue {
            path: path.to_string(),
            pos: Some(pos(span)),
            message,
        });
        Value::Null
    };
    match Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text), style, tag) {
        Some(Scalar::Null) => Value::Null,
        Some(Scalar::Boolean(b)) => Value::Bool(b),
        Some(Scalar::Integer(i)) => Value::Number(i.into()),
        Some(Scalar::FloatingPoint(f)) => match Number::from_f64(f.into_inner()) {
            Some(n) => Value::Number(n),
            None => bad(format!("`{text}` is not a finite number")),
        },
        Some(Scalar::String(s)) => Value::String(s.into_owned()),
        None => bad(format!("`{text}` does not match its YAML tag")),
    }
}

fn remember(
    anchors: &mut HashMap<usize, (Value, usize)>,
    anchor: usize,
    v: Value,
    nodes: usize,
) -> Value {
    if anchor > 0 {
        anchors.insert(anchor, (v.clone(), nodes));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let text = "a: 1\nb:\n  c: [x, 2.5]\n  d: true\n";
        let (v, locs) = parse(text).unwrap();
        assert_eq!(v["b"]["c"][1], serde_json::json!(2.5));
        assert_eq!(locs.find("b.c[1]"), Some(Pos { line: 3, col: 10 }));
        assert_eq!(locs.find("b.d"), Some(Pos { line: 4, col: 6 }));
        // A path not in the file resolves to its nearest ancestor.
        assert_eq!(locs.find("b.zzz"), locs.find("b"));
        assert_eq!(locs.find_key("b.d"), Some(Pos { line: 4, col: 3 }));
    }

    #[test]
    fn duplicate_keys_and_non_finite_numbers_are_reported() {
        let issues = parse("a: 1\na: 2\nb: .nan\n").unwrap_err();
        assert_eq!(issues.len(), 2);
        assert!(issues[0].message.contains("duplicate key"));
        assert_eq!(issues[0].pos.unwrap().line, 2);
        assert!(issues[1].message.contains("finite"));
    }

    /// An n-level "billion laughs" document: each level aliases the one below ten times.
    fn alias_bomb(levels: usize) -> String {
        let mut s = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        s
    }

    #[test]
    fn alias_bombs_stop_at_the_node_budget() {
        for levels in [9, 12, 30] {
            let issues = parse(&alias_bomb(levels)).unwrap_err();
            assert_eq!(issues.len(), 1);
            assert!(issues[0].message.contains("100000 values"), "{issues:?}");
            // Level 4 holds 111 111 values: its line is where the budget runs out.
            assert_eq!(issues[0].pos.unwrap().line, 5);
        }
        // Aliases within the budget still load, copied in full.
        let (v, _) = parse("base: &b {kvp: 120, mas: 50}\narms: [*b, *b]\n").unwrap();
        assert_eq!(v["arms"][1]["mas"], serde_json::json!(50));
    }

    #[test]
    fn size_depth_and_scalar_limits_name_the_limit() {
        let small = Limits {
            max_bytes: 100,
            max_depth: 4,
            max_nodes: 10,
            max_scalar_bytes: 8,
        };
        let e = parse_with(&"x".repeat(101), small).unwrap_err();
        assert!(e[0].message.contains("larger than 100 bytes"), "{e:?}");
        let e = parse_with("a: [[[[[1]]]]]", small).unwrap_err();
        assert!(e[0].message.contains("deeper than 4 levels"), "{e:?}");
        assert_eq!(e[0].pos.unwrap().line, 1);
        let e = parse_with("a: 123456789", small).unwrap_err();
        assert!(e[0].message.contains("more than the 8 bytes"), "{e:?}");
        let e = parse_with("a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", small).unwrap_err();
        assert!(e[0].message.contains("more than 10 values"), "{e:?}");
        assert!(parse_with("a: [[[1]]]\nb: 12345678", small).is_ok());
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let issues = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(issues[0].message.starts_with("YAML syntax error"));
        assert!(issues[0].pos.is_some());
    }
}
