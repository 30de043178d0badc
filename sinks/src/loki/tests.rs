//! Tests of the loki sink.
