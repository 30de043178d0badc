//! The stock sinks (stub).
