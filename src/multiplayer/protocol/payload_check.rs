//! A walk over a payload's structure, before `yrs` decodes it, that checks every declared count
//! against the bytes actually left. `yrs` reserves memory for a declared count up front, so a
//! frame of a few bytes could otherwise make it reserve hundreds of megabytes; after this check a
//! count is at most the payload's length. It also bounds the nesting of `Any` values, which
//! `yrs` decodes recursively. The walk allocates nothing.

use yrs::encoding::read::{Cursor, Read};

/// Deeper nesting than any editor produces; deeper input could exhaust the decoder's stack.
const MAX_ANY_DEPTH: usize = 64;

/// The payload does not hold what it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

type Check = Result<(), Refused>;

/// A state vector: `count, (client, clock)*`.
pub fn state_vector(payload: &[u8]) -> Check {
    let mut c = Cursor::new(payload);
    let n = count(&mut c, 2)?;
    for _ in 0..n {
        var(&mut c)?;
        var(&mut c)?;
    }
    Ok(())
}

/// An awareness update: `count, (client, clock, json)*`.
pub fn awareness(payload: &[u8]) -> Check {
    let mut c = Cursor::new(payload);
    let n = count(&mut c, 3)?;
    for _ in 0..n {
        var(&mut c)?;
        var(&mut c)?;
        c.read_buf().map_err(|_| Refused)?;
    }
    Ok(())
}

/// A document update in the v1 encoding: blocks per client, then the delete set.
pub fn update_v1(payload: &[u8]) -> Check {
    let mut c = Cursor::new(payload);
    let clients = count(&mut c, 3)?;
    for _ in 0..clients {
        let blocks = count(&mut c, 1)?;
        var(&mut c)?; // client
        var(&mut c)?; // first clock
        for _ in 0..blocks {
            block(&mut c)?;
        }
    }
    let clients = count(&mut c, 2)?;
    for _ in 0..clients {
        var(&mut c)?; // client
        let ranges = count(&mut c, 2)?;
        for _ in 0..ranges {
            var(&mut c)?;
            var(&mut c)?;
        }
    }
    Ok(())
}

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

fn block(c: &mut Cursor) -> Check {
    let info = c.read_u8().map_err(|_| Refused)?;
    match info {
        // GC and Skip: a length
        0 | 10 => var(c).map(drop),
        info => {
            if info & HAS_ORIGIN != 0 {
                var(c)?;
                var(c)?;
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                var(c)?;
                var(c)?;
            }
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                if var(c)? == 1 {
                    c.read_buf().map_err(|_| Refused)?; // root type name
                } else {
                    var(c)?; // parent item id
                    var(c)?;
                }
                if info & HAS_PARENT_SUB != 0 {
                    c.read_buf().map_err(|_| Refused)?;
                }
            }
            content(c, info & 0b1_1111)
        }
    }
}

fn content(c: &mut Cursor, kind: u8) -> Check {
    match kind {
        1 => var(c).map(drop), // deleted: a length
        2 => {
            // JSON: a count of strings
            let n = count(c, 1)?;
            for _ in 0..n {
                c.read_buf().map_err(|_| Refused)?;
            }
            Ok(())
        }
        3..=5 => c.read_buf().map(drop).map_err(|_| Refused), // binary, string, embed
        6 => {
            c.read_buf().map_err(|_| Refused)?; // format: key, value
            c.read_buf().map(drop).map_err(|_| Refused)
        }
        7 => match c.read_u8().map_err(|_| Refused)? {
            3 => c.read_buf().map(drop).map_err(|_| Refused), // XML element: its name
            0..=6 | 9 | 15 => Ok(()),
            _ => Err(Refused),
        },
        8 => {
            let n = count(c, 1)?;
            for _ in 0..n {
                any(c, 0)?;
            }
            Ok(())
        }
        9 => {
            c.read_buf().map_err(|_| Refused)?; // sub-document: guid, options
            any(c, 0)
        }
        _ => Err(Refused),
    }
}

fn any(c: &mut Cursor, depth: usize) -> Check {
    if depth > MAX_ANY_DEPTH {
        return Err(Refused);
    }
    match c.read_u8().map_err(|_| Refused)? {
        127 | 126 | 121 | 120 => Ok(()),
        125 => c.read_var::<i64>().map(drop).map_err(|_| Refused),
        124 => c.read_exact(4).map(drop).map_err(|_| Refused),
        123 | 122 => c.read_exact(8).map(drop).map_err(|_| Refused),
        119 | 116 => c.read_buf().map(drop).map_err(|_| Refused),
        118 => {
            let n = count(c, 2)?;
            for _ in 0..n {
                c.read_buf().map_err(|_| Refused)?;
                any(c, depth + 1)?;
            }
            Ok(())
        }
        117 => {
            let n = count(c, 1)?;
            for _ in 0..n {
                any(c, depth + 1)?;
            }
            Ok(())
        }
        _ => Err(Refused),
    }
}

fn var(c: &mut Cursor) -> Result<u64, Refused> {
    c.read_var::<u64>().map_err(|_| Refused)
}

/// A declared count of elements that each take at least `min_bytes`: refused when the bytes
/// left cannot hold that many.
fn count(c: &mut Cursor, min_bytes: usize) -> Result<u64, Refused> {
    let n = var(c)?;
    let left = (c.buf.len() - c.next) as u64;
    if n > left / min_bytes as u64 {
        return Err(Refused);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Any, Array, Doc, Map, ReadTxn, StateVector, Text, Transact, WriteTxn};

    #[test]
    fn real_payloads_pass() {
        let doc = Doc::with_client_id(3);
        let t = doc.get_or_insert_text("t");
        let m = doc.get_or_insert_map("m");
        let a = doc.get_or_insert_array("a");
        {
            let mut txn = doc.transact_mut();
            t.push(&mut txn, "héllo");
            t.remove_range(&mut txn, 1, 2);
            m.insert(&mut txn, "k", Any::from(vec![Any::from(1.5), Any::Null]));
            a.push_back(&mut txn, "x");
            let _ = txn.get_or_insert_xml_fragment("x");
        }
        let txn = doc.transact();
        assert_eq!(
            update_v1(&txn.encode_state_as_update_v1(&StateVector::default())),
            Ok(())
        );
        assert_eq!(state_vector(&txn.state_vector().encode_v1()), Ok(()));
        let mut aw = yrs::sync::Awareness::new(Doc::with_client_id(9));
        aw.set_local_state_raw(r#"{"user":"ana"}"#);
        assert_eq!(awareness(&aw.update().unwrap().encode_v1()), Ok(()));
    }

    #[test]
    fn counts_beyond_the_payload_are_refused() {
        // 8 bytes each: a count of millions with nothing behind it.
        let huge = [0xff, 0xff, 0xff, 0x0f];
        for p in [&huge[..], &[0x80, 0x80, 0x80, 0x01, 1, 2, 3, 4]] {
            assert!(state_vector(p).is_err());
            assert!(awareness(p).is_err());
            assert!(update_v1(p).is_err());
        }
        // One client with a huge block count.
        assert!(update_v1(&[1, 0xff, 0xff, 0xff, 0x0f, 1, 0]).is_err());
        // A block of Any content declaring a huge array.
        assert!(update_v1(&[1, 1, 1, 0, 8, 1, 1, b't', 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn deep_any_nesting_is_refused() {
        let mut p = vec![1, 1, 1, 0, 8, 1, 1, b't', 1];
        p.extend(std::iter::repeat_n([117u8, 1], 1000).flatten());
        p.push(126);
        p.push(0);
        assert!(update_v1(&p).is_err());
    }
}
