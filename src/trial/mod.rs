//! Virtual clinical trial statistics (in progress).
