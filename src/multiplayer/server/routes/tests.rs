//! The routes as a client meets them, over a real socket: paths, methods, status codes,
//! headers and close codes. Nothing here needs Redis: every case is answered before it.

use crate::multiplayer::server::testkit::*;

#[tokio::test]
async fn plain_endpoints_answer_get_only_with_and_without_the_prefix() {
    let addr = start(context(10)).await;
    for path in ["/healthz", "/multiplayer/healthz"] {
        let (head, body) = call(addr, "GET", path, &[]).await;
        assert_eq!((status(&head), body.as_str()), (200, "ok\n"), "{path}");
        assert!(
            head.contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
    }
    let (head, body) = call(addr, "GET", "/multiplayer/metrics?x=1", &[]).await;
    assert_eq!(status(&head), 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("multiplayer_active_sessions{workspace_id=\"w1\"} 0"));
    let (head, body) = call(addr, "GET", "/readyz", &[]).await;
    assert_eq!(status(&head), 503);
    assert!(body.starts_with("Redis unreachable"), "{body}");
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/multiplayer"),
        ("GET", "/healthz/"),
        ("GET", "/multiplayer/multiplayer/healthz"),
        ("POST", "/healthz"),
        ("DELETE", "/multiplayer/metrics"),
        ("HEAD", "/healthz"),
    ] {
        let (head, body) = call(addr, method, path, &[]).await;
        assert_eq!(status(&head), 404, "{method} {path}");
        assert!(!head.contains("allow:"), "{method} {path}: {head}");
        if method != "HEAD" {
            assert_eq!(body, "not found\n", "{method} {path}");
        }
    }
}

type LockCase<'a> = (&'a str, String, Vec<(&'a str, String)>, u16, &'a str);

#[tokio::test]
async fn lock_endpoints_check_the_token_then_the_request() {
    let addr = start(context(10)).await;
    let editor = mint("w1", false, Some("ci"));
    let bearer = format!("Bearer {editor}");
    let auth = [("Authorization", bearer.as_str())];
    // (method, target, headers, status, what the error says)
    let cases: Vec<LockCase> = vec![
        (
            "GET",
            "/locks?room=r".into(),
            vec![],
            401,
            "a token is required",
        ),
        (
            "GET",
            "/locks?room=r&token=mp1.bad.token".into(),
            vec![],
            401,
            "malformed token",
        ),
        (
            "GET",
            "/locks?room=r".into(),
            vec![(
                "Authorization",
                format!("Bearer {}", mint("w2", false, None)),
            )],
            403,
            "token is not for this workspace",
        ),
        (
            "GET",
            format!("/locks?token={editor}"),
            vec![],
            400,
            "give the room",
        ),
        (
            "GET",
            format!("/multiplayer/locks?room=&token={editor}"),
            vec![],
            400,
            "give the room",
        ),
        // The room rule of the WebSocket path: no control characters, at most 1 KiB.
        (
            "GET",
            format!("/locks?room=a%00b&token={editor}"),
            vec![],
            400,
            "give the room",
        ),
        (
            "GET",
            format!("/locks?room={}&token={editor}", "r".repeat(40_000)),
            vec![],
            400,
            "give the room",
        ),
        (
            "POST",
            format!(
                "/locks?room=r&path=p&token={}",
                mint("w1", false, Some(&"s".repeat(251)))
            ),
            vec![],
            400,
            "subject must be 1 to 250 bytes",
        ),
        (
            "PUT",
            "/locks?room=r".into(),
            vec![],
            405,
            "use GET, POST or DELETE",
        ),
        (
            "POST",
            format!(
                "/locks?room=r&path=p&token={}",
                mint("w1", true, Some("ro"))
            ),
            vec![],
            403,
            "read-only",
        ),
        (
            "POST",
            "/locks?room=r".into(),
            vec![],
            400,
            "give a lock path",
        ),
        (
            "POST",
            "/locks?room=r&path=p&ttl=forever".into(),
            vec![],
            400,
            "ttl must be",
        ),
        (
            "POST",
            "/locks?room=r&path=p&ttl=100ms".into(),
            vec![],
            400,
            "ttl must be",
        ),
        (
            "DELETE",
            "/locks?room=r&path=p&owner=yjs%3A1".into(),
            vec![],
            403,
            "acts as",
        ),
        (
            "DELETE",
            "/locks?room=r&path=p&owner=someone".into(),
            vec![],
            403,
            "acts as",
        ),
        (
            "DELETE",
            format!("/locks?room=r&path=p&token={}", mint("w1", false, None)),
            vec![],
            403,
            "names no holder",
        ),
    ];
    for (method, target, extra, want, says) in cases {
        let mut headers: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The bearer token wins over ?token=, so it is sent only when the case has no token.
        if extra.is_empty() && !target.contains("token=") && want != 401 {
            headers.extend(auth);
        }
        let (head, body) = call(addr, method, &target, &headers).await;
        assert_eq!(status(&head), want, "{method} {target}: {body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(says)),
            "{method} {target}: {body}"
        );
    }
}

#[tokio::test]
async fn a_room_upgrade_is_judged_before_and_after_the_handshake() {
    let ctx = context(10);
    let addr = start(ctx.clone()).await;
    let good = mint("w1", false, None);
    let (head, _) = upgrade(addr, "/elsewhere/a", Some(&good)).await;
    assert_eq!(status(&head), 404);
    // After the handshake: a refusal the stock client does not retry, the token's protocol echoed.
    let (head, code) = upgrade(addr, "/multiplayer/a", Some("mp1.bad.token")).await;
    assert_eq!(code, Some(4401));
    assert!(
        head.contains("sec-websocket-protocol: mp1.bad.token"),
        "{head}"
    );
    let (_, code) = upgrade(addr, "/multiplayer/a", None).await;
    assert_eq!(code, Some(4401));
    let other = mint("w2", false, None);
    let (head, code) = upgrade(addr, "/multiplayer/a", Some(&format!("y-ws, {other}"))).await;
    assert_eq!(code, Some(4403));
    assert!(
        head.contains(&format!(
            "sec-websocket-protocol: {}",
            other.to_ascii_lowercase()
        )),
        "{head}"
    );
    let (_, code) = upgrade(addr, "/multiplayer/%FF", Some(&good)).await;
    assert_eq!(code, Some(4400));
    // Without a token among the protocols, the first one offered is echoed.
    let (head, code) = upgrade(
        addr,
        &format!("/multiplayer/a?token={good}"),
        Some("b-proto, a-proto"),
    )
    .await;
    assert!(head.contains("sec-websocket-protocol: a-proto"), "{head}");
    // A good token, from the query: the room is joined, but storage is down here.
    assert_eq!(code, Some(1013));
    // A room may be named like an endpoint.
    let (_, code) = upgrade(addr, "/multiplayer/healthz", Some(&good)).await;
    assert_eq!(code, Some(1013));
    let m = ctx.metrics.render("w1");
    assert!(m.contains("reason=\"bad_token\"} 4"), "{m}");
}

#[tokio::test]
async fn a_full_or_stopping_gateway_answers_upgrades_with_a_retryable_503() {
    let ctx = context(0);
    let addr = start(ctx.clone()).await;
    let good = mint("w1", false, None);
    let (head, _) = upgrade(addr, "/multiplayer/a", Some(&good)).await;
    assert_eq!(status(&head), 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(ctx.metrics.render("w1").contains("reason=\"busy\"} 1"));
    let ctx = context(10);
    let addr = start(ctx.clone()).await;
    ctx.shutdown.send_replace(true);
    let (head, _) = upgrade(addr, "/multiplayer/a", Some(&good)).await;
    assert_eq!(status(&head), 503);
    let (head, body) = call(addr, "GET", "/readyz", &[]).await;
    assert_eq!((status(&head), body.as_str()), (503, "stopping\n"));
}
