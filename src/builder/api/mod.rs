//! `appgear builder serve`: the always-on API of one workspace (submit, status, list, logs,
//! cancel, artifact download; `/healthz`, `/readyz`, `/metrics`) and the reaper, in one process, so the pending
//! count KEDA scales on exists even when no worker runs.

pub mod app;
pub mod artifacts;
pub mod auth;
pub mod routes;
pub mod serve;
