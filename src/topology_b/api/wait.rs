//! Waiting for applied objects to be ready (`waits::readiness` decides), and, when one is not in
//! time, the report that says why: its conditions, its pods, recent events and the last log
//! lines of the pod that is not ready. The report is an `unhealthy` error: exit code 4.

use super::super::manifests::Object;
use super::super::waits::{self, Readiness};
use super::call::{api_error, api_for};
use super::report;
use super::resources::{Resource, Resources};
use crate::core::error::{Error, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// How long a phase's objects may take to be ready, and how often they are looked at.
#[derive(Debug, Clone, Copy)]
pub struct WaitTimes {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for WaitTimes {
    /// Five minutes: a first start on a laptop pulls images (the largest add-on image is a few
    /// hundred MB); a timeout well past that is a problem to report, not a wait to extend.
    fn default() -> Self {
        WaitTimes {
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
        }
    }
}

/// One deadline shared by the objects of a phase, so a phase waits `timeout` in all.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(Instant::now() + d)
    }
}

/// Wait until `o` is ready, failed, or past the deadline.
pub async fn ready(
    client: &kube::Client,
    o: &Object,
    r: &Resource,
    times: &WaitTimes,
    deadline: Deadline,
) -> Result<()> {
    let api = api_for(client, r, o.namespace.as_deref());
    loop {
        let live = api.get(&o.name).await.map_err(|e| api_error(o, e))?;
        let value = serde_json::to_value(&live).map_err(|e| {
            Error::internal(format!("{} read back as no object: {e}", o.describe()))
        })?;
        let why = match waits::readiness(&value) {
            None | Some(Readiness::Ready) => return Ok(()),
            Some(Readiness::Failed(why)) => {
                return Err(stuck(client, o, &value, &format!("failed: {why}")).await)
            }
            Some(Readiness::Waiting(why)) => why,
        };
        if Instant::now() >= deadline.0 {
            let secs = times.timeout.as_secs();
            return Err(stuck(
                client,
                o,
                &value,
                &format!("not ready after {secs} s: {why}"),
            )
            .await);
        }
        tokio::time::sleep(
            times
                .interval
                .min(deadline.0.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}

/// The unhealthy error for `o`, with what the API says about it. Each part that cannot be had
/// is left out: the report must not hide the object's own state behind a second failure.
async fn stuck(client: &kube::Client, o: &Object, live: &Value, state: &str) -> Error {
    let mut detail = vec![format!("{} conditions:", o.kind)];
    detail.extend(report::conditions(live));
    let ns = o
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let namespaced = o.namespace.is_some();
    let mut about = vec![o.name.clone()];
    let mut pods: Vec<Value> = Vec::new();
    if let (true, Some(selector)) = (namespaced, report::selector(live)) {
        if let Some(pod_res) = Resources::default().find("v1", "Pod") {
            let lp = ListParams::default().labels(&selector);
            if let Ok(list) = api_for(client, &pod_res, Some(&ns)).list(&lp).await {
                pods = list
                    .items
                    .iter()
                    .filter_map(|p| serde_json::to_value(p).ok())
                    .collect();
            }
        }
        detail.push("pods:".to_string());
        detail.extend(report::pods(&pods));
        about.extend(
            pods.iter()
                .filter_map(|p| p.pointer("/metadata/name")?.as_str().map(String::from)),
        );
    }
    if namespaced {
        if let Some(ev_res) = Resources::default().find("v1", "Event") {
            if let Ok(list) = api_for(client, &ev_res, Some(&ns))
                .list(&ListParams::default())
                .await
            {
                let events: Vec<Value> = list
                    .items
                    .iter()
                    .filter_map(|e| serde_json::to_value(e).ok())
                    .collect();
                detail.push("recent events:".to_string());
                detail.extend(report::events(&events, &about, 10));
            }
        }
    }
    if let Some((pod, container)) = report::pod_to_log(&pods) {
        let lp = LogParams {
            container: Some(container.clone()),
            tail_lines: Some(20),
            ..Default::default()
        };
        if let Ok(text) = Api::<Pod>::namespaced(client.clone(), &ns)
            .logs(&pod, &lp)
            .await
        {
            detail.push(format!("last log lines of {pod} ({container}):"));
            detail.extend(
                text.lines()
                    .map(|l| format!("  {}", crate::core::quote::cut(l, 300))),
            );
        }
    }
    let look = match &o.namespace {
        Some(ns) => format!(
            "kubectl -n {ns} describe {} {}",
            o.kind.to_lowercase(),
            o.name
        ),
        None => format!("kubectl describe {} {}", o.kind.to_lowercase(), o.name),
    };
    Error::unhealthy(format!("{} is {state}", o.describe()))
        .hint(format!("fix what the details below show, then run `appgear cluster up` again (it carries on); `{look}` with the home's kubeconfig shows more"))
        .detail(detail)
}
