//! The presence rules one by one, then properties over random sequences of messages.

use super::*;
use proptest::prelude::*;

const ME: u64 = 1_000;
const T0: u64 = 1_700_000_000_000;
const LIMITS: PresenceLimits = PresenceLimits {
    client_ids_per_session: 4,
    lock_wishes_per_client: 8,
};

fn room() -> Presence {
    Presence::new(ME, r#"{"appgear":{}}"#.to_string(), T0, LIMITS)
}

fn state(client: u64, clock: u32, json: &str) -> Entry {
    Entry {
        client,
        clock,
        json: json.into(),
    }
}

fn user(client: u64, clock: u32) -> Entry {
    state(client, clock, r#"{"user":"u"}"#)
}

fn wants(client: u64, clock: u32, paths: &[&str]) -> Entry {
    let json = serde_json::json!({ "lockRequests": paths }).to_string();
    state(client, clock, &json)
}

fn paths(p: &[&str]) -> BTreeSet<String> {
    p.iter().map(|s| s.to_string()).collect()
}

fn announced(effects: &[Effect]) -> Vec<Entry> {
    effects
        .iter()
        .flat_map(|e| match e {
            Effect::Announce { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_new_client_is_taken_and_relayed_as_sent() {
    let mut p = room();
    let fx = p.client_update(1, false, vec![user(7, 1)], T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 1 }]);
    assert_eq!(p.owner(7), Some(1));
    assert_eq!(p.state(7), Some(r#"{"user":"u"}"#));
}

#[test]
fn a_client_id_belongs_to_the_session_that_announced_it() {
    let mut p = room();
    p.client_update(1, false, vec![wants(7, 1, &["a.md"])], T0);
    // Another session sends the same id with higher clocks: a state, then a removal.
    assert_eq!(p.client_update(2, false, vec![user(7, 100)], T0), vec![]);
    assert_eq!(
        p.client_update(2, false, vec![Entry::removal(7, 200)], T0),
        vec![]
    );
    assert_eq!(p.clock(7), Some(1));
    assert_eq!(p.owner(7), Some(1));
    assert!(p.state(7).is_some_and(|s| s.contains("a.md")));
}

#[test]
fn what_is_dropped_from_a_message_is_left_out_of_what_is_relayed() {
    let mut p = room();
    p.client_update(1, false, vec![user(7, 1)], T0);
    // Session 2 announces itself and echoes 7: only its own entry goes on, re-encoded.
    let fx = p.client_update(2, false, vec![user(8, 1), user(7, 1)], T0);
    assert_eq!(
        fx,
        vec![Effect::Announce {
            entries: vec![user(8, 1)],
            except: Some(2),
        }]
    );
}

#[test]
fn nobody_announces_the_gateway() {
    let mut p = room();
    let own = p.clock(ME);
    assert_eq!(p.client_update(1, false, vec![user(ME, 50)], T0), vec![]);
    assert_eq!(
        p.client_update(1, false, vec![Entry::removal(ME, 50)], T0),
        vec![]
    );
    assert_eq!(p.clock(ME), own);
    assert_eq!(p.state(ME), Some(r#"{"appgear":{}}"#));
}

#[test]
fn a_higher_clock_wins_and_an_echo_or_an_older_clock_does_not() {
    let mut p = room();
    p.client_update(1, false, vec![user(7, 5)], T0);
    assert_eq!(p.client_update(1, false, vec![user(7, 5)], T0), vec![]);
    assert_eq!(p.client_update(1, false, vec![user(7, 4)], T0), vec![]);
    let fx = p.client_update(1, false, vec![state(7, 6, r#"{"n":6}"#)], T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 1 }]);
    assert_eq!(p.state(7), Some(r#"{"n":6}"#));
}

#[test]
fn a_goodbye_at_the_same_clock_is_a_removal_and_releases_locks_and_ownership() {
    let mut p = room();
    p.client_update(1, false, vec![wants(7, 3, &["a.md"])], T0);
    let fx = p.client_update(1, false, vec![Entry::removal(7, 3)], T0);
    assert_eq!(
        fx,
        vec![
            Effect::RelayAsSent { except: 1 },
            Effect::WantLocks {
                client: 7,
                paths: paths(&[]),
            },
        ]
    );
    assert_eq!(p.state(7), None);
    assert_eq!(p.clock(7), Some(3));
    assert_eq!(p.owner(7), None);
    // A removal of a client already gone is nothing new.
    assert_eq!(
        p.client_update(1, false, vec![Entry::removal(7, 3)], T0),
        vec![]
    );
}

#[test]
fn a_removal_of_an_unknown_client_is_not_taken() {
    let mut p = room();
    assert_eq!(
        p.client_update(1, false, vec![Entry::removal(7, 3)], T0),
        vec![]
    );
    assert_eq!(p.clock(7), None);
}

#[test]
fn lock_wishes_are_passed_on_only_when_they_change() {
    let mut p = room();
    let fx = p.client_update(1, false, vec![wants(7, 1, &["a.md", "b.md"])], T0);
    assert_eq!(
        fx[1..],
        [Effect::WantLocks {
            client: 7,
            paths: paths(&["a.md", "b.md"]),
        }]
    );
    // Same wish, new cursor: nothing for the lock keeper.
    let fx = p.client_update(1, false, vec![wants(7, 2, &["b.md", "a.md"])], T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 1 }]);
    let fx = p.client_update(1, false, vec![wants(7, 3, &[])], T0);
    assert_eq!(
        fx[1..],
        [Effect::WantLocks {
            client: 7,
            paths: paths(&[]),
        }]
    );
    // No wish before and none now: nothing either.
    let fx = p.client_update(1, false, vec![user(7, 4)], T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 1 }]);
}

#[test]
fn a_read_only_session_is_shown_but_takes_no_locks() {
    let mut p = room();
    let fx = p.client_update(1, true, vec![wants(7, 1, &["a.md"])], T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 1 }]);
    assert!(p.state(7).is_some());
}

#[test]
fn a_closed_session_s_clients_are_removed_at_their_own_clocks() {
    let mut p = room();
    p.client_update(1, false, vec![wants(7, 4, &["a.md"]), user(8, 9)], T0);
    p.client_update(2, false, vec![user(9, 1)], T0);
    let mut fx = p.session_closed(1, 10, T0);
    let Effect::ForgetLocks(mut gone) = fx.remove(0) else {
        panic!("{fx:?}")
    };
    gone.sort();
    assert_eq!(gone, [7, 8]);
    let mut removed = announced(&fx);
    removed.sort_by_key(|e| e.client);
    assert_eq!(removed, [Entry::removal(7, 4), Entry::removal(8, 9)]);
    assert!(matches!(fx[0], Effect::Announce { except: None, .. }));
    assert_eq!((p.state(7), p.state(8)), (None, None));
    assert_eq!((p.owner(7), p.owner(8)), (None, None));
    assert!(p.state(9).is_some(), "another session's client stays");
    assert_eq!(p.session_closed(1, 10, T0), vec![], "nothing left to close");
}

#[test]
fn a_returning_client_is_seen_again_at_once_and_keeps_its_lock_wish() {
    let mut p = room();
    p.client_update(1, false, vec![wants(7, 4, &["a.md"])], T0);
    p.session_closed(1, 3, T0);
    // It reconnects (session 3) and announces itself at the clock of its removal: moved up by one.
    let fx = p.client_update(3, false, vec![wants(7, 4, &["a.md"])], T0);
    assert_eq!(
        fx,
        vec![
            Effect::Announce {
                entries: vec![wants(7, 5, &["a.md"])],
                except: Some(3),
            },
            Effect::WantLocks {
                client: 7,
                paths: paths(&["a.md"]),
            },
        ]
    );
    assert_eq!(p.owner(7), Some(3));
    // Its later clocks stay moved up, so its peers keep taking them.
    let fx = p.client_update(3, false, vec![user(7, 5)], T0);
    assert_eq!(announced(&fx), [user(7, 6)]);
    assert_eq!(p.clock(7), Some(6));
}

#[test]
fn a_session_older_than_the_removal_does_not_bring_a_client_back() {
    let mut p = room();
    p.client_update(1, false, vec![user(7, 4)], T0);
    p.client_update(2, false, vec![user(8, 1)], T0);
    p.session_closed(1, 3, T0);
    // Session 2 was already there: its echo of 7 at the removal's clock is just an echo.
    assert_eq!(p.client_update(2, false, vec![user(7, 4)], T0), vec![]);
    assert_eq!(p.state(7), None);
    // Something newer from it is taken, though: nobody owns 7 any more.
    assert_eq!(
        p.client_update(2, false, vec![user(7, 5)], T0),
        vec![Effect::RelayAsSent { except: 2 }]
    );
}

#[test]
fn presence_from_other_replicas_is_taken_and_moves_here_when_its_client_does() {
    let mut p = room();
    p.remote_update(vec![user(7, 3)], T0);
    assert!(p.state(7).is_some());
    assert_eq!(p.owner(7), None);
    // The client's replica died and it reconnected here: its next clock moves it.
    assert_eq!(p.client_update(1, false, vec![user(7, 3)], T0), vec![]);
    p.client_update(1, false, vec![user(7, 4)], T0);
    assert_eq!(p.owner(7), Some(1));
    assert!(
        p.prune(T0 + STALE_AFTER_MS + 1).is_empty(),
        "a client of ours is never stale"
    );
}

#[test]
fn stale_presence_from_other_replicas_is_dropped_with_a_new_clock() {
    let mut p = room();
    p.remote_update(vec![user(7, 3)], T0);
    p.remote_update(vec![user(8, 1)], T0 + 20_000);
    assert!(p.prune(T0 + STALE_AFTER_MS).is_empty(), "not yet");
    assert_eq!(p.prune(T0 + STALE_AFTER_MS + 1), [7]);
    assert_eq!((p.state(7), p.clock(7)), (None, Some(4)));
    assert!(p.state(8).is_some());
    assert!(p.state(ME).is_some(), "the gateway is never stale");
}

#[test]
fn another_replica_cannot_remove_the_gateway() {
    let mut p = room();
    let clock = p.clock(ME).unwrap_or(0);
    p.remote_update(vec![Entry::removal(ME, clock + 3)], T0);
    assert_eq!(p.clock(ME), Some(clock + 4));
    assert!(p.state(ME).is_some());
}

#[test]
fn the_gateway_s_own_state_gets_a_new_clock_each_time_and_is_in_the_snapshot() {
    let mut p = room();
    let first = p.clock(ME).unwrap_or(0);
    let own = p.set_own(r#"{"appgear":{"locks":[]}}"#.to_string(), T0);
    assert_eq!(own.clock, first + 1);
    p.client_update(1, false, vec![user(7, 1), user(8, 1)], T0);
    p.client_update(1, false, vec![Entry::removal(8, 1)], T0);
    let mut snap = p.snapshot();
    snap.sort_by_key(|e| e.client);
    assert_eq!(snap, [user(7, 1), own], "present clients only");
}

#[test]
fn the_gateway_state_carries_the_room_and_its_locks() {
    let lock = LockInfo {
        path: "a.md".into(),
        owner: "yjs:7".into(),
        fencing: 3,
        expires_in_ms: 900,
    };
    let v: serde_json::Value =
        serde_json::from_str(&gateway_state("r/x.ts", &[lock])).unwrap_or_default();
    assert_eq!(v["appgear"]["role"], "gateway");
    assert_eq!(v["appgear"]["room"], "r/x.ts");
    assert_eq!(v["appgear"]["locks"][0]["expiresInMs"], 900);
}

#[test]
fn a_connection_owns_at_most_the_limit_of_client_ids() {
    let mut p = room();
    let six: Vec<Entry> = (1..=6).map(|c| user(c, 1)).collect();
    let fx = p.client_update(1, false, six, T0);
    let taken: Vec<u64> = announced(&fx).iter().map(|e| e.client).collect();
    assert_eq!(taken.len(), 4, "{fx:?}");
    assert!(fx.contains(&Effect::ClientIdsRefused {
        session: 1,
        dropped: 2,
        first: true,
    }));
    // Nothing of the dropped ids is kept, and what is relayed is what was taken.
    for c in 1..=6 {
        assert_eq!(p.state(c).is_some(), taken.contains(&c), "client {c}");
    }
    // Told once per connection; its own ids still change.
    let fx = p.client_update(1, false, vec![user(9, 1), user(taken[0], 2)], T0);
    assert!(fx.contains(&Effect::ClientIdsRefused {
        session: 1,
        dropped: 1,
        first: false,
    }));
    assert_eq!(p.clock(taken[0]), Some(2));
    assert_eq!(p.state(9), None);
    // A goodbye frees a place.
    p.client_update(1, false, vec![Entry::removal(taken[0], 2)], T0);
    assert_eq!(
        p.client_update(1, false, vec![user(9, 1)], T0),
        vec![Effect::RelayAsSent { except: 1 }]
    );
    // Another connection has its own budget.
    assert_eq!(
        p.client_update(2, false, vec![user(20, 1)], T0),
        vec![Effect::RelayAsSent { except: 2 }]
    );
    // Closing the connection gives its places back with its ids.
    p.session_closed(1, 3, T0);
    let fx = p.client_update(3, false, (30..34).map(|c| user(c, 1)).collect(), T0);
    assert_eq!(fx, vec![Effect::RelayAsSent { except: 3 }]);
}

#[test]
fn lock_wishes_beyond_the_limit_are_cut_and_said() {
    let mut p = room();
    let asked: Vec<String> = (0..10).map(|i| format!("f{i}.md")).collect();
    let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
    let fx = p.client_update(1, false, vec![wants(7, 1, &asked)], T0);
    assert!(fx.contains(&Effect::LockWishesCut {
        client: 7,
        asked: 10,
        kept: 8,
    }));
    let wished = fx.iter().find_map(|e| match e {
        Effect::WantLocks { paths, .. } => Some(paths.clone()),
        _ => None,
    });
    assert_eq!(wished.map(|w| w.len()), Some(8));
    // The same wish again is nothing new, and not said again.
    assert_eq!(
        p.client_update(1, false, vec![wants(7, 2, &asked)], T0),
        vec![Effect::RelayAsSent { except: 1 }]
    );
}

#[test]
fn the_gateway_entry_lists_locks_within_its_budget() {
    let locks: Vec<LockInfo> = (0..2000)
        .map(|i| LockInfo {
            path: format!("src/some/rather/long/path/to/file-{i:04}.ts"),
            owner: format!("yjs:{i}"),
            fencing: i,
            expires_in_ms: 30_000,
        })
        .collect();
    let state = gateway_state("r", &locks);
    assert!(
        state.len() < GATEWAY_LOCKS_BUDGET + 1024,
        "{} bytes",
        state.len()
    );
    let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    let listed = v["appgear"]["locks"].as_array().map_or(0, Vec::len);
    assert!(listed > 100 && listed < 2000, "{listed}");
    assert_eq!(v["appgear"]["lockCount"], 2000);
    assert_eq!(v["appgear"]["truncated"], true);
    assert_eq!(v["appgear"]["locks"][0]["path"], locks[0].path);
    let small: serde_json::Value =
        serde_json::from_str(&gateway_state("r", &locks[..3])).unwrap_or_default();
    assert_eq!(small["appgear"]["locks"].as_array().map_or(0, Vec::len), 3);
    assert_eq!(small["appgear"]["truncated"], false);
}

/// One thing that can happen to a room's presence.
#[derive(Debug, Clone)]
enum Op {
    Client {
        session: u64,
        read_only: bool,
        entries: Vec<Entry>,
    },
    Remote(Vec<Entry>),
    Close(u64),
    NewSession,
    Prune(u64),
}

/// A message's entries: a few client ids (the gateway's among them), each at most once as on the
/// wire, with clocks close together, so that owners, echoes, goodbyes and returns all happen.
fn entries(most: usize) -> impl Strategy<Value = Vec<Entry>> {
    let json = prop_oneof![
        Just("null"),
        Just(r#"{"user":"a"}"#),
        Just(r#"{"lockRequests":["a.md"]}"#),
        Just(r#"{"lockRequests":["b.md","a.md"]}"#),
    ];
    proptest::collection::btree_map(prop_oneof![Just(ME), 1u64..6], (0u32..8, json), 1..most)
        .prop_map(|m| {
            m.into_iter()
                .map(|(client, (clock, json))| state(client, clock, json))
                .collect()
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..5, any::<bool>(), entries(4)).prop_map(
            |(session, read_only, entries)| Op::Client { session, read_only, entries }
        ),
        2 => entries(3).prop_map(Op::Remote),
        2 => (1u64..5).prop_map(Op::Close),
        1 => Just(Op::NewSession),
        1 => (0u64..60_000).prop_map(Op::Prune),
    ]
}

/// The table as seen from outside: client → (clock, state, owner).
fn view(p: &Presence) -> HashMap<u64, (u32, Option<String>, Option<u64>)> {
    p.known
        .keys()
        .map(|c| {
            (
                *c,
                (
                    p.clock(*c).unwrap_or(0),
                    p.state(*c).map(str::to_string),
                    p.owner(*c),
                ),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn presence_rules_hold_over_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        let mut p = room();
        let mut now = T0;
        let mut next_session = 5;
        for op in ops {
            let before = view(&p);
            match op.clone() {
                Op::Client { session, read_only, entries } => {
                    let effects = p.client_update(session, read_only, entries, now);
                    let after = view(&p);
                    for (client, (clock, state, owner)) in &before {
                        // A connection never changes a client id owned by another.
                        if owner.is_some_and(|o| o != session) {
                            prop_assert_eq!(&after[client], &(*clock, state.clone(), *owner), "{:?}", op);
                        }
                    }
                    // Nobody but the gateway changes the gateway.
                    prop_assert_eq!(&after[&ME], &before[&ME]);
                    for effect in &effects {
                        match effect {
                            Effect::WantLocks { client, .. } => {
                                prop_assert!(!read_only || after[client].1.is_none(), "{:?}", op);
                                prop_assert!(*client != ME);
                            }
                            Effect::Announce { entries, except } => {
                                prop_assert_eq!(*except, Some(session));
                                // What is passed on is what the room now shows.
                                for e in entries {
                                    let (clock, state, _) = &after[&e.client];
                                    prop_assert_eq!(*clock, e.clock);
                                    prop_assert_eq!(state.as_deref(), (!e.is_removal()).then_some(&*e.json));
                                }
                            }
                            Effect::RelayAsSent { except } => prop_assert_eq!(*except, session),
                            Effect::ForgetLocks(_) => prop_assert!(false, "a message forgot locks"),
                            Effect::ClientIdsRefused { session: s, dropped, .. } => {
                                prop_assert_eq!(*s, session);
                                prop_assert!(*dropped > 0);
                            }
                            Effect::LockWishesCut { asked, kept, .. } => prop_assert!(kept < asked),
                        }
                    }
                }
                Op::Remote(entries) => p.remote_update(entries, now),
                Op::Close(session) => {
                    let owned: Vec<u64> = before.iter()
                        .filter(|(_, (_, _, o))| *o == Some(session))
                        .map(|(c, _)| *c)
                        .collect();
                    let effects = p.session_closed(session, next_session, now);
                    // After close every client id of that connection is removed, for everyone.
                    for c in &owned {
                        prop_assert_eq!(p.state(*c), None);
                        prop_assert_eq!(p.owner(*c), None);
                    }
                    let mut forgotten: Vec<u64> = effects.iter().flat_map(|e| match e {
                        Effect::ForgetLocks(ids) => ids.clone(),
                        _ => Vec::new(),
                    }).collect();
                    forgotten.sort();
                    let mut owned = owned.clone();
                    owned.sort();
                    prop_assert_eq!(forgotten, owned.clone());
                    let mut removed: Vec<u64> = announced(&effects).iter().map(|e| {
                        assert!(e.is_removal());
                        e.client
                    }).collect();
                    removed.sort();
                    prop_assert_eq!(removed, owned);
                }
                Op::NewSession => next_session += 1,
                Op::Prune(ms) => {
                    now += ms;
                    p.prune(now);
                }
            }
            let after = view(&p);
            for (client, (clock, _, _)) in &before {
                // Clocks only grow, and a client once known stays known.
                prop_assert!(after.get(client).is_some_and(|a| a.0 >= *clock), "{:?}", op);
            }
            // The gateway is always present and owned by nobody.
            prop_assert!(p.state(ME).is_some());
            prop_assert_eq!(p.owner(ME), None);
            // No connection owns more client ids than it may, and the counts kept agree.
            let mut owned: HashMap<u64, usize> = HashMap::new();
            for session in p.owner.values() {
                *owned.entry(*session).or_default() += 1;
            }
            prop_assert!(owned.values().all(|n| *n <= LIMITS.client_ids_per_session), "{:?}", owned);
            prop_assert_eq!(&owned, &p.owned);
        }
    }
}
