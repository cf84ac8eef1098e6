//! The room's `yrs` document: a fresh one for a room, applying an update and telling what it
//! did to the document, and encoding what entered it since a state vector.

use crate::multiplayer::protocol::codec;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

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

/// Apply an update. Only an update that changed the document is persisted and relayed.
pub fn apply(doc: &Doc, update: Update) -> Applied {
    let extends = update.extends(&state_vector(doc));
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let key = "appgear-room-apply";
    let observing = doc
        .observe_update_v1(key, move |_, _| flag.store(true, Ordering::Relaxed))
        .is_ok();
    let result = catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update)));
    if observing {
        let _ = doc.unobserve_update_v1(key);
    }
    match result {
        Err(_) => Applied::Broken,
        Ok(Err(_)) => Applied::Rejected,
        Ok(Ok(())) if fired.load(Ordering::Relaxed) => Applied::Integrated,
        Ok(Ok(())) if extends => Applied::Pending,
        Ok(Ok(())) => Applied::Nothing,
    }
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

    #[test]
    fn new_documents_have_valid_client_ids() {
        for _ in 0..100 {
            assert!(new_doc().client_id().get() < codec::MAX_CLIENT_ID);
        }
    }
}
