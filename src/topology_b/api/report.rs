//! What a wait that timed out says about the stuck object, from objects as the API returns them:
//! its conditions, its pods' states, recent events. Pure, so each line is unit-tested; the IO
//! that fetches them is in `wait`.

use serde_json::Value;

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// `type=status (reason: message)` for each of the object's conditions.
pub fn conditions(object: &Value) -> Vec<String> {
    let Some(list) = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
    else {
        return vec!["  (no conditions reported yet)".to_string()];
    };
    list.iter()
        .map(|c| {
            let why = [s(c, "/reason"), s(c, "/message")]
                .into_iter()
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            let base = format!("  {}={}", s(c, "/type"), s(c, "/status"));
            if why.is_empty() {
                base
            } else {
                format!("{base} ({})", cut(&why))
            }
        })
        .collect()
}

/// The label selector of a workload (`spec.selector.matchLabels`) as the API's query text.
pub fn selector(object: &Value) -> Option<String> {
    let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// One container's state: `running`, `waiting: CrashLoopBackOff (back-off 5m…)`,
/// `terminated: Error (exit 1)`, with its restarts.
fn container_state(c: &Value) -> String {
    let state = c.get("state");
    let text = if let Some(w) = state.and_then(|s| s.get("waiting")) {
        let m = s(w, "/message");
        if m.is_empty() {
            format!("waiting: {}", s(w, "/reason"))
        } else {
            format!("waiting: {} ({})", s(w, "/reason"), cut(m))
        }
    } else if let Some(t) = state.and_then(|s| s.get("terminated")) {
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        format!("terminated: {} (exit {code})", s(t, "/reason"))
    } else if state.and_then(|s| s.get("running")).is_some() {
        let ready = c.get("ready").and_then(Value::as_bool) == Some(true);
        if ready {
            "running, ready"
        } else {
            "running, not ready"
        }
        .to_string()
    } else {
        "no state yet".to_string()
    };
    let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
    if restarts > 0 {
        format!("{text}, {restarts} restarts")
    } else {
        text
    }
}

/// One line per pod (phase, and why it is not scheduled) and per container.
pub fn pods(pods: &[Value]) -> Vec<String> {
    if pods.is_empty() {
        return vec!["  (no pods)".to_string()];
    }
    let mut out = Vec::new();
    for p in pods {
        let mut line = format!("  {} {}", s(p, "/metadata/name"), s(p, "/status/phase"));
        let unscheduled = p
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| s(c, "/type") == "PodScheduled" && s(c, "/status") == "False")
            });
        if let Some(c) = unscheduled {
            line.push_str(&format!(", not scheduled: {}", cut(s(c, "/message"))));
        }
        out.push(line);
        for key in ["initContainerStatuses", "containerStatuses"] {
            for c in p
                .pointer(&format!("/status/{key}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(format!("    {}: {}", s(c, "/name"), container_state(c)));
            }
        }
    }
    out
}

/// The pod (and its container) whose log says most: the first with a container not ready.
pub fn pod_to_log(pods: &[Value]) -> Option<(String, String)> {
    pods.iter().find_map(|p| {
        let c = p
            .pointer("/status/containerStatuses")?
            .as_array()?
            .iter()
            .find(|c| c.get("ready").and_then(Value::as_bool) != Some(true))?;
        Some((
            s(p, "/metadata/name").to_string(),
            s(c, "/name").to_string(),
        ))
    })
}

/// The last `max` events about the object or its pods, oldest first:
/// `Warning FailedScheduling pod/x: 0/1 nodes are available…`.
pub fn events(events: &[Value], about: &[String], max: usize) -> Vec<String> {
    let time = |e: &Value| {
        [
            s(e, "/lastTimestamp"),
            s(e, "/eventTime"),
            s(e, "/metadata/creationTimestamp"),
        ]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or("")
        .to_string()
    };
    let mut mine: Vec<&Value> = events
        .iter()
        .filter(|e| about.iter().any(|n| n == s(e, "/involvedObject/name")))
        .collect();
    // RFC 3339 times of one server sort as text.
    mine.sort_by_key(|e| time(e));
    let skip = mine.len().saturating_sub(max);
    let lines: Vec<String> = mine[skip..]
        .iter()
        .map(|e| {
            format!(
                "  {} {} {}/{}: {}",
                s(e, "/type"),
                s(e, "/reason"),
                s(e, "/involvedObject/kind").to_lowercase(),
                s(e, "/involvedObject/name"),
                cut(s(e, "/message"))
            )
        })
        .collect();
    if lines.is_empty() {
        vec!["  (no events)".to_string()]
    } else {
        lines
    }
}

fn cut(text: &str) -> String {
    crate::core::quote::cut(text.trim(), 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_pods_and_events_read_like_kubectl_describe() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "cde", "tier": "web"}}},
            "status": {"conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "True"}]}});
        assert_eq!(
            conditions(&d),
            vec![
                "  Available=False (MinimumReplicasUnavailable: Deployment does not have minimum availability.)",
                "  Progressing=True"
            ]
        );
        assert_eq!(selector(&d).as_deref(), Some("app=cde,tier=web"));
        assert_eq!(
            conditions(&json!({})),
            vec!["  (no conditions reported yet)"]
        );

        let p = json!({"metadata": {"name": "cde-1"}, "status": {"phase": "Running",
            "containerStatuses": [
                {"name": "code", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}},
                {"name": "side", "ready": true, "state": {"running": {}}}]}});
        let q = json!({"metadata": {"name": "cde-2"}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available: 1 Insufficient memory."}]}});
        assert_eq!(
            pods(&[p.clone(), q.clone()]),
            vec![
                "  cde-1 Running",
                "    code: waiting: CrashLoopBackOff (back-off 40s), 3 restarts",
                "    side: running, ready",
                "  cde-2 Pending, not scheduled: 0/1 nodes are available: 1 Insufficient memory.",
            ]
        );
        assert_eq!(pod_to_log(&[q, p]), Some(("cde-1".into(), "code".into())));

        let ev = |name: &str, t: &str, reason: &str| json!({"type": "Warning", "reason": reason, "message": "m", "lastTimestamp": t, "involvedObject": {"kind": "Pod", "name": name}});
        let all = [
            ev("cde-1", "2026-01-01T00:00:02Z", "BackOff"),
            ev("other", "2026-01-01T00:00:03Z", "X"),
            ev("cde-1", "2026-01-01T00:00:01Z", "Pulled"),
        ];
        assert_eq!(
            events(&all, &["cde-1".to_string()], 10),
            vec![
                "  Warning Pulled pod/cde-1: m",
                "  Warning BackOff pod/cde-1: m"
            ]
        );
        assert_eq!(
            events(&all, &["cde-1".to_string()], 1),
            vec!["  Warning BackOff pod/cde-1: m"]
        );
        assert_eq!(events(&[], &[], 1), vec!["  (no events)"]);
    }
}
