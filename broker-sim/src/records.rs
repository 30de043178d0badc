//! What the simulator remembers about the requests it served, for tests to inspect.

/// One API request as the simulator handled it (admin requests are not recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path without the query, e.g. `/queues/alerts/next`.
    pub path: String,
    /// For a pull, the `max` it asked for (before capping), when the body carried a positive
    /// integer; `None` otherwise.
    pub max: Option<u32>,
    /// The status answered; 0 when the connection was dropped without a response (a
    /// [`Fault::Drop`](crate::Fault::Drop)); 499 when the client went away before a delayed or
    /// stalled answer (nothing was handled).
    pub status: u16,
}

/// One successful setup call (`POST /users/{broker}/credentials/signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRecord {
    /// The broker id from the path.
    pub broker: String,
    /// The registered public key.
    pub public_key: [u8; 32],
    /// The `description` the broker sent (empty when it sent none).
    pub description: String,
    /// The `keep_others` flag the broker sent (false when it sent none).
    pub keep_others: bool,
}
