//! YAML → JSON value plus a map from every field path to its line and column.
//!
//! The pipeline is checked in JSON space (JSON Schema, then serde), whose errors carry a
//! path but no position; this map puts the position back. Built from parser events rather
//! than a loaded tree so that duplicate keys (which a tree silently overwrites) are errors.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, Span};
use serde_json::{Map, Number, Value};

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
    },
    Seq {
        path: String,
        seq: Vec<Value>,
        anchor: usize,
    },
}

/// Parses one YAML document. Returns the JSON value and locations, or every issue found.
pub fn parse(text: &str) -> Result<(Value, Locations), Vec<YamlIssue>> {
    let mut locs = Locations::default();
    let mut issues = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
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
            Event::MappingStart(anchor, _) => {
                let path = next_path(&stack);
                locs.values.insert(path.clone(), pos(&span));
                stack.push(Frame::Map {
                    path,
                    map: Map::new(),
                    key: None,
                    anchor,
                });
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                let path = next_path(&stack);
                locs.values.insert(path.clone(), pos(&span));
                stack.push(Frame::Seq {
                    path,
                    seq: Vec::new(),
                    anchor,
                });
                continue;
            }
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map { map, anchor, .. }) => {
                    remember(&mut anchors, anchor, Value::Object(map))
                }
                _ => continue,
            },
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { seq, anchor, .. }) => {
                    remember(&mut anchors, anchor, Value::Array(seq))
                }
                _ => continue,
            },
            Event::Alias(id) => anchors.get(&id).cloned().unwrap_or(Value::Null),
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
                let v = match Scalar::parse_from_cow_and_metadata(
                    Cow::Borrowed(text.as_ref()),
                    style,
                    tag.as_ref(),
                ) {
                    Some(Scalar::Null) => Value::Null,
                    Some(Scalar::Boolean(b)) => Value::Bool(b),
                    Some(Scalar::Integer(i)) => Value::Number(i.into()),
                    Some(Scalar::FloatingPoint(f)) => match Number::from_f64(f.into_inner()) {
                        Some(n) => Value::Number(n),
                        None => {
                            issues.push(YamlIssue {
                                path: path.clone(),
                                pos: Some(pos(&span)),
                                message: format!("`{text}` is not a finite number"),
                            });
                            Value::Null
                        }
                    },
                    Some(Scalar::String(s)) => Value::String(s.into_owned()),
                    None => {
                        issues.push(YamlIssue {
                            path: path.clone(),
                            pos: Some(pos(&span)),
                            message: format!("`{text}` does not match its YAML tag"),
                        });
                        Value::Null
                    }
                };
                remember(&mut anchors, anchor, v)
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

fn remember(anchors: &mut HashMap<usize, Value>, anchor: usize, v: Value) -> Value {
    if anchor > 0 {
        anchors.insert(anchor, v.clone());
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

    #[test]
    fn syntax_errors_carry_a_position() {
        let issues = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(issues[0].message.starts_with("YAML syntax error"));
        assert!(issues[0].pos.is_some());
    }
}
