//! Pipeline (stub).
