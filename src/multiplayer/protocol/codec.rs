//! The y-websocket wire format: one protocol message per WebSocket frame.
//!
//! Inbound frames are parsed into [`Inbound`] by hand at the top level so that the raw payload
//! bytes are kept (updates and awareness are relayed byte for byte); the payloads themselves are
//! validated with `yrs`' decoders. Decoding never panics: `yrs` has debug assertions on client ids
//! that attacker-controlled bytes can trip, so the pure decoding step runs under `catch_unwind`.

use crate::multiplayer::protocol::payload_check;
use crate::multiplayer::protocol::presence_state::{self, Refusal};
use axum::body::Bytes;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::encoding::read::{Cursor, Read};
use yrs::encoding::write::Write;
use yrs::sync::protocol::{
    MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS, MSG_SYNC, MSG_SYNC_STEP_1, MSG_SYNC_STEP_2,
    MSG_SYNC_UPDATE,
};
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::{StateVector, Update};

/// One decoded client message.
#[derive(Debug)]
pub enum Inbound {
    /// The client's state vector: answer with what it lacks.
    SyncStep1(StateVector),
    /// What the client has that we lacked (treated like an update).
    SyncStep2(DocUpdate),
    /// A local change of the client.
    Update(DocUpdate),
    /// Presence: the raw payload (relayed as is) and its decoded form.
    Awareness { raw: Bytes, update: AwarenessUpdate },
    /// The client asks for everyone's presence.
    QueryAwareness,
    /// Auth messages and unknown message types are ignored, as the reference server does.
    Ignored(u64),
}

/// A document update: the bytes as the client sent them and the decoded form.
#[derive(Debug)]
pub struct DocUpdate {
    pub raw: Bytes,
    pub decoded: Update,
}

/// Why a frame could not be decoded. Any of these closes only the sending connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    Malformed(&'static str),
    TrailingBytes,
    /// Well formed, but a part is above its limit (a presence state above 64 KiB).
    TooBig(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty frame"),
            DecodeError::Malformed(what) => write!(f, "malformed {what}"),
            DecodeError::TrailingBytes => f.write_str("more than one message in a frame"),
            DecodeError::TooBig(what) => write!(f, "{what} too big"),
        }
    }
}

/// Decode exactly one message from one frame.
pub fn decode_frame(frame: &[u8]) -> Result<Inbound, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut cur = Cursor::new(frame);
    let tag: u64 = cur
        .read_var()
        .map_err(|_| DecodeError::Malformed("message type"))?;
    let msg = match tag {
        t if t == u64::from(MSG_SYNC) => {
            let sub: u64 = cur
                .read_var()
                .map_err(|_| DecodeError::Malformed("sync message type"))?;
            let payload = cur
                .read_buf()
                .map_err(|_| DecodeError::Malformed("sync payload"))?;
            match sub {
                s if s == u64::from(MSG_SYNC_STEP_1) => {
                    payload_check::state_vector(payload)
                        .map_err(|_| DecodeError::Malformed("state vector"))?;
                    let sv = guarded(|| StateVector::decode_v1(payload))
                        .ok_or(DecodeError::Malformed("state vector"))?;
                    Inbound::SyncStep1(sv)
                }
                s if s == u64::from(MSG_SYNC_STEP_2) => Inbound::SyncStep2(decode_update(payload)?),
                s if s == u64::from(MSG_SYNC_UPDATE) => Inbound::Update(decode_update(payload)?),
                _ => return Err(DecodeError::Malformed("sync message type")),
            }
        }
        t if t == u64::from(MSG_AWARENESS) => {
            let payload = cur
                .read_buf()
                .map_err(|_| DecodeError::Malformed("awareness payload"))?;
            payload_check::awareness(payload)
                .map_err(|_| DecodeError::Malformed("awareness update"))?;
            let update = guarded(|| AwarenessUpdate::decode_v1(payload))
                .ok_or(DecodeError::Malformed("awareness update"))?;
            if update.clients.keys().any(|id| id.get() >= MAX_CLIENT_ID) {
                return Err(DecodeError::Malformed("awareness client id"));
            }
            // Before anything of the message is kept: every state as sent must be one clients
            // can parse, and each client id may appear once (the decoded map keeps only the
            // last of a repeated id, while the payload is relayed with all of them).
            let entries = presence_state::check(payload).map_err(|r| match r {
                Refusal::TooBig => DecodeError::TooBig("presence state"),
                Refusal::NotJson => DecodeError::Malformed("presence state (not JSON)"),
                Refusal::Malformed => DecodeError::Malformed("awareness update"),
            })?;
            if entries != update.clients.len() {
                return Err(DecodeError::Malformed(
                    "awareness update (a client id twice)",
                ));
            }
            Inbound::Awareness {
                raw: Bytes::copy_from_slice(payload),
                update,
            }
        }
        t if t == u64::from(MSG_QUERY_AWARENESS) => Inbound::QueryAwareness,
        t if t == u64::from(MSG_AUTH) => {
            // The rest of an auth message is not needed; consume the frame.
            return Ok(Inbound::Ignored(t));
        }
        other => return Ok(Inbound::Ignored(other)),
    };
    if cur.has_content() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(msg)
}

/// Yjs client ids are 53-bit so that JavaScript numbers hold them exactly.
pub const MAX_CLIENT_ID: u64 = 1 << 53;

fn decode_update(payload: &[u8]) -> Result<DocUpdate, DecodeError> {
    payload_check::update_v1(payload).map_err(|_| DecodeError::Malformed("document update"))?;
    let decoded =
        guarded(|| Update::decode_v1(payload)).ok_or(DecodeError::Malformed("document update"))?;
    Ok(DocUpdate {
        raw: Bytes::copy_from_slice(payload),
        decoded,
    })
}

/// Run a pure decoder; a panic inside it counts as malformed input.
fn guarded<T, E>(f: impl FnOnce() -> Result<T, E>) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()?.ok()
}

/// `[messageSync, syncStep1, stateVector]`
pub fn sync_step1(sv: &StateVector) -> Bytes {
    use yrs::updates::encoder::Encode;
    sync_frame(MSG_SYNC_STEP_1, &sv.encode_v1())
}

/// `[messageSync, syncStep2, update]`
pub fn sync_step2(update: &[u8]) -> Bytes {
    sync_frame(MSG_SYNC_STEP_2, update)
}

/// `[messageSync, update, update]`: the update bytes are copied unchanged.
pub fn sync_update(update: &[u8]) -> Bytes {
    sync_frame(MSG_SYNC_UPDATE, update)
}

fn sync_frame(sub: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.write_var(MSG_SYNC);
    out.write_var(sub);
    out.write_buf(payload);
    Bytes::from(out)
}

/// `[messageAwareness, payload]` with the payload copied unchanged.
pub fn awareness(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.write_var(MSG_AWARENESS);
    out.write_buf(payload);
    Bytes::from(out)
}

/// Encode an awareness update (as produced by `yrs::sync::Awareness`) as a frame.
pub fn awareness_update(update: &AwarenessUpdate) -> Bytes {
    use yrs::updates::encoder::Encode;
    awareness(&update.encode_v1())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, GetString, ReadTxn, Text, Transact};

    fn text_update(s: &str) -> Vec<u8> {
        let doc = Doc::with_client_id(7);
        let t = doc.get_or_insert_text("t");
        t.push(&mut doc.transact_mut(), s);
        let txn = doc.transact();
        txn.encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn update_round_trips_byte_for_byte() {
        let u = text_update("hello");
        let frame = sync_update(&u);
        match decode_frame(&frame) {
            Ok(Inbound::Update(d)) => {
                assert_eq!(&d.raw[..], &u[..]);
                let doc = Doc::new();
                doc.transact_mut().apply_update(d.decoded).unwrap();
                let t = doc.get_or_insert_text("t");
                assert_eq!(t.get_string(&doc.transact()), "hello");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn step1_and_step2_decode() {
        let sv = StateVector::default();
        assert!(matches!(
            decode_frame(&sync_step1(&sv)),
            Ok(Inbound::SyncStep1(_))
        ));
        assert!(matches!(
            decode_frame(&sync_step2(&text_update("x"))),
            Ok(Inbound::SyncStep2(_))
        ));
    }

    #[test]
    fn awareness_payload_kept_raw() {
        let mut a = yrs::sync::Awareness::new(Doc::with_client_id(42));
        a.set_local_state_raw(r#"{"user":"ana"}"#);
        let payload = a.update().unwrap().encode_v1();
        match decode_frame(&awareness(&payload)) {
            Ok(Inbound::Awareness { raw, update }) => {
                assert_eq!(&raw[..], &payload[..]);
                assert_eq!(update.clients.len(), 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn query_awareness_and_unknown_types() {
        assert!(matches!(decode_frame(&[3]), Ok(Inbound::QueryAwareness)));
        assert!(matches!(
            decode_frame(&[2, 0, 1, 65]),
            Ok(Inbound::Ignored(2))
        ));
        assert!(matches!(decode_frame(&[9, 1, 2]), Ok(Inbound::Ignored(9))));
    }

    #[test]
    fn two_messages_in_one_frame_are_refused() {
        let mut f = sync_update(&text_update("a")).to_vec();
        f.extend_from_slice(&sync_update(&text_update("b")));
        assert_eq!(decode_frame(&f).unwrap_err(), DecodeError::TrailingBytes);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(decode_frame(&[]).unwrap_err(), DecodeError::Empty);
        assert!(decode_frame(&[0]).is_err());
        assert!(decode_frame(&[0, 7, 0]).is_err());
        assert!(decode_frame(&[0, 2, 200]).is_err());
        assert!(
            decode_frame(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err()
        );
        // an awareness entry with a client id above 53 bits
        let mut p = Vec::new();
        p.write_var(1u64);
        p.write_var(u64::MAX >> 1);
        p.write_var(1u32);
        p.write_string("{}");
        assert!(decode_frame(&awareness(&p)).is_err());
    }

    fn presence(entries: &[(u64, &str)]) -> Vec<u8> {
        let mut p = Vec::new();
        p.write_var(entries.len() as u64);
        for (client, state) in entries {
            p.write_var(*client);
            p.write_var(1u32);
            p.write_string(state);
        }
        awareness(&p).to_vec()
    }

    #[test]
    fn presence_that_clients_cannot_parse_is_refused() {
        assert!(matches!(
            decode_frame(&presence(&[(1, "{}"), (2, "null")])),
            Ok(Inbound::Awareness { .. })
        ));
        assert_eq!(
            decode_frame(&presence(&[(1, "{}"), (2, "{not json")])).unwrap_err(),
            DecodeError::Malformed("presence state (not JSON)")
        );
        // The good state last: the decoded map would keep it, the relayed bytes hold both.
        assert!(decode_frame(&presence(&[(1, "{not json"), (1, "{}")])).is_err());
        assert_eq!(
            decode_frame(&presence(&[(1, "{}"), (1, "{}")])).unwrap_err(),
            DecodeError::Malformed("awareness update (a client id twice)")
        );
        let big = format!("\"{}\"", "x".repeat(presence_state::MAX_STATE_BYTES));
        assert_eq!(
            decode_frame(&presence(&[(1, &big)])).unwrap_err(),
            DecodeError::TooBig("presence state")
        );
    }

    #[test]
    fn declared_counts_beyond_the_frame_are_refused() {
        // Each of these frames is 8 bytes or less and declares millions of entries.
        let frames: [&[u8]; 4] = [
            &[0, 0, 4, 0xff, 0xff, 0xff, 0x0f, 0], // SyncStep1: state vector count
            &[0, 2, 4, 0xff, 0xff, 0xff, 0x0f],    // Update: clients count
            &[0, 2, 5, 1, 0xff, 0xff, 0xff, 0x0f], // Update: blocks count
            &[1, 5, 0xff, 0xff, 0xff, 0x0f, 0],    // awareness: clients count
        ];
        for f in frames {
            assert!(
                matches!(decode_frame(f), Err(DecodeError::Malformed(_))),
                "{f:?} was accepted"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any frame whose leading count exceeds the bytes after it is refused.
        #[test]
        fn oversized_counts_never_decode(kind in 0u8..3, n in 1u64..(1 << 40),
                tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(n > tail.len() as u64);
            let mut payload = Vec::new();
            payload.write_var(n);
            payload.extend_from_slice(&tail);
            let mut f = Vec::new();
            match kind {
                0 => { f.write_var(0u8); f.write_var(0u8); }
                1 => { f.write_var(0u8); f.write_var(2u8); }
                _ => f.write_var(1u8),
            }
            f.write_buf(&payload);
            prop_assert!(decode_frame(&f).is_err());
        }

        #[test]
        fn real_updates_with_deletions_pass_the_check(s in "[a-z ]{0,64}", del in 0u32..8) {
            let doc = Doc::with_client_id(5);
            let t = doc.get_or_insert_text("t");
            t.push(&mut doc.transact_mut(), &s);
            let len = t.len(&doc.transact());
            t.remove_range(&mut doc.transact_mut(), 0, del.min(len));
            let u = doc.transact().encode_state_as_update_v1(&StateVector::default());
            prop_assert!(decode_frame(&sync_update(&u)).is_ok());
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn decoder_never_panics_on_framed_garbage(kind in 0u8..4, sub in 0u8..4,
                payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut f = Vec::new();
            f.write_var(kind);
            if kind == 0 { f.write_var(sub); }
            f.write_buf(&payload);
            let _ = decode_frame(&f);
        }

        #[test]
        fn text_updates_round_trip(s in "\\PC{0,64}") {
            let u = text_update(&s);
            match decode_frame(&sync_update(&u)) {
                Ok(Inbound::Update(d)) => prop_assert_eq!(&d.raw[..], &u[..]),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
