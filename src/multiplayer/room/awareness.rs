//! Presence entries to and from the awareness payloads of the wire (the `yrs` types the codec
//! decodes into and encodes from).

use crate::multiplayer::room::presence::Entry;
use axum::body::Bytes;
use std::collections::HashMap;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::AwarenessUpdate;
use yrs::updates::encoder::Encode;

/// The entries of a decoded awareness update.
pub fn entries(update: AwarenessUpdate) -> Vec<Entry> {
    update
        .clients
        .into_iter()
        .map(|(client, e)| Entry {
            client: client.get(),
            clock: e.clock,
            json: e.json,
        })
        .collect()
}

/// An awareness payload (the bytes after the message type) holding `entries`.
pub fn payload(entries: &[Entry]) -> Bytes {
    let clients: HashMap<ClientID, AwarenessUpdateEntry> = entries
        .iter()
        .map(|e| {
            (
                ClientID::new(e.client),
                AwarenessUpdateEntry {
                    clock: e.clock,
                    json: e.json.clone(),
                },
            )
        })
        .collect();
    Bytes::from(AwarenessUpdate { clients }.encode_v1())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;

    #[test]
    fn entries_round_trip() {
        let sent = vec![
            Entry {
                client: 7,
                clock: 3,
                json: r#"{"user":"ana"}"#.into(),
            },
            Entry::removal(9, 12),
        ];
        let mut back = entries(AwarenessUpdate::decode_v1(&payload(&sent)).unwrap());
        back.sort_by_key(|e| e.client);
        assert_eq!(back, sent);
    }
}
