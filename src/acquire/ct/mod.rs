//! CT acquisition simulator (in progress).
