//! What every route of `serve` reads: the workspace's queue, the config and the object store.
//! Its own file so the route modules (`routes`, `artifacts`) share it without importing each
//! other.

use crate::builder::config::Config;
use crate::builder::queue::Queue;
use std::sync::Arc;

pub struct App<S> {
    pub queue: Queue,
    pub config: Config,
    pub store: Arc<S>,
}
