//! The home folder: layout, .env, lock, markers.
