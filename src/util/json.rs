//! The JSON plumbing of recipes: fields a file names that the recipe has no place for, where
//! in a file a field lies, and setting one field by its dotted path.

use serde_json::Value;

/// The path of the first field of `given` that `known` lacks. `known` is what the parsed
/// recipe serializes back to, so such a field is one deserializing would silently ignore
/// (burn's `Config`s accept unknown keys).
pub(crate) fn unknown_field(given: &Value, known: &Value, path: &str) -> Option<String> {
    match (given, known) {
        (Value::Object(given), Value::Object(known)) => given.iter().find_map(|(key, value)| {
            let path = join(path, key);
            match known.get(key) {
                None => Some(path),
                Some(known) => unknown_field(value, known, &path),
            }
        }),
        (Value::Array(given), Value::Array(known)) => given
            .iter()
            .zip(known)
            .enumerate()
            .find_map(|(i, (g, k))| unknown_field(g, k, &join(path, &i.to_string()))),
        _ => None,
    }
}

/// Every field (in key order) where `a` and `b` differ, as its dotted path and both values
/// there: the first names the setting a resumed run changed; all of them, what one recipe
/// changes from another.
pub(crate) fn differences(a: &Value, b: &Value, path: &str) -> Vec<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let missing = Value::Null;
                    let (u, v) = (x.get(k).unwrap_or(&missing), y.get(k).unwrap_or(&missing));
                    differences(u, v, &join(path, k))
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![(path.to_string(), a.clone(), b.clone())],
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Line and column (from 1) of the field at the dotted `path` in the JSON `text`: each key is
/// searched for after the one before it; where one is not found, the last one that was.
pub(crate) fn locate(text: &str, path: &str) -> (usize, usize) {
    let mut found = 0;
    let mut from = 0;
    for key in path.split('.') {
        let quoted = format!("\"{key}\"");
        match text[from..].find(&quoted) {
            Some(offset) => {
                found = from + offset;
                from = found + quoted.len();
            }
            None => break,
        }
    }
    let before = &text[..found];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Replaces the field at the dotted `path` of `value` with `new`. Every key of the path must
/// exist: a path that names no field is an error listing the fields there are.
pub(crate) fn set_path(value: &mut Value, path: &str, new: Value) -> Result<(), String> {
    let mut at = value;
    for key in path.split('.') {
        at = match at {
            Value::Object(map) => {
                let fields: Vec<String> = map.keys().cloned().collect();
                map.get_mut(key).ok_or_else(|| match fields.is_empty() {
                    true => "no such field (there are none here)".to_string(),
                    false => format!("no such field (the fields here: {})", fields.join(", ")),
                })?
            }
            Value::Array(items) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| format!("{key} is not an index of this list"))?,
            _ => return Err(format!("`{key}` is inside a field that is not an object")),
        };
    }
    *at = new;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_at_any_depth() {
        let known = json!({"a": 1, "b": {"c": 2, "d": [{"e": 3}]}});
        assert_eq!(unknown_field(&known, &known, ""), None);
        let given = json!({"a": 1, "b": {"c": 2, "d": [{"e": 3, "f": 4}]}});
        assert_eq!(
            unknown_field(&given, &known, "").as_deref(),
            Some("b.d.0.f")
        );
        let given = json!({"a": 1, "x": 0});
        assert_eq!(unknown_field(&given, &known, "").as_deref(), Some("x"));
    }

    #[test]
    fn differences_are_every_differing_leaf_in_key_order() {
        let a = json!({"b": {"x": 1, "y": [1, 2]}, "a": 1, "c": 3});
        let b = json!({"b": {"x": 2, "y": [1, 2]}, "a": 1, "d": 4});
        let paths: Vec<String> = differences(&a, &b, "").into_iter().map(|d| d.0).collect();
        assert_eq!(paths, ["b.x", "c", "d"]);
        assert_eq!(
            differences(&a, &b, "")[1].2,
            Value::Null,
            "a field one side lacks"
        );
        assert!(differences(&a, &a, "").is_empty());
    }

    #[test]
    fn a_field_is_located_by_its_path() {
        let text = "{\n  \"a\": 1,\n  \"b\": {\n    \"a\": 2\n  }\n}";
        assert_eq!(locate(text, "a"), (2, 3));
        assert_eq!(locate(text, "b.a"), (4, 5));
        assert_eq!(
            locate(text, "b.zz"),
            (3, 3),
            "falls back to the last key found"
        );
    }

    #[test]
    fn set_path_replaces_only_existing_fields() {
        let mut v = json!({"a": {"b": 1}, "l": [0, 1]});
        set_path(&mut v, "a.b", json!(5)).unwrap();
        set_path(&mut v, "l.1", json!(7)).unwrap();
        assert_eq!(v, json!({"a": {"b": 5}, "l": [0, 7]}));
        assert!(set_path(&mut v, "a.c", json!(1)).unwrap_err().contains("b"));
        assert!(set_path(&mut v, "l.9", json!(1)).is_err());
        assert!(set_path(&mut v, "a.b.c", json!(1)).is_err());
    }
}
