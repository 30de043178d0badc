//! Example programs; see the examples in this folder.
