//! API client (stub).
