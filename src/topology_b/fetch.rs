//! Getting add-ons from the network: the HTTP client (`client`), a chart repository's index
//! (`index`), the `supply::Upstream` that downloads each add-on at its pinned URL (`upstream`),
//! and `helm template` with appgear's values for chart add-ons (`helm`, `chart`).
//!
//! Policy (which URL, which digest, which values and flags) is pure and unit-tested; the client
//! and helm are the IO around it.

pub mod chart;
pub mod client;
pub mod helm;
pub mod index;
pub mod upstream;
