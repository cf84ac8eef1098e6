//! appgear's integration tests: one binary, a module per product (as uv and just do), each
//! running the real `appgear` binary the way the README says.
//!
//! The fast tier (`scripts/test --fast`) runs the modules that need no service: see `FAST` in
//! scripts/test.

#[allow(dead_code)]
mod builder_fixture;
#[allow(dead_code)] // each module uses a different part of the helpers
mod common;
#[allow(dead_code)]
mod redis_server;
#[allow(dead_code)]
mod rgw;

mod builder_api;
mod builder_cli;
mod builder_docker;
mod builder_metrics;
mod builder_queue;
mod builder_s3;
mod builder_worker;
mod cli;
mod gitops_airbyte_chart;
mod gitops_ids;
mod gitops_render;
mod gitops_tools;
mod layers;
mod multiplayer_cli;
mod multiplayer_node;
mod multiplayer_redis;
mod schemas;
mod suite_image;
mod tls;
mod topology_a;
mod topology_a_converge;
mod topology_a_home;
mod topology_a_settings;
mod topology_b;
mod topology_b_apply;
mod topology_b_cluster;
mod topology_b_fetch;
mod topology_b_optional;
mod topology_b_smoke;
mod verify_rules;
