//! Lock leases and document storage against a real Redis.

use crate::redis_server;

use appgear::core::redis::RedisLink;
use appgear::multiplayer::redis::keys::Keys;
use appgear::multiplayer::redis::locks::LockStore;
use appgear::multiplayer::redis::persistence::{apply_stored, DocStore, RedisDocStore};
use redis_server::RedisServer;
use std::sync::Arc;
use std::time::Duration;
use yrs::{Doc, GetString, ReadTxn, Text, Transact};

fn unique(tag: &str) -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    format!(
        "t-{tag}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

#[tokio::test]
async fn lock_lease_lifecycle() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let locks = LockStore::new(link, Keys::new(&unique("locks")));
    let ttl = Duration::from_millis(800);
    let a = locks.acquire("room", "f.ts", "alice", ttl).await.unwrap();
    assert!(a.granted);
    let renewed = locks.acquire("room", "f.ts", "alice", ttl).await.unwrap();
    assert!(renewed.granted);
    assert_eq!(
        renewed.fencing, a.fencing,
        "renewal keeps the fencing token"
    );
    let b = locks.acquire("room", "f.ts", "bob", ttl).await.unwrap();
    assert!(!b.granted);
    assert_eq!(b.owner, "alice");
    // Same path in another room is a different lock.
    assert!(
        locks
            .acquire("room2", "f.ts", "bob", ttl)
            .await
            .unwrap()
            .granted
    );
    assert!(
        !locks.release("room", "f.ts", "bob").await.unwrap(),
        "compare-and-delete"
    );
    let listed = locks.list("room").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].owner.as_str(), listed[0].fencing),
        ("alice", a.fencing)
    );
    assert!(locks.release("room", "f.ts", "alice").await.unwrap());
    assert!(locks.list("room").await.unwrap().is_empty());
    let b = locks.acquire("room", "f.ts", "bob", ttl).await.unwrap();
    assert!(b.granted && b.fencing > a.fencing);
    // Not renewed: it expires and the next owner gets a higher fencing token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(locks.list("room").await.unwrap().is_empty());
    let c = locks.acquire("room", "f.ts", "carol", ttl).await.unwrap();
    assert!(c.granted && c.fencing > b.fencing);
}

#[tokio::test]
async fn storage_compaction_keeps_concurrent_appends() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let store = RedisDocStore::new(link, Keys::new(&unique("store")));
    let writer = Doc::with_client_id(11);
    let text = writer.get_or_insert_text("t");
    let append = async |s: &str| {
        let sv = writer.transact().state_vector();
        text.push(&mut writer.transact_mut(), s);
        let u = writer.transact().encode_state_as_update_v1(&sv);
        store.append("room/a.md", &u).await.unwrap();
    };
    for w in ["one ", "two ", "three "] {
        append(w).await;
    }
    // A compaction and appends race: nothing may be lost.
    let compacted = store.compact("room/a.md");
    let (size, ()) = tokio::join!(compacted, async {
        for w in ["four ", "five "] {
            append(w).await;
        }
    });
    assert!(size.unwrap().is_some());
    let stored = store.load("room/a.md").await.unwrap();
    let reader = Doc::new();
    apply_stored(&reader, &stored).unwrap();
    let t = reader.get_or_insert_text("t");
    assert_eq!(t.get_string(&reader.transact()), "one two three four five ");
    // Compacting again with nothing new is a no-op.
    let _ = store.compact("room/a.md").await.unwrap();
    assert_eq!(store.compact("room/a.md").await.unwrap(), None);
}

#[tokio::test]
async fn a_renewed_lock_stays_listed_even_if_its_path_left_the_index() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let keys = Keys::new(&unique("index"));
    let locks = LockStore::new(link.clone(), keys.clone());
    let ttl = Duration::from_secs(5);
    assert!(
        locks
            .acquire("room", "f.ts", "alice", ttl)
            .await
            .unwrap()
            .granted
    );
    // What a listing that saw the path expire does just as the path is locked again.
    let mut c = link.conn().await.unwrap();
    let _: i64 = redis::cmd("HDEL")
        .arg(keys.lock_table("room"))
        .arg("f.ts")
        .query_async(&mut c)
        .await
        .unwrap();
    // The holder renews: the lock must be listed again.
    assert!(
        locks
            .acquire("room", "f.ts", "alice", ttl)
            .await
            .unwrap()
            .granted
    );
    let listed = locks.list("room").await.unwrap();
    assert_eq!(
        listed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
        ["f.ts"]
    );
}

#[tokio::test]
async fn listing_forgets_only_paths_whose_lease_is_gone() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let keys = Keys::new(&unique("expired"));
    let locks = LockStore::new(link.clone(), keys.clone());
    assert!(
        locks
            .acquire("room", "short", "a", Duration::from_millis(500))
            .await
            .unwrap()
            .granted
    );
    assert!(
        locks
            .acquire("room", "long", "a", Duration::from_secs(10))
            .await
            .unwrap()
            .granted
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let listed = locks.list("room").await.unwrap();
    assert_eq!(
        listed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
        ["long"]
    );
    let mut c = link.conn().await.unwrap();
    let mut index: Vec<String> = redis::cmd("HKEYS")
        .arg(keys.lock_table("room"))
        .query_async(&mut c)
        .await
        .unwrap();
    index.sort();
    assert_eq!(index, ["long"], "the expired path left the room's table");
}

/// Every key of a workspace.
async fn keys_of(link: &RedisLink, workspace: &str) -> Vec<String> {
    let mut c = link.conn().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("appgear:mp:{workspace}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn fencing_grows_per_path_and_only_the_workspace_counter_outlives_the_locks() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let ws = unique("fence");
    let locks = LockStore::new(link.clone(), Keys::new(&ws));
    let ttl = Duration::from_millis(500);
    let mut last = 0;
    for round in 0..3 {
        // Many paths, in two rooms: taken, some released, the rest left to expire.
        for i in 0..50 {
            let room = if i % 2 == 0 { "a" } else { "b" };
            let g = locks
                .acquire(room, &format!("p{i}"), "x", ttl)
                .await
                .unwrap();
            assert!(g.granted);
            if i % 3 == 0 {
                assert!(locks.release(room, &format!("p{i}"), "x").await.unwrap());
            }
        }
        // The same path again and again: a higher token each time, also after an expiry.
        let g = locks
            .acquire("a", "same", &format!("holder{round}"), ttl)
            .await
            .unwrap();
        assert!(
            g.granted && g.fencing > last,
            "round {round}: {} after {last}",
            g.fencing
        );
        last = g.fencing;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(
        keys_of(&link, &ws).await,
        [format!("appgear:mp:{ws}:fence")],
        "keys outlived their locks"
    );
}

#[tokio::test]
async fn a_path_locked_by_an_earlier_version_stays_above_its_old_counter() {
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let ws = unique("legacy");
    let keys = Keys::new(&ws);
    let locks = LockStore::new(link.clone(), keys.clone());
    // An earlier version counted per path, without expiry.
    let mut c = link.conn().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(keys.fence("room", "old.ts"))
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    let g = locks
        .acquire("room", "old.ts", "x", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(g.fencing, 1001);
    // The old counter follows (an older replica counts on from there) and now expires.
    let (old, pttl): (u64, i64) = redis::pipe()
        .get(keys.fence("room", "old.ts"))
        .cmd("PTTL")
        .arg(keys.fence("room", "old.ts"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(old, 1001);
    assert!(pttl > 0, "the old counter does not expire");
    // The workspace's counter moved above it: every later grant is higher.
    let next = locks
        .acquire("room", "new.ts", "x", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(next.fencing > 1001);
}

#[tokio::test]
async fn limits_refuse_new_locks_per_room_and_per_owner_but_never_a_renewal() {
    use appgear::multiplayer::redis::locks::{LockLimits, Over};
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let locks = LockStore::new(link, Keys::new(&unique("limits"))).limited(LockLimits {
        per_room: 3,
        per_owner: 2,
    });
    let ttl = Duration::from_secs(5);
    let take =
        async |path: &str, owner: &str| locks.acquire("room", path, owner, ttl).await.unwrap();
    assert!(take("a", "alice").await.granted);
    assert!(take("b", "alice").await.granted);
    let third = take("c", "alice").await;
    assert!(!third.granted);
    assert_eq!(third.over, Some(Over::Owner(2)));
    assert!(take("c", "bob").await.granted);
    let full = take("d", "carol").await;
    assert_eq!((full.granted, full.over), (false, Some(Over::Room(3))));
    // A holder renews whatever the counts.
    assert!(take("a", "alice").await.granted);
    // Another room has its own budget.
    assert!(
        locks
            .acquire("other", "d", "carol", ttl)
            .await
            .unwrap()
            .granted
    );
    // A lock given back, or one that ran out, makes room.
    assert!(locks.release("room", "b", "alice").await.unwrap());
    assert!(take("d", "carol").await.granted);
    assert!(locks.release("room", "d", "carol").await.unwrap());
    let short = locks
        .acquire("room", "short", "dave", Duration::from_millis(500))
        .await
        .unwrap();
    assert!(short.granted);
    assert_eq!(take("e", "eve").await.over, Some(Over::Room(3)));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(take("e", "eve").await.granted);
    let listed: Vec<String> = locks
        .list("room")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(listed, ["a", "c", "e"]);
}

#[tokio::test]
async fn a_reloaded_room_keeps_its_subscription_when_the_old_one_unsubscribes_at_once() {
    use appgear::multiplayer::metrics::Metrics;
    use appgear::multiplayer::redis::backplane::{inbox, Backplane, BackplaneEvent};
    use appgear::multiplayer::redis::pubsub::RedisBackplane;
    let redis = RedisServer::start();
    let link = Arc::new(RedisLink::new(&redis.url).unwrap());
    let bp = RedisBackplane::connect(link, Keys::new(&unique("bp")), Arc::new(Metrics::default()))
        .await
        .unwrap();
    // A room unloads (generation g) while its next generation (g + 1) loads, over and over.
    for g in 0..40u64 {
        let room = format!("room-{g}");
        let (old, _old_rx) = inbox(16);
        bp.subscribe(&room, g, old).await.unwrap();
        let (new, mut new_rx) = inbox(16);
        let (_, subscribed) =
            tokio::join!(bp.unsubscribe(&room, g), bp.subscribe(&room, g + 1, new));
        subscribed.unwrap();
        bp.publish(&room, axum::body::Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), new_rx.recv()).await;
        assert!(
            matches!(got, Ok(Some(BackplaneEvent::Message(_)))),
            "generation {} of {room} got no message: {got:?}",
            g + 1
        );
    }
}
