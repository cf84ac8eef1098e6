//! The room's `yrs` document: a fresh one for a room, applying an update and telling what it
//! did to the document, and encoding what entered it since a state vector.

use crate::multiplayer::protocol::codec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::{Doc, IdSet, ReadTxn, StateVector, Transact, Update};

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The document changed.
    Integrated,
    /// New to us, but held back until a missing dependency arrives.
    Pending,
    /// Nothing new (a reconnecting client's SyncStep2 often repeats what we have).
    Nothing,
    /// `yrs` refused the update: the sender is at fault.
    Rejected,
    /// The CRDT failed while applying: the document can no longer be trusted.
    Broken,
}

/// A document for a room. The gateway never edits, so its client id only has to be valid.
pub fn new_doc() -> Doc {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    Doc::with_client_id(u64::from_le_bytes(b) & (codec::MAX_CLIENT_ID - 1))
}

pub fn state_vector(doc: &Doc) -> StateVector {
    doc.transact().state_vector()
}

/// Everything in the document that `sv` lacks, as a v1 update.
pub fn since(doc: &Doc, sv: &StateVector) -> Vec<u8> {
    doc.transact().encode_state_as_update_v1(sv)
}

/// The state vector now, if updates are held back waiting for a dependency: an update that
/// brings it lets those in too, and what entered since then is more than its own bytes.
pub fn held_back(doc: &Doc) -> Option<StateVector> {
    let txn = doc.transact();
    txn.has_missing_updates().then(|| txn.state_vector())
}

/// Apply an update. Only an update that brought something new (integrated, or held back until
/// a dependency arrives) is persisted and relayed.
///
/// What changed is read from the transaction's own insert and delete sets: an update observer
/// would make `yrs` encode every applied update after squashing it into its author's run of
/// text, which costs more than the rest of applying it on a long append-only stream.
pub fn apply(doc: &Doc, update: Update) -> Applied {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        let sv = txn.state_vector();
        let beyond = brings_news(&update, &sv);
        let r = txn.apply_update(update);
        let changed = !txn.insert_set().is_empty() || !txn.delete_set().is_empty();
        r.map(|()| (changed, beyond))
    }));
    match result {
        Err(_) => Applied::Broken,
        Ok(Err(_)) => Applied::Rejected,
        Ok(Ok((true, _))) => Applied::Integrated,
        Ok(Ok((false, true))) => Applied::Pending,
        Ok(Ok((false, false))) => Applied::Nothing,
    }
}

/// Whether `update` inserts or deletes anything past `sv`. Such an update that changed nothing
/// waits in memory for a dependency; it is new all the same, and must be stored (a client
/// that sent it is told we have it and will not send it again), also when its author's clocks
/// have a gap before it.
fn brings_news(update: &Update, sv: &StateVector) -> bool {
    let past = |set: &IdSet| {
        set.iter()
            .any(|(client, ranges)| ranges.iter().any(|r| r.end > sv.get(client)))
    };
    past(&update.insertions(true)) || past(update.delete_set())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, Text};

    fn update(b: &[u8]) -> Update {
        Update::decode_v1(b).unwrap()
    }

    fn text(doc: &Doc) -> String {
        doc.get_or_insert_text("t").get_string(&doc.transact())
    }

    /// Writer 1 types "a"; writer 2, having it, types "b" after it: writer 2's update depends
    /// on writer 1's.
    fn dependent_updates() -> (Vec<u8>, Vec<u8>) {
        let one = Doc::with_client_id(1);
        one.get_or_insert_text("t")
            .push(&mut one.transact_mut(), "a");
        let first = since(&one, &StateVector::default());
        let two = Doc::with_client_id(2);
        two.transact_mut().apply_update(update(&first)).unwrap();
        let sv = state_vector(&two);
        two.get_or_insert_text("t")
            .push(&mut two.transact_mut(), "b");
        (first, since(&two, &sv))
    }

    #[test]
    fn an_update_that_changes_the_document_is_integrated_and_a_repeat_is_nothing() {
        let doc = new_doc();
        let (first, _) = dependent_updates();
        assert_eq!(apply(&doc, update(&first)), Applied::Integrated);
        assert_eq!(apply(&doc, update(&first)), Applied::Nothing);
        assert_eq!(text(&doc), "a");
    }

    #[test]
    fn an_update_before_its_dependency_is_pending_and_comes_in_with_it() {
        let doc = new_doc();
        let (first, second) = dependent_updates();
        assert_eq!(apply(&doc, update(&second)), Applied::Pending);
        let held = held_back(&doc).expect("an update is held back");
        assert_eq!(apply(&doc, update(&first)), Applied::Integrated);
        assert_eq!(text(&doc), "ab");
        assert!(held_back(&doc).is_none());
        // What entered since the held state is both updates, not just the last one's bytes.
        let late = Doc::new();
        late.transact_mut()
            .apply_update(update(&since(&doc, &held)))
            .unwrap();
        assert_eq!(text(&late), "ab");
    }

    /// A client whose own clocks have a gap before an update (its earlier update was lost on
    /// the way, or went to another replica first) still sent something new: it is pending, so
    /// the room stores and relays it, rather than nothing.
    #[test]
    fn an_update_after_a_gap_in_its_authors_clocks_is_pending() {
        let one = Doc::with_client_id(1);
        let t = one.get_or_insert_text("t");
        t.push(&mut one.transact_mut(), "a");
        let first = since(&one, &StateVector::default());
        let sv = state_vector(&one);
        t.push(&mut one.transact_mut(), "b");
        let second = since(&one, &sv);
        let doc = new_doc();
        assert_eq!(apply(&doc, update(&second)), Applied::Pending);
        assert_eq!(apply(&doc, update(&second)), Applied::Pending);
        assert_eq!(apply(&doc, update(&first)), Applied::Integrated);
        assert_eq!(text(&doc), "ab");
        assert_eq!(apply(&doc, update(&second)), Applied::Nothing);
    }

    /// Deleting what the room has is integrated; deleting what it lacks waits; deleting again
    /// is nothing.
    #[test]
    fn deletions_are_told_apart_the_same_way() {
        let one = Doc::with_client_id(1);
        let t = one.get_or_insert_text("t");
        t.push(&mut one.transact_mut(), "abc");
        let first = since(&one, &StateVector::default());
        let sv = state_vector(&one);
        t.remove_range(&mut one.transact_mut(), 0, 1);
        let del = since(&one, &sv);
        let doc = new_doc();
        assert_eq!(apply(&doc, update(&del)), Applied::Pending);
        assert_eq!(apply(&doc, update(&first)), Applied::Integrated);
        assert_eq!(text(&doc), "bc");
        assert_eq!(apply(&doc, update(&del)), Applied::Nothing);
        let later = new_doc();
        assert_eq!(apply(&later, update(&first)), Applied::Integrated);
        assert_eq!(apply(&later, update(&del)), Applied::Integrated);
        assert_eq!(apply(&later, update(&del)), Applied::Nothing);
    }

    #[test]
    fn new_documents_have_valid_client_ids() {
        for _ in 0..100 {
            assert!(new_doc().client_id().get() < codec::MAX_CLIENT_ID);
        }
    }
}
