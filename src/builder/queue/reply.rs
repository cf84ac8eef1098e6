//! Reading stream replies (`XREADGROUP`, `XRANGE`, `XAUTOCLAIM`, `XINFO GROUPS`) from plain
//! Redis values. Pure. (The redis crate's typed stream replies sit behind a feature this crate
//! does not enable; these few shapes are simple enough to read here.)

use redis::Value;
use std::collections::HashMap;

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub fields: HashMap<String, String>,
}

impl Entry {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// A consumer group as `XINFO GROUPS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub last_delivered_id: String,
    /// `None` when Redis cannot tell (after deletions) or is older than 7.
    pub lag: Option<u64>,
    /// Entries delivered and not yet acknowledged: builds being run (or being reaped).
    pub pending: u64,
}

pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// Key/value pairs from a flat array (RESP2) or a map (RESP3).
fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, v.clone())))
            .collect(),
        _ => items(v)
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((text(k)?, v.clone())),
                _ => None,
            })
            .collect(),
    }
}

/// `[id, [field, value, …]]`. An entry deleted from the stream (fields nil) is still returned,
/// with no fields, so its id can be acknowledged.
pub fn entry(v: &Value) -> Option<Entry> {
    let [id, fields] = items(v) else { return None };
    Some(Entry {
        id: text(id)?,
        fields: pairs(fields)
            .into_iter()
            .filter_map(|(k, v)| Some((k, text(&v)?)))
            .collect(),
    })
}

/// `XRANGE`: an array of entries.
pub fn entries(v: &Value) -> Vec<Entry> {
    items(v).iter().filter_map(entry).collect()
}

/// `XREADGROUP` on one stream: nil, or `[[stream, [entries]]]` (a map in RESP3).
pub fn read(v: &Value) -> Vec<Entry> {
    match v {
        Value::Map(m) => m.iter().flat_map(|(_, es)| entries(es)).collect(),
        _ => items(v)
            .iter()
            .flat_map(|s| match items(s) {
                [_, es] => entries(es),
                _ => Vec::new(),
            })
            .collect(),
    }
}

/// `XAUTOCLAIM`: `[next cursor, [entries], [deleted ids]]` → (next cursor, entries).
pub fn autoclaim(v: &Value) -> Option<(String, Vec<Entry>)> {
    let a = items(v);
    Some((text(a.first()?)?, entries(a.get(1)?)))
}

/// The smallest pending id of an `XPENDING <stream> <group>` summary, `None` when none is.
pub fn pending_min(v: &Value) -> Option<String> {
    let a = items(v);
    let count: u64 = text(a.first()?)?.parse().ok()?;
    if count == 0 {
        return None;
    }
    text(a.get(1)?)
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Stream ids in stream order (`10-0` after `9-5`); unreadable ids sort first.
pub fn cmp_ids(a: &str, b: &str) -> std::cmp::Ordering {
    parse_id(a).cmp(&parse_id(b))
}

/// The smallest id after `id`.
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = parse_id(id)?;
    Some(match seq.checked_add(1) {
        Some(s) => format!("{ms}-{s}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

/// `XINFO GROUPS`.
pub fn groups(v: &Value) -> Vec<Group> {
    items(v)
        .iter()
        .filter_map(|g| {
            let f: HashMap<String, Value> = pairs(g).into_iter().collect();
            Some(Group {
                name: text(f.get("name")?)?,
                last_delivered_id: text(f.get("last-delivered-id")?)?,
                lag: f.get("lag").and_then(text).and_then(|l| l.parse().ok()),
                pending: f
                    .get("pending")
                    .and_then(text)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::BulkString(x.as_bytes().to_vec())
    }
    fn arr(v: Vec<Value>) -> Value {
        Value::Array(v)
    }

    #[test]
    fn ids_order_and_advance() {
        assert_eq!(cmp_ids("10-0", "9-5"), std::cmp::Ordering::Greater);
        assert_eq!(next_id("9-5").as_deref(), Some("9-6"));
        assert_eq!(next_id(&format!("9-{}", u64::MAX)).as_deref(), Some("10-0"));
        assert_eq!(next_id("x"), None);
        let summary = arr(vec![Value::Int(2), s("3-0"), s("4-0"), arr(vec![])]);
        assert_eq!(pending_min(&summary).as_deref(), Some("3-0"));
        let none = arr(vec![Value::Int(0), Value::Nil, Value::Nil, Value::Nil]);
        assert_eq!(pending_min(&none), None);
    }

    #[test]
    fn reads_the_shapes_redis_7_sends() {
        let e = arr(vec![
            s("1-0"),
            arr(vec![s("build"), s("b1"), s("attempt"), s("2")]),
        ]);
        let read_reply = arr(vec![arr(vec![s("stream"), arr(vec![e.clone()])])]);
        let got = read(&read_reply);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].id.as_str(), got[0].get("attempt")),
            ("1-0", Some("2"))
        );
        assert!(read(&Value::Nil).is_empty());

        let deleted = arr(vec![s("2-0"), Value::Nil]);
        let (next, es) =
            autoclaim(&arr(vec![s("0-0"), arr(vec![e, deleted]), arr(vec![])])).unwrap();
        assert_eq!(next, "0-0");
        assert_eq!(es.len(), 2);
        assert!(es[1].fields.is_empty());

        let g = arr(vec![arr(vec![
            s("name"),
            s("builders"),
            s("consumers"),
            Value::Int(1),
            s("pending"),
            Value::Int(0),
            s("last-delivered-id"),
            s("1-0"),
            s("entries-read"),
            Value::Int(1),
            s("lag"),
            Value::Int(3),
        ])]);
        assert_eq!(
            groups(&g),
            vec![Group {
                name: "builders".into(),
                last_delivered_id: "1-0".into(),
                lag: Some(3),
                pending: 0
            }]
        );
        let nil_lag = arr(vec![arr(vec![
            s("name"),
            s("g"),
            s("last-delivered-id"),
            s("0-0"),
            s("lag"),
            Value::Nil,
        ])]);
        assert_eq!(groups(&nil_lag)[0].lag, None);
    }
}
